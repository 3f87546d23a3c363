"""The five heuristic fallbacks: contract (shape, dtype, ranges) and musical behaviour.

Inputs are built with the same encoders the runtime uses (``kelly_edge.features.encode``), so a
test that passes here is about the vectors the fallbacks really receive.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kelly_edge.errors import ModelError
from kelly_edge.features import encode
from kelly_edge.models import fallbacks, spec
from kelly_edge.models.spec import Desc, Emo

F32 = np.float32
NOTES = np.arange(128)
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
NATURAL_MINOR = (0, 2, 3, 5, 7, 8, 10)
# Krumhansl-Kessler key profiles (Krumhansl 1990), to compute the key correlations the encoder takes.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def zeros(n: int) -> np.ndarray:
    return np.zeros(n, dtype=F32)


def chroma(*pcs: int, level: float = 1.0) -> np.ndarray:
    c = zeros(12)
    c[list(pcs)] = level
    return c


def pitch_class_mass(p: np.ndarray) -> np.ndarray:
    """(12,) probability mass per pitch class of a (128,) note distribution."""
    return np.bincount(NOTES % 12, weights=p.astype(np.float64), minlength=12)


# --- the contract, for every model ------------------------------------------------------------


def check_ranges(name: str, y: np.ndarray) -> None:
    """Assert the documented output ranges of spec.<MODEL> for one output vector."""
    s = spec.BY_NAME[name]
    assert y.shape == (s.n_out,) and y.dtype == F32
    assert np.all(np.isfinite(y))
    if name == "emotion":
        assert -1.0 <= y[Emo.VALENCE] <= 1.0
        assert -1.0 <= y[Emo.AROUSAL] <= 1.0
        assert -1.0 <= y[Emo.DOMINANCE] <= 1.0
        assert 0.0 <= y[Emo.INTENSITY] <= 1.0
        fam = y[Emo.FAMILIES]
        assert np.all(fam >= 0.0) and float(fam.sum()) == pytest.approx(1.0, abs=1e-5)
    elif name == "melody":
        assert np.all(y >= 0.0) and float(y.sum()) == pytest.approx(1.0, abs=1e-5)
    elif name == "harmony":
        probs = y[s.output_slice("chord_prob")]
        assert np.all(probs >= 0.0) and float(probs.sum()) == pytest.approx(1.0, abs=1e-5)
        assert not y[s.output_slice("reserved")].any()
    elif name == "dynamics":
        assert np.all((y >= 0.0) & (y <= 1.0))
        assert y[s.output_slice("length")][0] >= 0.05
        assert not y[s.output_slice("reserved")].any()
    elif name == "groove":
        hits, timing = y[s.output_slice("hit_prob")], y[s.output_slice("micro_timing")]
        assert np.all((hits >= 0.0) & (hits <= 1.0))
        assert np.all((timing >= -0.5) & (timing <= 0.5))


@pytest.fixture(scope="module")
def models() -> dict[str, fallbacks.Fallback]:
    return {name: fallbacks.make_fallback(name) for name in spec.MODEL_NAMES}


def test_one_fallback_per_model() -> None:
    assert set(fallbacks.FALLBACKS) == set(spec.MODEL_NAMES)
    for name in spec.MODEL_NAMES:
        model = fallbacks.make_fallback(name)
        assert isinstance(model, fallbacks.FALLBACKS[name])
        assert model.spec is spec.BY_NAME[name]


def test_unknown_model_name() -> None:
    with pytest.raises(ModelError, match="nonsense"):
        fallbacks.make_fallback("nonsense")


@pytest.mark.parametrize("name", spec.MODEL_NAMES)
def test_wrong_input_shape_is_a_model_error(name: str, models: dict[str, fallbacks.Fallback]) -> None:
    n_in = spec.BY_NAME[name].n_in
    with pytest.raises(ModelError, match=str(n_in)):
        models[name](zeros(n_in + 1))


@pytest.mark.parametrize("name", spec.MODEL_NAMES)
def test_all_zero_input(name: str, models: dict[str, fallbacks.Fallback]) -> None:
    check_ranges(name, models[name](zeros(spec.BY_NAME[name].n_in)))


@pytest.mark.parametrize("name", spec.MODEL_NAMES)
def test_returns_its_own_buffer(name: str, models: dict[str, fallbacks.Fallback]) -> None:
    """The runtime contract: the same preallocated output every call, valid until the next one."""
    model = models[name]
    n_in = spec.BY_NAME[name].n_in
    first = model(zeros(n_in))
    assert model(np.full(n_in, 0.5, dtype=F32)) is first


@pytest.mark.parametrize("name", spec.MODEL_NAMES)
def test_nan_and_inf_inputs_give_finite_outputs(name: str, models: dict[str, fallbacks.Fallback]) -> None:
    n_in = spec.BY_NAME[name].n_in
    x = np.full(n_in, 0.3, dtype=F32)
    x[::3] = np.nan
    x[1::7] = np.inf
    x[2::11] = -np.inf
    check_ranges(name, models[name](x))


@pytest.mark.parametrize("name", spec.MODEL_NAMES)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_random_inputs_stay_in_range(name: str, models: dict[str, fallbacks.Fallback], data: st.DataObject) -> None:
    n_in = spec.BY_NAME[name].n_in
    scale = data.draw(st.sampled_from([1.0, 10.0, 1000.0]))
    x = data.draw(arrays(F32, n_in, elements=st.floats(-1.0, 1.0, width=32))) * F32(scale)
    check_ranges(name, models[name](x))


@settings(max_examples=60, deadline=None)
@given(
    tonic=st.integers(0, 11),
    major=st.booleans(),
    chord=st.integers(0, spec.N_CHORD_CLASSES - 1),
    prev=st.lists(st.integers(0, 127), max_size=3),
    step=st.integers(0, 15),
    vadi=arrays(F32, 4, elements=st.floats(-1.0, 1.0, width=32)),
)
def test_random_encoded_melody_contexts(
    tonic: int, major: bool, chord: int, prev: list[int], step: int, vadi: np.ndarray, models: dict[str, fallbacks.Fallback]
) -> None:
    x = encode.encode_melody(
        zeros(64), vadi=vadi, tonic=tonic, major=major, chord=chord, prev_notes=tuple(prev), step=step, heard_chroma=zeros(12)
    )
    p = models["melody"](x)
    check_ranges("melody", p)
    assert p[:24].sum() < 0.01 and p[110:].sum() < 0.01  # stays in a playable register


# --- melody -----------------------------------------------------------------------------------


def melody_input(
    *,
    tonic: int = 0,
    major: bool = True,
    chord: int = spec.chord_index(0, "maj"),
    prev: tuple[int, ...] = (62, 64),
    step: int = 2,
    vadi: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.5),
    heard: np.ndarray | None = None,
) -> np.ndarray:
    return encode.encode_melody(
        zeros(64),
        vadi=np.array(vadi, dtype=F32),
        tonic=tonic,
        major=major,
        chord=chord,
        prev_notes=prev,
        step=step,
        heard_chroma=zeros(12) if heard is None else heard,
    )


@pytest.mark.parametrize(
    ("tonic", "chord", "prev", "step"),
    [
        (0, spec.chord_index(0, "maj"), (62, 64), 2),
        (0, spec.chord_index(7, "7"), (72,), 0),
        (0, spec.chord_index(9, "min"), (), 8),
        (3, spec.chord_index(10, "7"), (67, 70, 75), 5),  # Eb major, Bb7
        (7, spec.NO_CHORD, (50,), 3),  # G major, no chord, low previous note
    ],
)
def test_melody_stays_in_the_major_scale(tonic: int, chord: int, prev: tuple[int, ...], step: int) -> None:
    p = fallbacks.MelodyFallback()(melody_input(tonic=tonic, chord=chord, prev=prev, step=step))
    mass = pitch_class_mass(p)
    scale = [(tonic + d) % 12 for d in MAJOR_SCALE]
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-5)
    assert mass[scale].sum() >= 0.9


def test_melody_next_note_after_e4_on_c_major() -> None:
    p = fallbacks.MelodyFallback()(melody_input(prev=(62, 64)))
    best = int(p.argmax())
    assert abs(best - 64) <= 4
    assert best % 12 in MAJOR_SCALE


def test_melody_minor_key_uses_the_minor_third() -> None:
    # A minor, on the tonic chord
    p = fallbacks.MelodyFallback()(melody_input(tonic=9, major=False, chord=spec.chord_index(9, "min"), prev=(69, 71)))
    mass = pitch_class_mass(p)
    minor_third, major_third = (9 + 3) % 12, (9 + 4) % 12
    assert mass[minor_third] > 0.05
    assert mass[major_third] < 0.01
    scale = [(9 + d) % 12 for d in NATURAL_MINOR] + [(9 + 11) % 12]  # raised 7th allowed
    assert mass[scale].sum() >= 0.9


def test_melody_follows_an_out_of_key_chord_tone_in_minor() -> None:
    """On V (E major) in A minor the leading tone G# is a chord tone and becomes usable."""
    model = fallbacks.MelodyFallback()
    on_v = pitch_class_mass(model(melody_input(tonic=9, major=False, chord=spec.chord_index(4, "maj"), step=0)).copy())
    on_i = pitch_class_mass(model(melody_input(tonic=9, major=False, chord=spec.chord_index(9, "min"), step=0)))
    assert on_v[8] > 2 * on_i[8]


def test_melody_chord_tones_weigh_more_on_downbeats() -> None:
    model = fallbacks.MelodyFallback()
    chord_tones = [0, 4, 7]
    down = pitch_class_mass(model(melody_input(step=0)).copy())[chord_tones].sum()
    off = pitch_class_mass(model(melody_input(step=3)))[chord_tones].sum()
    assert down > off


def test_melody_resolves_a_leap_by_step_the_other_way() -> None:
    model = fallbacks.MelodyFallback()
    after_leap = model(melody_input(prev=(60, 67))).copy()  # leapt up a fifth to G4
    after_step = model(melody_input(prev=(65, 67)))  # stepped up to G4
    below, above = slice(64, 67), slice(68, 71)
    assert 1 <= 67 - int(after_leap.argmax()) <= 2  # the likeliest next note is a step down
    assert after_leap[below].sum() > after_leap[above].sum()
    assert after_leap[below].sum() > after_step[below].sum()


def test_melody_starts_a_phrase_on_a_stable_note_in_register() -> None:
    p = fallbacks.MelodyFallback()(melody_input(tonic=2, chord=spec.chord_index(2, "maj"), prev=()))
    best = int(p.argmax())
    assert best % 12 in (2, 6, 9)  # a D major chord tone
    assert 60 <= best <= 84


def test_melody_register_rises_with_valence_and_arousal() -> None:
    model = fallbacks.MelodyFallback()
    low = model(melody_input(prev=(), vadi=(-1.0, -1.0, 0.0, 0.5))).copy()
    high = model(melody_input(prev=(), vadi=(1.0, 1.0, 0.0, 0.5)))
    assert float(NOTES @ high) > float(NOTES @ low) + 3.0


def test_melody_heard_notes_get_a_mild_boost() -> None:
    model = fallbacks.MelodyFallback()
    plain = pitch_class_mass(model(melody_input()).copy())
    heard = pitch_class_mass(model(melody_input(heard=chroma(9))))
    assert heard[9] > plain[9]
    assert heard[1] < 0.01  # an out-of-key note stays out even when the input is weird


# --- harmony ----------------------------------------------------------------------------------

C_MAJOR_LONG = chroma(*MAJOR_SCALE, level=0.7)


def harmony(
    window: np.ndarray,
    *,
    bass: np.ndarray | None = None,
    tonic: int = 0,
    major: bool = True,
    key_clarity: float = 0.8,
    model: fallbacks.HarmonyFallback | None = None,
    before: np.ndarray | None = None,
) -> np.ndarray:
    """The fallback's chords for ``window`` heard now; ``before`` (default: the same) the ~1 s chroma."""
    b = zeros(12) if bass is None else bass
    x = encode.encode_harmony(
        zeros(128),
        chroma_short=window,
        chroma_window=window if before is None else before,
        bass_short=b,
        bass_chroma=b,
        chroma_long=C_MAJOR_LONG if tonic == 0 else np.roll(C_MAJOR_LONG, tonic),
        tonic=tonic,
        major=major,
        key_clarity=key_clarity,
        chroma_now=window,
        bass_now=b,
    )
    return (model or fallbacks.HarmonyFallback())(x).copy()


def best_chord(p: np.ndarray) -> str:
    return spec.chord_name(int(p[: spec.N_CHORD_CLASSES].argmax()))


def test_harmony_c_e_g_in_c_major_is_c() -> None:
    assert best_chord(harmony(chroma(0, 4, 7))) == "C"
    assert best_chord(harmony(chroma(0, 4, 7), bass=chroma(0))) == "C"


def test_harmony_a_c_e_is_a_minor() -> None:
    assert best_chord(harmony(chroma(9, 0, 4))) == "Am"
    assert best_chord(harmony(chroma(9, 0, 4), tonic=9, major=False)) == "Am"


def test_harmony_g_b_d_f_is_g7() -> None:
    assert best_chord(harmony(chroma(7, 11, 2, 5))) == "G7"
    assert best_chord(harmony(chroma(7, 11, 2, 5), bass=chroma(7))) == "G7"


def test_harmony_dominant_of_a_minor_is_major() -> None:
    """E-G#-B-D in A minor: the harmonic-minor dominant seventh, not Em."""
    assert best_chord(harmony(chroma(4, 8, 11, 2), tonic=9, major=False)) == "E7"


def test_harmony_silence_is_no_chord() -> None:
    assert best_chord(harmony(zeros(12))) == "N.C."


def test_harmony_noise_leans_to_no_chord() -> None:
    assert best_chord(harmony(np.ones(12, dtype=F32))) == "N.C."


def test_harmony_hears_the_chord_now_over_the_last_second() -> None:
    """Just changed from C to F: the ~0.25 s chroma says F, the ~1 s one still mostly C."""
    assert best_chord(harmony(chroma(5, 9, 0), before=chroma(0, 4, 7))) == "F"


def test_harmony_unclear_key_weakens_the_diatonic_prior() -> None:
    """Eb-G-Bb is the same triad in any key: with a clear C major it is unlikely, less so unclear."""
    e_flat = spec.chord_index(3, "maj")
    clear = harmony(chroma(3, 7, 10), key_clarity=0.9)
    unclear = harmony(chroma(3, 7, 10), key_clarity=0.0)
    assert unclear[e_flat] > clear[e_flat]


# --- emotion ----------------------------------------------------------------------------------


def key_correlations(chroma_abs: np.ndarray) -> np.ndarray:
    """(24,) Pearson correlations with the 12 major then 12 minor Krumhansl-Kessler profiles."""
    major = [np.corrcoef(chroma_abs, np.roll(KK_MAJOR, k))[0, 1] for k in range(12)]
    minor = [np.corrcoef(chroma_abs, np.roll(KK_MINOR, k))[0, 1] for k in range(12)]
    return np.array(major + minor, dtype=F32)


def scale_chroma(tonic: int, major: bool) -> np.ndarray:
    degrees = MAJOR_SCALE if major else NATURAL_MINOR
    weights = (1.0, 0.5, 0.8, 0.5, 0.9, 0.5, 0.4)  # tonic, third, fifth strongest
    c = zeros(12)
    for d, w in zip(degrees, weights):
        c[(tonic + d) % 12] = w
    return c


def emotion_input(*, tonic: int, major: bool, **descriptors: float) -> np.ndarray:
    tonal = scale_chroma(tonic, major)
    corr = key_correlations(tonal)
    desc = zeros(16)
    desc[Desc.INDEX["key_clarity"]] = corr.max()
    desc[Desc.INDEX["mode_margin"]] = corr[:12].max() - corr[12:].max()
    for name, value in descriptors.items():
        desc[Desc.INDEX[name]] = value
    return encode.encode_emotion(
        zeros(128),
        mel_summary=np.full(64, -60.0, dtype=F32),
        chroma_window=tonal,
        chroma_long=tonal,
        key_corr=corr,
        tonic=tonic,
        descriptors=desc,
    )


NEUTRAL = dict(
    level_db=-30.0, level_db_long=-30.0, level_range_db=8.0, onset_rate=3.0, onset_strength=0.4,
    tempo_bpm=100.0, pulse_clarity=0.5, centroid_hz=1500.0, high_ratio=0.15, low_ratio=0.3,
)  # fmt: skip
HAPPY = dict(
    level_db=-12.0, level_db_long=-14.0, level_range_db=12.0, onset_rate=7.0, onset_strength=0.7,
    tempo_bpm=150.0, pulse_clarity=0.8, centroid_hz=3000.0, high_ratio=0.3, low_ratio=0.2,
)  # fmt: skip
SAD = dict(
    level_db=-50.0, level_db_long=-48.0, level_range_db=6.0, onset_rate=1.0, onset_strength=0.1,
    tempo_bpm=60.0, pulse_clarity=0.3, centroid_hz=700.0, high_ratio=0.05, low_ratio=0.5,
)  # fmt: skip


def test_emotion_major_fast_loud_bright_beats_minor_slow_quiet_dark() -> None:
    model = fallbacks.EmotionFallback()
    happy = model(emotion_input(tonic=7, major=True, **HAPPY)).copy()
    sad = model(emotion_input(tonic=9, major=False, **SAD)).copy()
    check_ranges("emotion", happy)
    check_ranges("emotion", sad)
    assert happy[Emo.VALENCE] > 0.3 > -0.3 > sad[Emo.VALENCE]
    assert happy[Emo.AROUSAL] > 0.3 > -0.3 > sad[Emo.AROUSAL]
    assert happy[Emo.DOMINANCE] > sad[Emo.DOMINANCE]
    families = spec.EMOTION_FAMILIES
    assert families[int(happy[Emo.FAMILIES].argmax())] == "joy"
    assert families[int(sad[Emo.FAMILIES].argmax())] == "sadness"


@pytest.mark.parametrize("tonic", [0, 5, 10])
def test_emotion_mode_alone_moves_valence(tonic: int) -> None:
    model = fallbacks.EmotionFallback()
    major = model(emotion_input(tonic=tonic, major=True, **NEUTRAL)).copy()
    minor = model(emotion_input(tonic=tonic, major=False, **NEUTRAL))
    assert major[Emo.VALENCE] > minor[Emo.VALENCE] + 0.5
    assert abs(major[Emo.AROUSAL] - minor[Emo.AROUSAL]) < 0.1


def test_emotion_arousal_rises_with_level_and_density() -> None:
    model = fallbacks.EmotionFallback()
    arousal = []
    for level, rate in ((-50.0, 1.0), (-35.0, 2.5), (-20.0, 5.0), (-8.0, 8.0)):
        cues = dict(NEUTRAL, level_db=level, level_db_long=level, onset_rate=rate)
        arousal.append(float(model(emotion_input(tonic=0, major=True, **cues))[Emo.AROUSAL]))
    assert arousal == sorted(arousal) and arousal[-1] - arousal[0] > 0.8


def test_emotion_silence_pulls_arousal_down() -> None:
    model = fallbacks.EmotionFallback()
    playing = model(emotion_input(tonic=0, major=True, **NEUTRAL))[Emo.AROUSAL]
    silent = model(emotion_input(tonic=0, major=True, **dict(NEUTRAL, silence=0.9)))[Emo.AROUSAL]
    assert silent < playing - 0.3


def test_emotion_passes_the_evidence_through() -> None:
    x = emotion_input(tonic=4, major=False, **SAD)
    y = fallbacks.EmotionFallback()(x)
    s = spec.EMOTION
    np.testing.assert_array_equal(y[Emo.TONAL], x[s.input_slice("chroma_long")])
    np.testing.assert_array_equal(y[Emo.KEY_CORR], x[s.input_slice("key_corr")])
    np.testing.assert_array_equal(y[Emo.DESCRIPTORS], x[s.input_slice("descriptors")])


# --- dynamics ---------------------------------------------------------------------------------

DY = {name: sl for name, sl in spec.DYNAMICS.outputs}


def dynamics(
    *,
    level_db: float = -30.0,
    arousal: float = 0.0,
    onset_rate: float = 3.0,
    centroid_hz: float = 1500.0,
    accents: np.ndarray | None = None,
    model: fallbacks.DynamicsFallback | None = None,
) -> np.ndarray:
    desc = zeros(16)
    desc[Desc.INDEX["level_db"]] = level_db
    desc[Desc.INDEX["level_db_long"]] = level_db
    desc[Desc.INDEX["level_range_db"]] = 8.0
    desc[Desc.INDEX["onset_rate"]] = onset_rate
    desc[Desc.INDEX["centroid_hz"]] = centroid_hz
    desc[Desc.INDEX["tempo_bpm"]] = 110.0
    x = encode.encode_dynamics(
        zeros(32),
        vadi=np.array([0.0, arousal, 0.0, 0.5], dtype=F32),
        descriptors=desc,
        accents=np.tile(np.array([1.0, 0.2, 0.5, 0.2], dtype=F32), 4) if accents is None else accents,
    )
    return (model or fallbacks.DynamicsFallback())(x).copy()


def test_dynamics_velocity_increases_with_level() -> None:
    model = fallbacks.DynamicsFallback()
    velocities = [float(dynamics(level_db=db, model=model)[DY["velocity"]][0]) for db in (-65, -50, -35, -20, -8, -2)]
    assert all(a < b for a, b in zip(velocities, velocities[1:]))
    assert velocities[0] < 0.35 and velocities[-1] > 0.7
    assert velocities[0] >= 0.05  # never a velocity-0 note-on


def test_dynamics_legato_when_calm_and_sparse() -> None:
    calm = dynamics(arousal=-0.8, onset_rate=1.0)
    busy = dynamics(arousal=0.8, onset_rate=9.0)
    assert calm[DY["length"]][0] > busy[DY["length"]][0] + 0.2
    assert calm[DY["cc64"]][0] > busy[DY["cc64"]][0]
    assert busy[DY["velocity_spread"]][0] > calm[DY["velocity_spread"]][0]
    assert busy[DY["humanize"]][0] > calm[DY["humanize"]][0]


def test_dynamics_brightness_drives_cc74() -> None:
    assert dynamics(centroid_hz=3500.0)[DY["cc74"]][0] > dynamics(centroid_hz=500.0)[DY["cc74"]][0] + 0.3


def test_dynamics_accent_depth_follows_contrast() -> None:
    flat = dynamics(accents=np.full(16, 0.6, dtype=F32))
    four = np.zeros(16, dtype=F32)
    four[::4] = 1.0
    punchy = dynamics(accents=four)
    assert punchy[DY["accent"]][0] > flat[DY["accent"]][0] + 0.3


# --- groove -----------------------------------------------------------------------------------

GR = {name: sl for name, sl in spec.GROOVE.outputs}


def groove(
    heard_bar: np.ndarray,
    heard_prev_bar: np.ndarray | None = None,
    *,
    arousal: float = 0.0,
    onset_rate: float = 4.0,
    tempo_bpm: float = 120.0,
) -> np.ndarray:
    x = encode.encode_groove(
        zeros(64),
        vadi=np.array([0.0, arousal, 0.0, 0.5], dtype=F32),
        heard_bar=heard_bar,
        heard_prev_bar=heard_bar if heard_prev_bar is None else heard_prev_bar,
        tempo_bpm=tempo_bpm,
        onset_rate=onset_rate,
        prev_hits=zeros(16),
    )
    return fallbacks.GrooveFallback()(x).copy()


def test_groove_follows_four_on_the_floor() -> None:
    bar = zeros(16)
    bar[::4] = 1.0
    hits = groove(bar, onset_rate=2.0)[GR["hit_prob"]]
    beats = hits[::4]
    others = np.delete(hits, np.arange(0, 16, 4))
    assert beats.min() > others.max()
    assert beats.min() > 0.7


def test_groove_follows_an_offbeat_pattern() -> None:
    bar = zeros(16)
    bar[2::4] = 1.0  # off-beat 8ths only (a skank)
    hits = groove(bar)[GR["hit_prob"]]
    assert hits[2::4].min() > hits[1::2].max()
    assert hits[2::4].min() > hits[0::4].max()  # what was heard beats the metric template


def test_groove_swing_delays_the_off_beats() -> None:
    straight = zeros(16)
    straight[::4] = 1.0
    straight[2::4] = 0.8
    swung = zeros(16)
    swung[::4] = 1.0
    swung[3::4] = 0.8  # the off-beat 8ths land late, toward the next 16th
    t_straight = groove(straight)[GR["micro_timing"]]
    t_swung = groove(swung)[GR["micro_timing"]]
    assert np.all(t_swung[2::4] > t_straight[2::4] + 0.2)
    assert np.all(t_swung[1::2] > t_straight[1::2])
    np.testing.assert_allclose(t_swung[::4], t_straight[::4])  # downbeats stay put
    assert np.all(np.abs(t_straight) < 0.1)  # straight playing stays on the grid


def test_groove_density_rises_with_arousal() -> None:
    silent = zeros(16)
    calm = groove(silent, arousal=-0.8, onset_rate=1.0)[GR["hit_prob"]]
    excited = groove(silent, arousal=0.9, onset_rate=8.0)[GR["hit_prob"]]
    assert excited.sum() > calm.sum() + 2.0
    for hits in (calm, excited):  # the metric hierarchy holds at any density
        assert hits[0] >= hits[4] >= hits[2] >= hits[1]


def test_groove_lays_back_when_calm() -> None:
    silent = zeros(16)
    calm = groove(silent, arousal=-0.9)[GR["micro_timing"]]
    excited = groove(silent, arousal=0.9)[GR["micro_timing"]]
    assert calm.mean() > 0.0 >= excited.mean()
    assert calm.max() <= 0.1  # a tiny offset, not a different rhythm
