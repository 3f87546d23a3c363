"""Per-hop processing times in bounded memory: a recent window plus a whole-run histogram.

A gig is hours long; keeping every hop's time (100 a second) would grow without bound. The
recent ring answers "how is it doing now" (status, exact); the log-spaced histogram answers the
whole run's percentiles to within one bin (~1 % relative), with count, misses and max exact.
"""

from __future__ import annotations

import math

import numpy as np

_LO_S = 1e-6  # 1 us
_HI_S = 10.0
_BINS = 1400  # ~1.15 % per bin over 7 decades


class HopTimes:
    """Record hop times (seconds); ``recent(n)`` exact, ``percentiles()`` over the whole run."""

    def __init__(self, recent: int = 6000) -> None:
        self._ring = np.zeros(recent)
        self._n = 0  # hops recorded
        self._edges = np.geomspace(_LO_S, _HI_S, _BINS + 1)
        self._counts = np.zeros(_BINS + 2, dtype=np.int64)  # + underflow, overflow
        self._log_lo = math.log(_LO_S)
        self._per_log = _BINS / (math.log(_HI_S) - self._log_lo)
        self.max_s = 0.0

    def __len__(self) -> int:
        return self._n

    def add(self, seconds: float) -> None:
        self._ring[self._n % self._ring.size] = seconds
        self._n += 1
        if seconds > self.max_s:
            self.max_s = seconds
        if seconds <= _LO_S:
            self._counts[0] += 1
        else:
            b = int((math.log(seconds) - self._log_lo) * self._per_log) + 1
            self._counts[min(b, _BINS + 1)] += 1

    def recent(self, n: int) -> np.ndarray:
        """The last ``min(n, recorded, window)`` hop times, oldest first (a copy)."""
        size = self._ring.size
        k = min(n, self._n, size)
        end = self._n % size
        if k <= end:
            return self._ring[end - k : end].copy()
        return np.concatenate([self._ring[size - (k - end) :], self._ring[:end]])

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100) of every hop so far, in seconds (bin midpoint)."""
        if self._n == 0:
            return 0.0
        if self._n <= self._ring.size:  # everything is still in the ring: exact
            return float(np.percentile(self._ring[: self._n], q))
        rank = q / 100.0 * (self._n - 1)
        b = int(np.searchsorted(np.cumsum(self._counts), rank, side="right"))
        if b == 0:
            return _LO_S
        if b > _BINS:
            return self.max_s
        return float(min(np.sqrt(self._edges[b - 1] * self._edges[b]), self.max_s))
