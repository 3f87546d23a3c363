"""The real-dev set: real recordings to tune the beat tracker on, apart from the evaluation's.

Its packages are installed by ``make evaluate`` only, so these tests read the annotation files and,
where a package is installed, its audio; the suite's small set never includes it.
"""

from __future__ import annotations

import numpy as np
import pytest

from tools.evaluate import metrics
from tools.evaluate.cache import Cache
from tools.evaluate.recordings import BEATS_AGREE, PACKAGE, Recording, TooShort, annotated, excerpt


def test_real_dev_is_annotated_and_apart_from_the_evaluation_recordings() -> None:
    dev = annotated(dev=True)
    assert 30 <= len(dev) <= 80  # every excerpt whose beat trackers agree: one recording must not decide a tuning step
    packages = {rec.package for rec, _, _ in dev}
    assert PACKAGE not in packages and len(packages) >= 3  # other music than the evaluation's, varied
    assert "wesnoth-1.16-music" in packages  # orchestral, as the evaluation's recordings are
    held = {ref.name for _, ref, _ in annotated()}
    assert held.isdisjoint(ref.name for _, ref, _ in dev)
    for _, ref, ann in dev:
        assert ann["beats_agreement"] >= BEATS_AGREE and ref.beats is not None  # essentia's two trackers agree
        # the annotation's beats agree with the other method's tempo: multifeature vs degara
        assert ann["bpm"] == pytest.approx(ann["bpm_degara"], rel=0.04)


def test_real_dev_spans_the_tempi_of_the_evaluation_recordings() -> None:
    """Tuned on 60-160 BPM only, the tracker never met a piece like the half of the evaluation's
    scored recordings at 161.6 BPM: every scored tempo has dev pieces within 10 % of it."""
    dev = [ann["bpm"] for _, _, ann in annotated(dev=True)]
    scored = [ann["bpm"] for _, ref, ann in annotated() if ref.beats is not None]
    assert scored
    for bpm in scored:
        assert sum(abs(d / bpm - 1.0) <= 0.1 for d in dev) >= 2, f"no real-dev piece near {bpm:.0f} BPM"


def test_real_dev_excerpts_decode_when_their_packages_are_installed(tmp_path) -> None:
    dev = [(rec, ref) for rec, ref, _ in annotated(dev=True) if rec.path.is_file()]
    if not dev:
        pytest.skip("no real-dev package installed (make evaluate installs them)")
    rec, ref = next((r for r in dev if r[0].member), dev[0])  # a zip member (nexuiz) when there is one
    from tools.render import load_wav_mono

    x, rate = load_wav_mono(excerpt(rec, Cache(tmp_path)))
    assert x.size / rate == pytest.approx(ref.duration, abs=0.1)
    assert np.sqrt(np.mean(x**2)) > 0.01
    assert metrics.beat_f(ref.beats, ref.beats) == 1.0


def test_a_recording_that_ends_before_its_excerpt_is_refused_even_when_an_excerpt_was_cached(tmp_path) -> None:
    """A 48 s track cut from 45 s gave a 3 s excerpt that was annotated and kept (nexuiz-thunder)."""
    import soundfile as sf

    path = tmp_path / "short.wav"
    sf.write(str(path), np.zeros(22050 * 48, dtype=np.float32), 22050)
    rec = Recording("short", path, 45.0, "test")
    with pytest.raises(TooShort, match="48 s, too short"):
        excerpt(rec, Cache(tmp_path / "cache"))
    whole = Recording("whole", path, 10.0, "test")
    x, _ = sf.read(str(excerpt(whole, Cache(tmp_path / "cache"))))
    assert x.size == 30 * 22050
