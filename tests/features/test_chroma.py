"""Chroma filterbanks and instantaneous-frequency chroma."""

from __future__ import annotations

import numpy as np
import pytest

from kelly_edge.features.chroma import (
    BATCH,
    InstantaneousChroma,
    bass_chroma_filterbank,
    chroma_filterbank,
    normalize_max,
)
from kelly_edge.features.mel import MelExtractor


def _midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


def _tone(rate: int, hz: float, seconds: float = 0.6, partials: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    y = sum((0.7**k) * np.sin(2 * np.pi * hz * (k + 1) * t + k) for k in range(partials))
    return (0.3 * y).astype(np.float32)


def _if_chroma(rate: int, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum of per-hop (chroma, bass) over the second half of ``y`` (steady state)."""
    ext = MelExtractor(sample_rate=rate)
    ic = InstantaneousChroma(sample_rate=rate, n_fft=ext.n_fft, hop_length=ext.hop_length)
    h = ext.hop_length
    total, bass = np.zeros(12), np.zeros(12)
    n = y.size // h
    for i in range(n):
        ext.push(y[i * h : (i + 1) * h])
        ic.update(ext.spectrum, ext.power)
        if i >= n // 2:
            total += ic.chroma
            bass += ic.bass
    return total, bass


@pytest.mark.parametrize("rate", [16000, 22050, 48000])
def test_filterbank_shape_and_bin_weights(rate: int) -> None:
    ext = MelExtractor(sample_rate=rate)
    fb = chroma_filterbank(sample_rate=rate, n_fft=ext.n_fft)
    assert fb.shape == (12, ext.n_fft // 2 + 1) and fb.dtype == np.float32
    col = fb.sum(axis=0)
    assert np.all(col <= 1.0 + 1e-5) and np.all(fb >= 0)
    inside = (ext.freqs >= 27.5) & (ext.freqs <= 2000.0)
    np.testing.assert_allclose(col[inside], 1.0, atol=1e-5)  # each in-band bin's energy counted once
    assert np.all(col[ext.freqs > 2000.0 * 2**0.25 + 1] == 0.0)
    assert np.all(col[ext.freqs < 27.5 * 2**-0.25 - 1] == 0.0)


def test_static_filterbank_finds_a_mid_register_tone() -> None:
    rate = 22050
    ext = MelExtractor(sample_rate=rate)
    fb = chroma_filterbank(sample_rate=rate, n_fft=ext.n_fft)
    for note in (64, 67, 71, 74):  # E4 G4 B4 D5
        y = _tone(rate, _midi_hz(note))
        for i in range(y.size // ext.hop_length):
            ext.push(y[i * ext.hop_length : (i + 1) * ext.hop_length])
        assert int(np.argmax(fb @ ext.power)) == note % 12


def test_bass_filterbank_ignores_high_tones() -> None:
    ext = MelExtractor(sample_rate=22050)
    fb = bass_chroma_filterbank(sample_rate=22050, n_fft=ext.n_fft)
    y = _tone(22050, 880.0)
    for i in range(y.size // ext.hop_length):
        ext.push(y[i * ext.hop_length : (i + 1) * ext.hop_length])
    assert float((fb @ ext.power).sum()) < 1e-6 * float(ext.power.sum())


@pytest.mark.parametrize("rate", [16000, 22050, 48000])
@pytest.mark.parametrize("note", [33, 36, 38, 43, 46, 52])  # A1 .. E3: bins wider than semitones
def test_instantaneous_chroma_resolves_bass_notes(rate: int, note: int) -> None:
    chroma, bass = _if_chroma(rate, _tone(rate, _midi_hz(note), partials=4))
    assert int(np.argmax(chroma)) == note % 12
    assert int(np.argmax(bass)) == note % 12
    # sharp: the true pitch class holds most of the energy, neighbours little
    assert bass[note % 12] > 0.6 * bass.sum()
    assert max(bass[(note + 1) % 12], bass[(note - 1) % 12]) < 0.15 * bass[note % 12]


def test_instantaneous_chroma_beats_the_static_filterbank_on_low_notes() -> None:
    rate = 22050
    note = 45  # A2, 110 Hz: bins are 21.5 Hz apart, a semitone is 6.5 Hz
    y = _tone(rate, _midi_hz(note))
    chroma, _ = _if_chroma(rate, y)
    ext = MelExtractor(sample_rate=rate)
    fb = chroma_filterbank(sample_rate=rate, n_fft=ext.n_fft)
    for i in range(y.size // ext.hop_length):
        ext.push(y[i * ext.hop_length : (i + 1) * ext.hop_length])
    static = fb @ ext.power
    share_if = chroma[note % 12] / chroma.sum()
    share_static = static[note % 12] / static.sum()
    assert share_if > 0.8
    assert share_if > share_static + 0.3


def test_instantaneous_chroma_of_a_chord() -> None:
    rate = 44100
    y = sum(_tone(rate, _midi_hz(n), partials=1) for n in (60, 64, 67))  # C major triad
    chroma, _ = _if_chroma(rate, y.astype(np.float32))
    top3 = set(np.argsort(chroma)[-3:].tolist())
    assert top3 == {0, 4, 7}


def test_instantaneous_chroma_has_preallocated_outputs() -> None:
    ext = MelExtractor(sample_rate=22050)
    ic = InstantaneousChroma(sample_rate=22050, n_fft=ext.n_fft, hop_length=ext.hop_length)
    chroma, bass = ic.chroma, ic.bass
    ext.push(np.ones(ext.hop_length, dtype=np.float32))
    ic.update(ext.spectrum, ext.power)
    assert ic.chroma is chroma and ic.bass is bass
    assert np.all(np.isfinite(chroma)) and np.all(np.isfinite(bass))


@pytest.mark.parametrize("rate", [22050, 48000])
def test_batches_give_the_same_chroma_as_hop_by_hop(rate: int) -> None:
    """A flush of up to BATCH hops equals the hops computed one by one (the phase of the hop
    before a batch carries over), whatever the batch sizes."""
    y = sum(_tone(rate, _midi_hz(n), seconds=1.0, partials=4) for n in (45, 57, 61, 64))
    y = y + 0.01 * np.random.default_rng(5).standard_normal(y.size).astype(np.float32)
    ext = MelExtractor(sample_rate=rate)
    one = InstantaneousChroma(sample_rate=rate, n_fft=ext.n_fft, hop_length=ext.hop_length)
    batched = InstantaneousChroma(sample_rate=rate, n_fft=ext.n_fft, hop_length=ext.hop_length)
    h = ext.hop_length
    sizes = [1, BATCH, 3, 5, BATCH, 2, 7, BATCH, 1, 4]
    expected, got, i = [], [], 0
    for size in sizes:
        for _ in range(size):
            ext.push(y[i * h : (i + 1) * h])
            one.update(ext.spectrum, ext.power)
            expected.append(one.frames.copy())
            batched.push(ext.spectrum, ext.power)
            i += 1
        frames = batched.flush()
        assert frames.shape == (size, 2, 12)
        got.extend(frames.copy())
        np.testing.assert_array_equal(batched.frames, frames[-1])
    np.testing.assert_allclose(np.array(got), np.array(expected), rtol=1e-12, atol=1e-9)
    assert np.array(got)[:, 0].max() > 0.0 and np.array(got)[:, 1].max() > 0.0
    assert batched.flush().shape == (0, 2, 12)


def test_pushing_past_a_full_batch_is_refused() -> None:
    ext = MelExtractor(sample_rate=22050)
    ic = InstantaneousChroma(sample_rate=22050, n_fft=ext.n_fft, hop_length=ext.hop_length)
    for _ in range(BATCH):
        ic.push(ext.spectrum, ext.power)
    with pytest.raises(RuntimeError, match="flush first"):
        ic.push(ext.spectrum, ext.power)
    assert ic.flush().shape[0] == BATCH and ic.pending == 0


def test_normalize_max() -> None:
    out = np.empty(4, dtype=np.float32)
    normalize_max(np.array([1.0, 2.0, 4.0, 0.0]), out=out)
    np.testing.assert_allclose(out, [0.25, 0.5, 1.0, 0.0])
    normalize_max(np.array([1.0, 2.0, 4.0, 0.0]), out=out, floor=8.0)  # quieter than the floor
    np.testing.assert_allclose(out, [0.125, 0.25, 0.5, 0.0])
    normalize_max(np.zeros(4), out=out)
    assert np.all(out == 0.0)
