"""FeatureContext: levels, gate, robustness, onsets/tempo, chroma/key, bars and allocation."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from kelly_edge.features.context import FeatureContext, mel_reference_db
from kelly_edge.models.spec import Desc

D = Desc.INDEX


def _sine(rate: int, hz: float, seconds: float, amp: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _harmonic(rate: int, midi_notes: tuple[int, ...], seconds: float, amp: float = 0.1) -> np.ndarray:
    """A chord of tones with 6 decaying partials each (an instrument-like spectrum)."""
    t = np.arange(int(rate * seconds)) / rate
    y = np.zeros(t.size)
    for note in midi_notes:
        f0 = 440.0 * 2 ** ((note - 69) / 12)
        for k in range(1, 7):
            y += 0.6 ** (k - 1) * np.sin(2 * np.pi * f0 * k * t + note)
    return (amp * y / len(midi_notes)).astype(np.float32)


def _all_finite(ctx: FeatureContext) -> bool:
    arrays = (ctx.mel, ctx.mel_summary, ctx.chroma_window, ctx.chroma_long, ctx.bass_chroma, ctx.key_corr,
              ctx.descriptors, ctx.heard_bar, ctx.heard_prev_bar)
    scalars = (ctx.level_db, ctx.silent_for_s, ctx.onset_strength, ctx.key_clarity)
    return all(np.all(np.isfinite(a)) for a in arrays) and all(np.isfinite(s) for s in scalars)


def _check_descriptor_ranges(d: np.ndarray, rate: int) -> None:
    assert -100.0 <= d[D["level_db"]] <= 0.0
    assert -100.0 <= d[D["level_db_long"]] <= 0.0
    assert 0.0 <= d[D["level_range_db"]] <= 100.0
    assert 0.0 <= d[D["onset_rate"]] <= 20.0
    assert d[D["onset_strength"]] >= 0.0
    assert d[D["tempo_bpm"]] == 0.0 or 40.0 <= d[D["tempo_bpm"]] <= 245.0
    assert 0.0 <= d[D["pulse_clarity"]] <= 1.0
    assert 0.0 <= d[D["centroid_hz"]] <= rate / 2
    assert 0.0 <= d[D["rolloff_hz"]] <= rate / 2
    for name in ("flatness", "low_ratio", "high_ratio", "silence"):
        assert 0.0 <= d[D[name]] <= 1.0 + 1e-6, name
    assert -1.0 <= d[D["key_clarity"]] <= 1.0
    assert -2.0 <= d[D["mode_margin"]] <= 2.0
    assert d[D["crest_db"]] >= 0.0


def test_silence(feed) -> None:
    ctx = FeatureContext(sample_rate=22050)
    feed(ctx, np.zeros(22050 * 3, dtype=np.float32), each=lambda c, i: not c.onset or pytest.fail("onset in silence"))
    assert ctx.silent
    assert ctx.silent_for_s == pytest.approx(3.0, abs=0.02)
    assert ctx.level_db == -100.0
    assert _all_finite(ctx)
    _check_descriptor_ranges(ctx.descriptors, 22050)
    assert ctx.descriptors[D["silence"]] == pytest.approx(1.0)
    assert ctx.descriptors[D["tempo_bpm"]] == 0.0
    for a in (ctx.chroma_window, ctx.chroma_long, ctx.bass_chroma, ctx.key_corr, ctx.heard_bar, ctx.heard_prev_bar):
        assert np.all(a == 0.0)
    assert not ctx.key_known and ctx.key_name == "C major"
    assert np.all(ctx.mel_summary == -120.0)  # the floor, at every sample rate


@pytest.mark.parametrize("rate", [16000, 22050, 48000])
def test_level_gain_and_gate(rate: int, feed) -> None:
    ctx = FeatureContext(sample_rate=rate)
    feed(ctx, _sine(rate, 440.0, 1.0, amp=0.1))
    expected = 20 * np.log10(0.1 / np.sqrt(2))  # -23.0 dBFS
    assert ctx.level_db == pytest.approx(expected, abs=0.1)
    assert ctx.descriptors[D["crest_db"]] == pytest.approx(3.01, abs=0.2)
    assert not ctx.silent and ctx.silent_for_s == 0.0
    ctx.set_input_gain_db(10.0)
    feed(ctx, _sine(rate, 440.0, 0.2, amp=0.1))
    assert ctx.level_db == pytest.approx(expected + 10.0, abs=0.1)
    ctx.set_gate_db(-10.0)
    feed(ctx, _sine(rate, 440.0, 0.2, amp=0.1))
    assert ctx.silent  # -13 dBFS is under a -10 dB gate
    assert ctx.silent_for_s > 0.15


def test_silent_for_resets_when_sound_returns(feed) -> None:
    ctx = FeatureContext(sample_rate=22050, gate_db=-40.0)
    feed(ctx, _sine(22050, 220.0, 1.0, amp=0.001))  # -63 dBFS: under the gate
    assert ctx.silent and ctx.silent_for_s == pytest.approx(1.0, abs=0.02)
    feed(ctx, _sine(22050, 220.0, 0.1, amp=0.3))
    assert not ctx.silent and ctx.silent_for_s == 0.0


@pytest.mark.parametrize(
    "make",
    [
        lambda rng, n: np.full(n, np.nan),
        lambda rng, n: np.where(rng.random(n) < 0.1, np.inf, rng.uniform(-1, 1, n)),
        lambda rng, n: np.where(rng.random(n) < 0.5, -np.inf, np.nan),
        lambda rng, n: rng.standard_normal(n) * 1e30,
        lambda rng, n: rng.uniform(-32768, 32767, n),  # int16-scaled floats
        lambda rng, n: rng.uniform(-1.0, 1.0, n),  # full-scale white noise
        lambda rng, n: np.sign(rng.standard_normal(n)),  # full-scale square-ish noise
    ],
    ids=["nan", "some-inf", "all-nonfinite", "huge", "int16-scale", "white-noise", "binary-noise"],
)
def test_any_input_stays_finite(make, feed) -> None:
    rng = np.random.default_rng(11)
    ctx = FeatureContext(sample_rate=22050)
    x = make(rng, 22050 * 4)
    checked = []

    def check(c: FeatureContext, i: int) -> None:
        if i % 37 == 0:
            checked.append(_all_finite(c))

    feed(ctx, x, each=check)
    assert all(checked) and _all_finite(ctx)
    _check_descriptor_ranges(ctx.descriptors, 22050)


def test_non_finite_samples_count_as_zero(feed) -> None:
    clean = _sine(22050, 330.0, 1.0, amp=0.5)
    dirty = clean.copy()
    dirty[::50] = np.nan
    a = feed(FeatureContext(sample_rate=22050), clean)
    b = feed(FeatureContext(sample_rate=22050), dirty)
    assert b.level_db == pytest.approx(a.level_db, abs=0.2)
    assert int(np.argmax(b.chroma_window)) == int(np.argmax(a.chroma_window)) == 4  # E


def test_white_noise_is_flat_and_not_rhythmic(feed) -> None:
    rng = np.random.default_rng(4)
    ctx = feed(FeatureContext(sample_rate=22050), rng.uniform(-1, 1, 22050 * 8).astype(np.float32))
    d = ctx.descriptors
    assert d[D["flatness"]] > 0.6
    assert d[D["high_ratio"]] > 0.6  # white noise: most power is above 2 kHz
    assert d[D["onset_rate"]] < 1.0
    assert d[D["pulse_clarity"]] < 0.3


@pytest.mark.parametrize("rate", [16000, 22050, 48000])
def test_click_track_onsets_and_tempo(rate: int, feed, make_clicks) -> None:
    ctx = FeatureContext(sample_rate=rate)
    onsets = []
    feed(ctx, make_clicks(rate, bpm=120.0, per_beat=2, seconds=10.0), each=lambda c, i: onsets.append(c.onset))
    d = ctx.descriptors
    assert d[D["onset_rate"]] == pytest.approx(4.0, abs=0.4)  # 8th notes at 120 BPM
    assert sum(onsets) == pytest.approx(40, abs=2)
    tempo = d[D["tempo_bpm"]]
    assert any(abs(tempo - t) <= 0.05 * t for t in (60.0, 120.0, 240.0)), tempo
    assert d[D["pulse_clarity"]] > 0.5
    # 8th notes land on the even 16th steps of the bar
    bar = ctx.heard_prev_bar
    assert bar.max() == pytest.approx(1.0)
    assert bar[0::2].min() > 0.5 and bar[1::2].max() < 0.3


def test_bars_wrap_and_normalise(feed, make_clicks) -> None:
    ctx = FeatureContext(sample_rate=22050)
    h = ctx.hop_length
    x = make_clicks(22050, bpm=120.0, per_beat=1, seconds=2.0)  # quarter notes: steps 0, 4, 8, 12
    for i in range(x.size // h):
        ctx.update(x[i * h : (i + 1) * h], step=(((i + 1) * h - 1) * 8 // 22050) % 16)  # 120 BPM 16ths
    assert np.all(ctx.heard_prev_bar == 0.0)  # the first bar is still in progress
    first = ctx.heard_bar.copy()
    assert first.max() == pytest.approx(1.0)
    assert set(np.nonzero(first > 0.5)[0].tolist()) == {0, 4, 8, 12}
    ctx.update(np.zeros(h, dtype=np.float32), step=0)  # the bar wraps
    np.testing.assert_allclose(ctx.heard_prev_bar, first)
    assert np.all(ctx.heard_bar == 0.0)


def test_mel_summary_is_referenced_to_full_scale(feed) -> None:
    peaks = []
    for rate in (16000, 22050, 44100, 48000):
        ctx = feed(FeatureContext(sample_rate=rate), _sine(rate, 440.0, 5.0))
        assert ctx.mel_ref_db == pytest.approx(mel_reference_db(ctx.n_fft))
        peaks.append(float(ctx.mel_summary.max()))
        quiet = feed(FeatureContext(sample_rate=rate), _sine(rate, 440.0, 5.0, amp=0.1))
        assert float(quiet.mel_summary.max()) == pytest.approx(peaks[-1] - 20.0, abs=0.5)
    assert all(-8.0 < p < 0.0 for p in peaks), peaks  # a full-scale sine is near 0 dB
    assert max(peaks) - min(peaks) < 1.5, peaks  # whatever the sample rate / n_fft


def test_chroma_of_a_chord_and_its_bass(feed) -> None:
    ctx = feed(FeatureContext(sample_rate=22050), _harmonic(22050, (43, 62, 67, 71), 2.0))  # G2 + D4 G4 B4
    top = set(np.argsort(ctx.chroma_window)[-3:].tolist())
    assert top == {7, 11, 2}
    assert int(np.argmax(ctx.bass_chroma)) == 7
    for a in (ctx.chroma_window, ctx.chroma_long, ctx.bass_chroma):
        assert a.max() == pytest.approx(1.0) and a.min() >= 0.0


def test_chroma_window_fades_in_silence_but_the_key_is_remembered(feed) -> None:
    ctx = feed(FeatureContext(sample_rate=22050), _harmonic(22050, (60, 64, 67), 3.0, amp=0.3))
    assert ctx.key_known
    key = (ctx.tonic, ctx.major)
    feed(ctx, np.zeros(22050 * 10, dtype=np.float32))
    assert ctx.chroma_window.max() < 1e-3 and ctx.bass_chroma.max() < 1e-3
    assert 0.4 < ctx.chroma_long.max() < 0.8  # ~exp(-10 s / 20 s)
    assert (ctx.tonic, ctx.major) == key


def test_key_follows_a_modulation_without_flickering(feed) -> None:
    def cadence(tonic: int) -> np.ndarray:
        chords = [(0, 4, 7), (5, 9, 12), (7, 11, 14), (0, 4, 7)]  # I IV V I
        return np.concatenate([_harmonic(22050, tuple(48 + tonic + n for n in (0,) + c), 0.5) for c in chords])

    keys: list[str] = []
    ctx = FeatureContext(sample_rate=22050)
    feed(ctx, np.concatenate([cadence(0)] * 6), each=lambda c, i: keys.append(c.key_name))
    assert ctx.key_name == "C major"
    feed(ctx, np.concatenate([cadence(6)] * 12), each=lambda c, i: keys.append(c.key_name))
    assert ctx.key_name == "F# major"
    changes = sum(a != b for a, b in zip(keys, keys[1:]))
    assert changes <= 3, changes  # hysteresis: a few switches, not one per chord


def test_descriptors_on_music_are_in_range(render_cache, feed) -> None:
    y, rate = render_cache("bach/bwv66.6", seconds=6.0)
    ctx = feed(FeatureContext(sample_rate=rate), y, bpm=100.0)
    _check_descriptor_ranges(ctx.descriptors, rate)
    d = ctx.descriptors
    assert d[D["silence"]] < 0.5 and d[D["onset_rate"]] > 0.5
    assert 100.0 < d[D["centroid_hz"]] < 3000.0
    assert d[D["flatness"]] < 0.3  # tonal
    assert d[D["key_clarity"]] > 0.5


def test_public_arrays_are_read_only_and_stable() -> None:
    ctx = FeatureContext(sample_rate=22050)
    names = ("mel", "mel_summary", "chroma_window", "chroma_long", "bass_chroma", "key_corr", "descriptors",
             "heard_bar", "heard_prev_bar")
    before = {n: getattr(ctx, n) for n in names}
    shapes = {"mel": 128, "mel_summary": 64, "key_corr": 24, "descriptors": 16, "heard_bar": 16, "heard_prev_bar": 16}
    rng = np.random.default_rng(0)
    for i in range(5):
        ctx.update(rng.uniform(-0.5, 0.5, ctx.hop_length).astype(np.float32), step=i)
    for n in names:
        a = getattr(ctx, n)
        assert a is before[n]
        assert a.dtype == np.float32 and a.shape == (shapes.get(n, 12),)
        with pytest.raises(ValueError):
            a[0] = 1.0


def test_rejects_a_wrong_hop() -> None:
    ctx = FeatureContext(sample_rate=48000)
    assert ctx.hop_length == 480
    with pytest.raises(ValueError, match="480"):
        ctx.update(np.zeros(512, dtype=np.float32), step=0)


DERIVED = ("mel_summary", "chroma_window", "chroma_long", "bass_chroma", "key_corr", "descriptors", "heard_bar")


def _read_all(ctx: FeatureContext) -> dict[str, object]:
    out: dict[str, object] = {n: getattr(ctx, n).copy() for n in DERIVED}
    out["key_clarity"] = ctx.key_clarity
    return out


def test_derived_features_do_not_depend_on_when_they_are_read() -> None:
    """They are computed on first read after an update: reading every hop, every few hops or only
    at the end must give the same values (up to the spectral batches' float rounding)."""
    rate = 22050
    audio = np.concatenate([
        _harmonic(rate, (60, 64, 67), 1.5), np.zeros(rate // 2, np.float32), _harmonic(rate, (57, 60, 64), 1.5),
        (0.05 * np.random.default_rng(3).standard_normal(rate)).astype(np.float32),
    ])
    for every in (None, 1, 3, 17):
        ctx = FeatureContext(sample_rate=rate)
        h = ctx.hop_length
        for i in range(audio.size // h):
            ctx.update(audio[i * h : (i + 1) * h], step=(i // 13) % 16)
            if every is not None and i % every == 0:
                _read_all(ctx)
        got = _read_all(ctx)
        if every is None:
            lazy = got
        else:
            eager = got
            for n in DERIVED:
                np.testing.assert_allclose(eager[n], lazy[n], rtol=1e-6, atol=1e-6, err_msg=f"{n}, read every {every}")
            assert eager["key_clarity"] == pytest.approx(lazy["key_clarity"])
    assert lazy["chroma_window"].max() > 0.0 and lazy["heard_bar"].max() > 0.0  # not trivially zero


@pytest.mark.parametrize("read", [False, True], ids=["update", "update+read"])
def test_update_does_not_allocate_arrays_in_steady_state(read: bool) -> None:
    """Peak traced memory per update (and, with ``read``, reading every derived feature, which
    computes them) stays under 4 KiB at 48 kHz.

    Any temporary the size of the window (2048 float32 = 8 KiB) or of the spectrum (1025 float32
    = 4.1 KiB) would exceed it; what remains is rfft's own overhead and numpy scalars.
    """
    ctx = FeatureContext(sample_rate=48000)
    rng = np.random.default_rng(2)
    hops = rng.uniform(-0.5, 0.5, (400, ctx.hop_length)).astype(np.float32)
    for i in range(300):  # warm up: rings filled, tempo estimated at least once
        ctx.update(hops[i], step=(i // 12) % 16)
        if read:
            _read_all(ctx)
    tracemalloc.start()
    try:
        peaks = []
        for i in range(300, 400):
            tracemalloc.reset_peak()
            base, _ = tracemalloc.get_traced_memory()
            ctx.update(hops[i], step=(i // 12) % 16)
            if read:
                for n in DERIVED:
                    getattr(ctx, n)
            _, peak = tracemalloc.get_traced_memory()
            peaks.append(peak - base)
    finally:
        tracemalloc.stop()
    assert max(peaks) < 4096, max(peaks)


def test_runtime_features_do_not_import_test_or_training_libraries() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import kelly_edge.features.context, kelly_edge.features.mel, kelly_edge.features.chroma\n"
        "import kelly_edge.features.onset, kelly_edge.features.key\n"
        "bad = [m for m in ('librosa', 'music21', 'mido', 'scipy') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
