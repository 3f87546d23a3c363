"""Onsets and tempo from the log-mel stream: flux, a causal peak picker, an autocorrelation tempo.

All three are small stateful classes fed once per hop; each preallocates its buffers so the
per-hop path allocates no arrays. Times are given in seconds and converted with the exact hop
duration ``hop_length / sample_rate`` (22.05 kHz hops are 9.977 ms, not 10).
"""

from __future__ import annotations

import math

import numpy as np


class SpectralFlux:
    """Onset strength: half-wave rectified difference of consecutive log-mel frames, band mean.

    Like ``librosa.onset.onset_strength`` (lag 1, no max filter, mean over bands), in dB per band
    per hop. ``initial`` is the frame assumed before the first one (e.g. the -100 dB of a silent
    window, which is what a streaming extractor starts from); None: the first frame gives 0.
    """

    def __init__(self, *, n_bands: int, initial: float | None = None) -> None:
        self._initial = initial
        self._prev = np.zeros(n_bands, dtype=np.float32)
        self._diff = np.zeros(n_bands, dtype=np.float32)
        self._primed = False
        self.reset()

    def update(self, frame: np.ndarray) -> float:
        """Flux of ``frame`` (n_bands,) dB against the previous frame; >= 0."""
        if not self._primed:
            self._prev[...] = frame
            self._primed = True
            return 0.0
        np.subtract(frame, self._prev, out=self._diff)
        np.maximum(self._diff, 0.0, out=self._diff)
        self._prev[...] = frame
        return float(self._diff.sum()) / self._diff.size

    def reset(self) -> None:
        """Forget the previous frame: back to ``initial`` (or to "the next update returns 0")."""
        if self._initial is None:
            self._primed = False
        else:
            self._prev[...] = self._initial
            self._primed = True


class OnsetDetector:
    """Causal peak picker with an adaptive threshold, one hop of latency.

    Hop ``t-1`` is an onset when its strength is a local maximum (``s[t-2] <= s[t-1] > s[t]``),
    exceeds ``ratio`` × the mean strength of the preceding ``window_s`` plus ``delta`` (so steady
    textures and noise, whose flux is high but even, do not trigger), and at least ``min_gap_s``
    has passed since the previous onset. ``update`` returns True on the hop that confirms the
    peak, and ``strength`` holds the peak's strength.
    """

    def __init__(
        self,
        *,
        hop_s: float,
        window_s: float = 0.5,
        ratio: float = 1.5,
        delta: float = 0.3,
        min_gap_s: float = 0.05,
    ) -> None:
        self._n = max(2, round(window_s / hop_s))
        self._ring = np.zeros(self._n, dtype=np.float64)
        self._sum = 0.0
        self._i = 0
        self._filled = 0
        self.ratio = float(ratio)
        self.delta = float(delta)
        self._min_gap = max(1, round(min_gap_s / hop_s))
        self._since = self._min_gap
        self._s1 = 0.0  # s[t-1]
        self._s2 = 0.0  # s[t-2]
        self._thr1 = math.inf  # threshold that applied to s[t-1]
        self.strength = 0.0

    def update(self, strength: float) -> bool:
        """Feed ``s[t]``; True if ``s[t-1]`` was an onset."""
        s = strength if math.isfinite(strength) and strength > 0.0 else 0.0
        is_onset = (
            self._s1 > self._thr1 and self._s1 >= self._s2 and self._s1 > s and self._since >= self._min_gap
        )
        self._since = 0 if is_onset else self._since + 1
        if is_onset:
            self.strength = self._s1
        # threshold for s[t] from the window before it, then push s[t] into the window
        mean = self._sum / self._filled if self._filled else 0.0
        thr = self.ratio * mean + self.delta
        old = self._ring[self._i]
        self._ring[self._i] = s
        self._sum += s - old
        self._i = (self._i + 1) % self._n
        self._filled = min(self._filled + 1, self._n)
        if self._i == 0:  # re-sum once per lap so float drift cannot accumulate
            self._sum = float(self._ring.sum())
        self._s2, self._s1, self._thr1 = self._s1, s, thr
        return is_onset


class TempoEstimator:
    """Tempo and pulse clarity from the autocorrelation of ~6 s of onset strength.

    Every ``update_s`` the last ``window_s`` of strengths is mean-removed and autocorrelated
    over the lags of ``min_bpm``..``max_bpm``. Each lag's normalised autocorrelation is weighted
    by a log-normal prior centred on 120 BPM (one octave standard deviation, as librosa's
    ``beat.tempo``): on octave ambiguity, when 60, 120 and 240 BPM all fit the onsets, the
    80–160 BPM reading wins. The peak lag is refined by parabolic interpolation.

    ``tempo_bpm`` is 0 while unknown: less than half the window heard, no variation, or pulse
    clarity below ``min_clarity``. ``pulse_clarity`` (0..1) is the normalised autocorrelation at
    the chosen lag: 1 for a metronome, ~0 for noise.
    """

    def __init__(
        self,
        *,
        hop_s: float,
        window_s: float = 6.0,
        min_bpm: float = 40.0,
        max_bpm: float = 240.0,
        update_s: float = 0.25,
        prior_bpm: float = 120.0,
        prior_octaves: float = 1.0,
        min_clarity: float = 0.1,
    ) -> None:
        self.hop_s = float(hop_s)
        self._n = max(8, round(window_s / hop_s))
        self._ring = np.zeros(self._n, dtype=np.float32)
        self._i = 0
        self._filled = 0
        self._lin = np.zeros(self._n, dtype=np.float32)
        lag_min = max(1, math.floor(60.0 / (max_bpm * hop_s)))
        lag_max = min(self._n // 2, math.ceil(60.0 / (min_bpm * hop_s)))
        self._lags = np.arange(lag_min - 1, lag_max + 2)  # one extra each side for interpolation
        self._lag_lo, self._lag_hi = lag_min, lag_max
        # All lags at once as one matrix-vector product over a strided view (row j = the signal
        # shifted by lag j, a fixed overlap of m hops): a per-lag Python loop of dot products cost
        # ~4 ms every update and set the hop's p99, and an FFT allocates its work buffers.
        self._m = self._n - int(self._lags[-1])
        self._lin64 = np.zeros(self._n, dtype=np.float64)
        base = self._lin64[int(self._lags[0]) :]
        self._shifted = np.lib.stride_tricks.as_strided(
            base, shape=(self._lags.size, self._m), strides=(base.strides[0], base.strides[0]), writeable=False
        )
        self._acf = np.zeros(self._lags.size, dtype=np.float64)
        self._lags_ro, self._acf_ro = self._lags.view(), self._acf.view()
        self._lags_ro.flags.writeable = self._acf_ro.flags.writeable = False
        bpm = 60.0 / (np.maximum(self._lags, 1) * hop_s)
        self._prior = np.exp(-0.5 * (np.log2(bpm / prior_bpm) / prior_octaves) ** 2)
        inside = (self._lags >= lag_min) & (self._lags <= lag_max)
        self._prior[~inside] = 0.0
        self._score = np.zeros(self._lags.size, dtype=np.float64)
        self._every = max(1, round(update_s / hop_s))
        self._count = 0
        self.min_clarity = float(min_clarity)
        self.tempo_bpm = 0.0
        self.pulse_clarity = 0.0

    @property
    def lags(self) -> np.ndarray:
        """The autocorrelation's lags in hops (read-only): ``acf[j]`` is at lag ``lags[j]``."""
        return self._lags_ro

    @property
    def acf(self) -> np.ndarray:
        """The last estimate's normalised autocorrelation per lag (read-only view; 1 at lag 0),
        for a caller that weighs the periodicities itself (the beat tracker's comb filters)."""
        return self._acf_ro

    def update(self, strength: float) -> bool:
        """Feed one hop's onset strength; re-estimates every ``update_s``. True on a hop whose
        estimate computed a fresh :attr:`acf`."""
        self._ring[self._i] = strength if math.isfinite(strength) else 0.0
        self._i = (self._i + 1) % self._n
        self._filled = min(self._filled + 1, self._n)
        self._count += 1
        if self._count >= self._every:
            self._count = 0
            return self._estimate()
        return False

    def _estimate(self) -> bool:
        n, i = self._n, self._i
        if self._filled < n // 2:
            self.tempo_bpm, self.pulse_clarity = 0.0, 0.0
            return False
        # oldest first: ring[i:] then ring[:i]
        self._lin[: n - i] = self._ring[i:]
        self._lin[n - i :] = self._ring[:i]
        self._lin -= self._lin.mean()
        energy = float(np.dot(self._lin, self._lin))
        if not energy > 1e-9:
            self.tempo_bpm, self.pulse_clarity = 0.0, 0.0
            return False
        np.copyto(self._lin64, self._lin)
        np.matmul(self._shifted, self._lin64[: self._m], out=self._acf)
        # each lag sums m products: scale to the zero-lag (energy) count
        self._acf *= n / (self._m * energy)
        np.multiply(self._acf, self._prior, out=self._score)
        j = int(np.argmax(self._score))
        clarity = float(self._acf[j])
        if not (self._score[j] > 0.0 and clarity >= self.min_clarity):
            self.tempo_bpm, self.pulse_clarity = 0.0, max(0.0, min(1.0, clarity))
            return True
        lag = float(self._lags[j])
        if 0 < j < self._lags.size - 1:  # parabolic refinement on the raw autocorrelation
            y0, y1, y2 = self._acf[j - 1], self._acf[j], self._acf[j + 1]
            den = y0 - 2.0 * y1 + y2
            if den < 0.0:
                lag += max(-0.5, min(0.5, 0.5 * (y0 - y2) / den))
        self.tempo_bpm = 60.0 / (lag * self.hop_s)
        self.pulse_clarity = max(0.0, min(1.0, clarity))
        return True
