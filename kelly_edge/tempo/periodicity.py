"""The beat tracker's periodicity: the autocorrelation of the newest onset strengths with their past.

A windowed autocorrelation over a window of ``n`` hops that sums ``x[t] * x[t + lag]`` over the
window's *oldest* ``m`` hops (so that every lag has ``m`` products) never reads, at a beat's lag,
the newest ``n - m - lag`` hops: a tempo change shows in it only once most of the window has gone
past. That is the feature context's :class:`~kelly_edge.features.onset.TempoEstimator`, which the
models were trained with and which stays as it is. The tracker has to hear a new tempo as soon as
it is played, so :class:`RecentAutocorrelation` sums ``x[t] * x[t - lag]`` over the *newest* ``m``
hops instead: every lag is judged on what was played in the last ``m`` hops, against the hops a
lag before them.
"""

from __future__ import annotations

import math

import numpy as np


class RecentAutocorrelation:
    """Normalised autocorrelation of the last ``window_s`` of onset strengths, every ``update_s``.

    ``acf[j]`` (read-only; normalised so that lag 0 would be 1) is the autocorrelation at lag
    ``lags[j]`` hops, for the lags of ``min_bpm``..``max_bpm`` (capped at half the window) and one
    more each side. :meth:`update` allocates nothing.
    """

    def __init__(self, *, hop_s: float, window_s: float, min_bpm: float, max_bpm: float, update_s: float) -> None:
        self._n = max(8, round(window_s / hop_s))
        self._ring = np.zeros(self._n, dtype=np.float64)
        self._i = 0
        self._filled = 0
        lag_min = max(1, math.floor(60.0 / (max_bpm * hop_s)))
        lag_max = min(self._n // 2, math.ceil(60.0 / (min_bpm * hop_s)))
        self._lags = np.arange(lag_min - 1, lag_max + 2)
        self._m = self._n - int(self._lags[-1])
        # newest first: row j is the signal ``lags[j]`` hops further back, against the newest m
        self._rev = np.zeros(self._n, dtype=np.float64)
        base = self._rev[int(self._lags[0]) :]
        self._shifted = np.lib.stride_tricks.as_strided(
            base, shape=(self._lags.size, self._m), strides=(base.strides[0], base.strides[0]), writeable=False
        )
        self._acf = np.zeros(self._lags.size, dtype=np.float64)
        self._lags_ro, self._acf_ro = self._lags.view(), self._acf.view()
        self._lags_ro.flags.writeable = self._acf_ro.flags.writeable = False
        self._every = max(1, round(update_s / hop_s))
        self._count = 0

    @property
    def lags(self) -> np.ndarray:
        """The lags in hops (read-only)."""
        return self._lags_ro

    @property
    def acf(self) -> np.ndarray:
        """The last estimate's normalised autocorrelation per lag (read-only view)."""
        return self._acf_ro

    def update(self, strength: float) -> bool:
        """Feed one hop's onset strength; True on a hop that computed a fresh :attr:`acf` (every
        ``update_s``, once half the window has been heard, unless the window is flat)."""
        self._ring[self._i] = strength if math.isfinite(strength) else 0.0
        self._i = (self._i + 1) % self._n
        self._filled = min(self._filled + 1, self._n)
        self._count += 1
        if self._count < self._every:
            return False
        self._count = 0
        if self._filled < self._n // 2:
            return False
        i, rev = self._i, self._rev
        # newest first: ring[i-1], ..., ring[0], then ring[n-1], ..., ring[i]
        if i == 0:
            rev[:] = self._ring[::-1]
        else:
            rev[:i] = self._ring[i - 1 :: -1]
            rev[i:] = self._ring[: i - 1 : -1]
        rev -= rev.mean()
        energy = float(np.dot(rev, rev))
        if not energy > 1e-9:
            return False
        np.matmul(self._shifted, rev[: self._m], out=self._acf)
        self._acf *= self._n / (self._m * energy)
        return True
