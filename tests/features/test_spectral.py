"""SpectralShape: the batched EMAs equal the hop-by-hop definition, whatever the batch boundaries."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from kelly_edge.features.mel import MelExtractor
from kelly_edge.features.spectral import BATCH, SpectralShape, hop_values

HOP_S = 0.01
TAU_S = 1.0


def _hops(rate: int, n: int, seed: int = 0) -> tuple[MelExtractor, list[tuple[np.ndarray, np.ndarray]]]:
    """Real spectra: a chirp with harmonics plus noise bursts, through the mel extractor."""
    mel = MelExtractor(sample_rate=rate)
    rng = np.random.default_rng(seed)
    t = np.arange(n * mel.hop_length) / rate
    x = 0.3 * np.sin(2 * np.pi * (100 + 400 * t) * t) + 0.1 * np.sin(2 * np.pi * 3 * (100 + 400 * t) * t)
    x += np.where((t % 0.5) < 0.1, 0.2, 0.001) * rng.standard_normal(t.size)
    out = []
    for k in range(n):
        mel.push(x[k * mel.hop_length : (k + 1) * mel.hop_length].astype(np.float32))
        out.append((mel.power.copy(), mel.mel_power.copy()))
    return mel, out


def _reference(hops: list[tuple[np.ndarray, np.ndarray]], freqs: np.ndarray) -> np.ndarray:
    """The EMA applied hop by hop, as the definition says."""
    a = 1.0 - np.exp(-HOP_S / TAU_S)
    e = np.zeros(5)
    for power, mp in hops:
        v = hop_values(power, mp, freqs)
        if v is not None:
            e += a * (v - e)
    return e


@pytest.mark.parametrize("rate", [22050, 48000])
@pytest.mark.parametrize("flush_every", [1, 7, 15, BATCH, None])  # None: only the ring's own flushes
def test_batches_equal_the_hop_by_hop_ema(rate: int, flush_every: int | None) -> None:
    mel, hops = _hops(rate, 150)
    shape = SpectralShape(freqs=mel.freqs, n_mels=mel.n_mels, hop_s=HOP_S, tau_s=TAU_S)
    for i, (power, mp) in enumerate(hops):
        shape.push(power, mp)
        assert shape.pending < BATCH  # a full ring flushes itself
        if flush_every is not None and (i + 1) % flush_every == 0:
            shape.flush()
    shape.flush()
    assert shape.pending == 0
    ref = _reference(hops, mel.freqs)
    np.testing.assert_allclose(shape.values, ref, rtol=1e-9, atol=1e-12)
    centroid, rolloff, flatness, low, high = ref
    assert 100.0 < centroid < rolloff < rate / 2 and 0.0 < flatness < 1.0 and 0.0 < low + high < 1.0


def test_hop_values_of_known_spectra() -> None:
    freqs = np.linspace(0.0, 11025.0, 513)
    white = np.ones(513)
    v = hop_values(white, np.ones(128), freqs)
    assert v is not None
    assert v[0] == pytest.approx(11025.0 / 2, rel=1e-9)  # centroid of a flat spectrum
    assert v[1] == pytest.approx(0.85 * 11025.0, abs=freqs[1])  # 85 % of the bins
    assert v[2] == pytest.approx(1.0)  # flat mel powers
    assert v[3] == pytest.approx(np.mean(freqs < 250.0)) and v[4] == pytest.approx(np.mean(freqs > 2000.0))
    tone = np.zeros(513)
    tone[100] = 1.0
    v = hop_values(tone, np.r_[1.0, np.zeros(127)], freqs)
    assert v is not None and v[0] == v[1] == freqs[100] and v[2] < 1e-3
    assert hop_values(np.zeros(513), np.zeros(128), freqs) is None


def test_a_hop_without_power_is_skipped_not_averaged_in() -> None:
    mel, hops = _hops(22050, 40)
    shape = SpectralShape(freqs=mel.freqs, n_mels=mel.n_mels, hop_s=HOP_S, tau_s=TAU_S)
    zero = (np.zeros_like(hops[0][0]), np.zeros_like(hops[0][1]))
    with_gap = hops[:20] + [zero] + hops[20:]
    for power, mp in with_gap:
        shape.push(power, mp)
    shape.flush()
    np.testing.assert_allclose(shape.values, _reference(hops, mel.freqs), rtol=1e-9)


def test_push_and_flush_do_not_allocate_arrays() -> None:
    mel, hops = _hops(48000, 3 * BATCH)
    shape = SpectralShape(freqs=mel.freqs, n_mels=mel.n_mels, hop_s=HOP_S, tau_s=TAU_S)
    for power, mp in hops[:BATCH]:  # warm-up: one full ring
        shape.push(power, mp)
    tracemalloc.start()
    try:
        peaks = []
        for i, (power, mp) in enumerate(hops[BATCH:]):
            tracemalloc.reset_peak()
            base, _ = tracemalloc.get_traced_memory()
            shape.push(power, mp)
            if i % 11 == 10:
                shape.flush()
            _, peak = tracemalloc.get_traced_memory()
            peaks.append(peak - base)
    finally:
        tracemalloc.stop()
    assert max(peaks) < 4096, max(peaks)  # one 48 kHz spectrum is 8 KiB
