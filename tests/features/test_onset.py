"""Spectral flux, the onset picker and the autocorrelation tempo, on synthetic strength curves."""

from __future__ import annotations

import numpy as np
import pytest

from kelly_edge.features.onset import OnsetDetector, SpectralFlux, TempoEstimator

HOP_S = 0.01


def test_flux_is_the_mean_rise_only() -> None:
    flux = SpectralFlux(n_bands=4)
    assert flux.update(np.zeros(4, dtype=np.float32)) == 0.0  # first frame: nothing to compare
    assert flux.update(np.array([4.0, 0.0, -2.0, 2.0], dtype=np.float32)) == pytest.approx(1.5)
    assert flux.update(np.array([0.0, 0.0, -2.0, 2.0], dtype=np.float32)) == 0.0  # falls don't count
    assert flux.update(np.array([0.0, 8.0, -2.0, 2.0], dtype=np.float32)) == pytest.approx(2.0)
    flux.reset()
    assert flux.update(np.full(4, 50.0, dtype=np.float32)) == 0.0
    from_silence = SpectralFlux(n_bands=4, initial=-100.0)
    assert from_silence.update(np.full(4, -40.0, dtype=np.float32)) == pytest.approx(60.0)


def _pulses(period_s: float, seconds: float, *, jitter: float = 0.0, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    """An onset-strength curve: decaying spikes every ``period_s`` over a noise floor."""
    rng = np.random.default_rng(seed)
    n = int(seconds / HOP_S)
    s = noise * rng.random(n)
    for k in range(int(seconds / period_s)):
        i = int(round((k * period_s + rng.normal(0, jitter)) / HOP_S))
        for j, v in enumerate((3.0, 1.2, 0.4)):
            if 0 <= i + j < n:
                s[i + j] += v
    return s


def test_detector_finds_each_spike_once_with_one_hop_latency() -> None:
    det = OnsetDetector(hop_s=HOP_S)
    s = _pulses(0.25, 5.0)
    hits = [i for i, v in enumerate(s) if det.update(float(v))]
    spikes = [int(round(k * 0.25 / HOP_S)) for k in range(20)]
    assert len(hits) == len(spikes)
    assert all(h - 1 == p for h, p in zip(hits, spikes))  # confirmed on the hop after the peak
    assert det.strength == pytest.approx(s[spikes[-1]])


def test_detector_ignores_steady_noise() -> None:
    det = OnsetDetector(hop_s=HOP_S)
    rng = np.random.default_rng(5)
    s = 2.0 + 0.2 * rng.standard_normal(1000)  # high but even flux, as for noise
    hits = sum(det.update(float(v)) for v in s)
    assert hits <= 5  # a handful of 10 s


def test_detector_min_gap() -> None:
    det = OnsetDetector(hop_s=HOP_S, min_gap_s=0.1)
    s = np.zeros(100)
    s[[10, 13, 16, 40]] = 5.0
    hits = [i - 1 for i, v in enumerate(s) if det.update(float(v))]
    assert hits == [10, 40]


def test_detector_survives_bad_values() -> None:
    det = OnsetDetector(hop_s=HOP_S)
    for v in (np.nan, np.inf, -np.inf, -5.0, 1e30, 0.0):
        det.update(float(v))
    assert np.isfinite(det.strength)


@pytest.mark.parametrize("bpm", [72.0, 90.0, 120.0, 136.0, 150.0])
def test_tempo_of_a_beat(bpm: float) -> None:
    est = TempoEstimator(hop_s=HOP_S)
    for v in _pulses(60.0 / bpm, 8.0, jitter=0.004, seed=int(bpm)):
        est.update(float(v))
    assert est.tempo_bpm == pytest.approx(bpm, rel=0.03)
    assert est.pulse_clarity > 0.5


def test_octave_ambiguity_prefers_80_to_160() -> None:
    # spikes every 0.25 s fit 240, 120 and 60 BPM alike; the prior picks 120
    est = TempoEstimator(hop_s=HOP_S)
    for v in _pulses(0.25, 8.0):
        est.update(float(v))
    assert est.tempo_bpm == pytest.approx(120.0, rel=0.03)
    # 8th notes at 90 BPM are pulses at 180 BPM: 90 is the reading inside 80..160
    est = TempoEstimator(hop_s=HOP_S)
    for v in _pulses(60.0 / 180.0, 8.0):
        est.update(float(v))
    assert est.tempo_bpm == pytest.approx(90.0, rel=0.03)


def test_tempo_unknown_for_noise_and_at_start() -> None:
    est = TempoEstimator(hop_s=HOP_S)
    pulses = _pulses(0.5, 2.0)
    for v in pulses:
        est.update(float(v))
    assert est.tempo_bpm == 0.0  # less than half the window heard
    est = TempoEstimator(hop_s=HOP_S)
    rng = np.random.default_rng(9)
    for v in rng.exponential(size=800):
        est.update(float(v))
    assert est.pulse_clarity < 0.2
    est = TempoEstimator(hop_s=HOP_S)
    for _ in range(800):
        est.update(0.0)
    assert est.tempo_bpm == 0.0 and est.pulse_clarity == 0.0


def test_tempo_uses_the_real_hop_duration() -> None:
    hop_s = 220 / 22050  # 9.977 ms
    est = TempoEstimator(hop_s=hop_s)
    period = 0.5  # 120 BPM
    n = int(8.0 / hop_s)
    s = np.zeros(n)
    for k in range(16):
        s[int(round(k * period / hop_s))] = 3.0
    for v in s:
        est.update(float(v))
    assert est.tempo_bpm == pytest.approx(120.0, rel=0.01)


def test_flux_matches_librosa_onset_strength() -> None:
    import librosa

    from kelly_edge.features.mel import MelExtractor

    rate = 22050
    rng = np.random.default_rng(8)
    t = np.arange(rate * 2) / rate
    y = (np.sin(2 * np.pi * 330 * t) * (np.sin(2 * np.pi * 3 * t) > 0) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
    ext = MelExtractor(sample_rate=rate)
    flux = SpectralFlux(n_bands=128)
    frames, ours = [], []
    for i in range(y.size // ext.hop_length):
        frame = ext.push(y[i * ext.hop_length : (i + 1) * ext.hop_length])
        frames.append(frame.copy())
        ours.append(flux.update(frame))
    ref = librosa.onset.onset_strength(S=np.stack(frames, axis=1), lag=1, max_size=1, center=False, aggregate=np.mean)
    # librosa pads `lag` zero frames at the start, like our first frame's 0
    np.testing.assert_allclose(np.array(ours), ref[: len(ours)], rtol=1e-5, atol=1e-4)
    assert max(ours) > 1.0  # the gated tone really has onsets
