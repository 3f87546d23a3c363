"""Krumhansl–Kessler key finding on chroma vectors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kelly_edge.features.key import (
    AUDIO_PROFILES,
    KK_MAJOR,
    KK_MINOR,
    SYMBOLIC_PROFILES,
    best_key,
    key_correlations,
    key_index,
    key_name,
    key_profiles,
)
from kelly_edge.models import spec

chromas = arrays(np.float64, 12, elements=st.floats(0.0, 100.0, allow_nan=False, width=64))


def _corr(chroma: np.ndarray, profiles: np.ndarray = SYMBOLIC_PROFILES) -> np.ndarray:
    out = np.empty(24, dtype=np.float64)
    return key_correlations(np.asarray(chroma, dtype=np.float64), out, profiles=profiles)


@pytest.mark.parametrize("tonic", range(12))
@pytest.mark.parametrize("major", [True, False])
def test_a_rotated_profile_is_its_own_key(tonic: int, major: bool) -> None:
    chroma = np.roll(KK_MAJOR if major else KK_MINOR, tonic)
    corr = _corr(chroma)
    t, m, clarity, margin = best_key(corr)
    assert (t, m) == (tonic, major)
    assert clarity == pytest.approx(1.0)
    assert (margin > 0) == major
    assert corr[key_index(tonic, major)] == pytest.approx(1.0)


def test_correlation_is_pearson() -> None:
    rng = np.random.default_rng(3)
    chroma = rng.random(12)
    corr = _corr(chroma)
    for k in (0, 5, 13, 22):
        profile = np.roll(KK_MAJOR if k < 12 else KK_MINOR, k % 12)
        assert corr[k] == pytest.approx(np.corrcoef(chroma, profile)[0, 1], abs=1e-12)


def test_scale_tones_of_a_major_scale() -> None:
    # notes of D major, tonic triad weighted: D major should win
    chroma = np.zeros(12)
    chroma[[2, 4, 6, 7, 9, 11, 1]] = 1.0
    chroma[[2, 6, 9]] += 1.0
    assert best_key(_corr(chroma))[:2] == (2, True)


def test_audio_profiles_expect_harmonics() -> None:
    # A sounding C major scale whose notes each carry harmonics: partial 3 adds the fifth above,
    # partial 5 the major third. The audio profiles must still say C major.
    weights = np.zeros(12)
    for pc, w in zip((0, 2, 4, 5, 7, 9, 11), (3, 1, 2, 1, 2.5, 1, 1)):
        for n in range(1, 9):
            weights[(pc + int(round(12 * np.log2(n)))) % 12] += w * 0.8 ** (n - 1)
    assert best_key(_corr(weights, AUDIO_PROFILES))[:2] == (0, True)


def test_harmonic_profiles_reduce_to_kk_with_one_partial() -> None:
    np.testing.assert_allclose(key_profiles(harmonics=1), SYMBOLIC_PROFILES)
    assert not np.allclose(AUDIO_PROFILES, SYMBOLIC_PROFILES)
    for rows in (SYMBOLIC_PROFILES, AUDIO_PROFILES):
        np.testing.assert_allclose(rows.sum(axis=1), 0.0, atol=1e-12)
        np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0)


def test_flat_or_silent_chroma_has_no_key() -> None:
    assert np.all(_corr(np.zeros(12)) == 0.0)
    assert np.all(_corr(np.full(12, 3.0)) == 0.0)


def test_works_in_float32_in_place() -> None:
    out = np.empty(24, dtype=np.float32)
    res = key_correlations(np.roll(KK_MINOR, 9).astype(np.float32), out, profiles=AUDIO_PROFILES.astype(np.float32))
    assert res is out
    assert best_key(out)[:2] == (9, False)


@settings(max_examples=60, deadline=None)
@given(chromas, st.integers(0, 11), st.floats(0.01, 1e4), st.floats(0.0, 50.0))
def test_rotation_equivariance_and_scale_invariance(chroma: np.ndarray, shift: int, scale: float, offset: float) -> None:
    corr = _corr(chroma, AUDIO_PROFILES)
    assert np.all(np.isfinite(corr)) and np.all(np.abs(corr) <= 1.0)
    if np.ptp(chroma) < 0.01:  # (near-)flat: no key, and float round-off would decide
        return
    rotated = _corr(np.roll(chroma, shift), AUDIO_PROFILES)
    np.testing.assert_allclose(rotated[:12], np.roll(corr[:12], shift), atol=1e-9)
    np.testing.assert_allclose(rotated[12:], np.roll(corr[12:], shift), atol=1e-9)
    np.testing.assert_allclose(_corr(chroma * scale + offset, AUDIO_PROFILES), corr, atol=1e-7)


def test_key_names() -> None:
    assert key_name(0, True) == "C major"
    assert key_name(9, False) == "A minor"
    assert key_name(6, False) == "F# minor"
    assert key_name(10, True) == f"{spec.PITCH_NAMES[10]} major"
    assert key_index(9, False) == 21 and key_index(0, True) == 0
