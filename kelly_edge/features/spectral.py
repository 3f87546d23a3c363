"""Spectral shape: centroid, roll-off, flatness and low/high band shares as ~1 s means, in batches.

Each descriptor is an exponential moving average, over the *non-silent* hops, of a per-hop value
(:func:`hop_values` defines them). Computed hop by hop that is about ten numpy calls on 513–1025
bins, ~12 µs a hop, mostly call overhead. So :meth:`SpectralShape.push` finds the hop's roll-off
(a cumulative sum is sequential: batching it saves nothing, measured) and copies its power
spectrum and mel band powers into a ring; :meth:`SpectralShape.flush` computes the other values
of every pending hop with one call per step and applies the closed form of the EMA recursion
(``e_n = (1-a)^n e_0 + Σ_k a (1-a)^(n-1-k) v_k``): the same result as hop by hop, to float
rounding, for half the time. The owner flushes when the descriptors are read (a few times a
second); a full ring flushes itself.
"""

from __future__ import annotations

import math

import numpy as np

from kelly_edge.features.mel import AMIN

LOW_HZ = 250.0
HIGH_HZ = 2000.0
ROLLOFF = 0.85
N_VALUES = 5
"""Values per hop, in :class:`~kelly_edge.models.spec.Desc` order: centroid_hz, rolloff_hz,
flatness, low_ratio, high_ratio."""
BATCH = 32  # hops buffered at most (0.3 s); 32 x 1025 float64 spectra = 262 KB at 48 kHz


def hop_values(power: np.ndarray, mel_power: np.ndarray, freqs: np.ndarray) -> np.ndarray | None:
    """The five values of one hop, the definition the batch must equal (None if no power).

    Centroid and roll-off (85 % of the power) in Hz over the whole power spectrum; low/high
    shares of the power below :data:`LOW_HZ` / above :data:`HIGH_HZ`; flatness (geometric over
    arithmetic mean) over the mel band powers, where white noise reads close to 1 (a mel band
    averages several bins) instead of the ~0.56 of a single periodogram. Clipped to 0..1.
    """
    total = float(power.sum())
    if not total > 0.0 or not math.isfinite(total):
        return None
    cum = np.cumsum(power)
    k = min(int(np.searchsorted(cum, ROLLOFF * float(cum[-1]))), freqs.size - 1)
    mp = np.maximum(mel_power, AMIN)
    flatness = math.exp(float(np.log(mp).mean())) / float(mp.mean())
    return np.array([
        float(freqs @ power) / total,
        float(freqs[k]),
        min(1.0, max(0.0, flatness)),
        float(power[freqs < LOW_HZ].sum()) / total,
        float(power[freqs > HIGH_HZ].sum()) / total,
    ])


class SpectralShape:
    """The five spectral EMAs (``values`` (5,) float64), fed per non-silent hop, computed in batches.

    ``tau_s`` is the EMA time constant in seconds of *non-silent* hops of ``hop_s`` each.
    """

    def __init__(self, *, freqs: np.ndarray, n_mels: int, hop_s: float, tau_s: float, batch: int = BATCH) -> None:
        n_bins = freqs.size
        self._freqs = np.asarray(freqs, dtype=np.float64)
        self._batch = int(batch)
        # (n_bins, 4): total, sum f·P, low-band and high-band power of a spectrum as one product
        self._moments = np.ascontiguousarray(np.stack(
            [np.ones(n_bins), self._freqs, (self._freqs < LOW_HZ) * 1.0, (self._freqs > HIGH_HZ) * 1.0], axis=1
        ))
        a = 1.0 - math.exp(-hop_s / tau_s)
        b = self._batch
        self._weights = a * (1.0 - a) ** np.arange(b - 1, -1, -1, dtype=np.float64)  # of v_0..v_{b-1} after b hops
        self._decay = (1.0 - a) ** np.arange(b + 1, dtype=np.float64)  # of e_0 after n hops
        self._power = np.zeros((b, n_bins))
        self._mel = np.zeros((b, n_mels))
        self._mom = np.zeros((b, 4))
        self._cum = np.zeros(n_bins)
        self._last_bin = n_bins - 1
        self._flat = np.zeros((b, n_mels))
        self._arith = np.zeros(b)
        self._geo = np.zeros(b)
        self._vals = np.zeros((N_VALUES, b))  # one row per value: each row's [:n] is contiguous
        self._acc = np.zeros(N_VALUES)
        self._n_mels = float(n_mels)
        self._n = 0
        self.values = np.zeros(N_VALUES)

    @property
    def pending(self) -> int:
        """Hops pushed since the last flush."""
        return self._n

    def push(self, power: np.ndarray, mel_power: np.ndarray) -> None:
        """Queue one non-silent hop's power spectrum and mel band powers (copied)."""
        n = self._n
        cum = self._cum
        np.cumsum(power, out=cum)
        k = int(np.searchsorted(cum, ROLLOFF * float(cum[-1])))  # the first bin reaching 85 %
        self._vals[1, n] = self._freqs[min(k, self._last_bin)]
        self._power[n] = power
        self._mel[n] = mel_power
        self._n = n + 1
        if self._n == self._batch:
            self.flush()

    def flush(self) -> None:
        """Bring ``values`` up to date with every pushed hop."""
        n = self._n
        if n == 0:
            return
        self._n = 0
        power = self._power[:n]
        mom = self._mom[:n]
        np.matmul(power, self._moments, out=mom)
        total = mom[:, 0]
        if not (total > 0.0).all() or not np.isfinite(total).all():  # not reachable from sanitised audio
            self._flush_one_by_one(n)
            return
        v = self._vals[:, :n]
        np.divide(mom[:, 1], total, out=v[0])  # centroid
        np.divide(mom[:, 2], total, out=v[3])  # low share
        np.divide(mom[:, 3], total, out=v[4])  # high share
        flat = self._flat[:n]
        np.maximum(self._mel[:n], AMIN, out=flat)
        arith = self._arith[:n]
        np.add.reduce(flat, axis=1, out=arith)
        np.log(flat, out=flat)
        geo = self._geo[:n]
        np.add.reduce(flat, axis=1, out=geo)
        geo *= 1.0 / self._n_mels
        np.exp(geo, out=geo)
        arith *= 1.0 / self._n_mels
        np.divide(geo, arith, out=v[2])
        np.clip(v[2], 0.0, 1.0, out=v[2])
        np.matmul(v, self._weights[self._batch - n :], out=self._acc)
        self.values *= self._decay[n]
        self.values += self._acc

    def _flush_one_by_one(self, n: int) -> None:
        """The hop-by-hop recursion, skipping hops without power (keeps the batch path simple)."""
        a = self._weights[-1]
        for i in range(n):
            vals = hop_values(self._power[i], self._mel[i], self._freqs)
            if vals is not None:
                self.values += a * (vals - self.values)
