"""The key tracker and the chroma it listens to: steady keys, followed modulations, unsquared chroma."""

from __future__ import annotations

import numpy as np
import pytest

from kelly_edge.features.chroma import InstantaneousChroma
from kelly_edge.features.key import AUDIO_PROFILES, KK_MAJOR, KK_MINOR, KeyTracker, key_correlations, key_index
from kelly_edge.features.mel import MelExtractor

DECISION_S = 0.08  # the feature context decides every 8 hops


def corr_of(profile: np.ndarray, tonic: int) -> np.ndarray:
    out = np.zeros(24)
    return key_correlations(np.roll(profile, tonic).astype(np.float64), out, profiles=AUDIO_PROFILES).copy()


def test_a_passing_chord_does_not_move_the_key() -> None:
    t = KeyTracker()
    for _ in range(int(20 / DECISION_S)):
        t.update(corr_of(KK_MAJOR, 0))
    for _ in range(int(1.0 / DECISION_S)):  # a second that sounds like the relative minor
        t.update(corr_of(KK_MINOR, 9))
    assert t.index == key_index(0, True)


@pytest.mark.parametrize(("tonic", "major", "within_s"), [(2, True, 8.0), (3, True, 8.0), (7, True, 16.0)])
def test_a_modulation_is_followed(tonic: int, major: bool, within_s: float) -> None:
    """After 20 s of C major, the music moves: a key two fifths away is followed within 8 s; the
    dominant, whose profile is closest, within 16 s (on real music the median is ~6 s:
    ``python -m tools.train.measure key``)."""
    t = KeyTracker()
    for _ in range(int(20 / DECISION_S)):
        t.update(corr_of(KK_MAJOR, 0))
    target = corr_of(KK_MAJOR if major else KK_MINOR, tonic)
    for n in range(1, int(within_s / DECISION_S) + 1):
        if t.update(target) == key_index(tonic, major):
            break
    assert t.index == key_index(tonic, major), n


def test_the_tracker_distribution_sums_to_one() -> None:
    t = KeyTracker()
    t.update(corr_of(KK_MINOR, 4))
    p = t.probabilities(np.zeros(24))
    assert p.sum() == pytest.approx(1.0) and int(p.argmax()) == key_index(4, False)


def test_chroma_is_magnitude_not_power() -> None:
    """Twice the amplitude doubles the magnitude chroma (x4 for the squared spectrum): a loud
    overtone weighs in proportion, not squared, against the fundamentals."""
    sr = 22050
    mel = MelExtractor(sample_rate=sr)
    x = (0.1 * np.sin(2 * np.pi * 220.0 * np.arange(sr) / sr)).astype(np.float32)
    got = {}
    for comp in ("magnitude", "power"):
        for gain in (1.0, 2.0):
            ic = InstantaneousChroma(sample_rate=sr, n_fft=mel.n_fft, hop_length=mel.hop_length, compression=comp)
            m = MelExtractor(sample_rate=sr)
            h = m.hop_length
            for i in range(40):
                m.push(gain * x[i * h : (i + 1) * h])
                ic.update(m.spectrum, m.power)
            got[(comp, gain)] = float(ic.chroma[9])
    assert got[("magnitude", 2.0)] / got[("magnitude", 1.0)] == pytest.approx(2.0, rel=1e-3)
    assert got[("power", 2.0)] / got[("power", 1.0)] == pytest.approx(4.0, rel=1e-3)
    assert InstantaneousChroma(sample_rate=sr, n_fft=mel.n_fft, hop_length=mel.hop_length).compression == "magnitude"
    with pytest.raises(ValueError, match="compression"):
        InstantaneousChroma(sample_rate=sr, n_fft=mel.n_fft, hop_length=mel.hop_length, compression="cubed")
