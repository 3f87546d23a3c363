"""Tap tempo: the median interval of the last few taps, in beats per minute.

Median rather than mean so one fumbled tap does not drag the tempo; a pause longer than
``reset_s`` starts a new tapping sequence. Taps are timestamps in seconds on any monotonic clock.
"""

from __future__ import annotations

import statistics

MIN_BPM = 20.0
MAX_BPM = 300.0


class TapTempo:
    """Feed :meth:`tap` with tap times; it returns the tempo once ``min_taps`` taps agree."""

    def __init__(self, *, min_taps: int = 3, max_taps: int = 6, reset_s: float = 3.5,
                 min_bpm: float = MIN_BPM, max_bpm: float = MAX_BPM) -> None:
        if min_taps < 2 or max_taps < min_taps:
            raise ValueError(f"need 2 <= min_taps <= max_taps, got {min_taps}, {max_taps}")
        self.min_taps = min_taps
        self.max_taps = max_taps
        self.reset_s = reset_s
        self.min_bpm = min_bpm
        self.max_bpm = max_bpm
        self._taps: list[float] = []
        self.bpm: float | None = None

    def tap(self, t: float) -> float | None:
        """Register a tap at ``t`` seconds; the tempo in BPM when known (clamped to the range), else None."""
        taps = self._taps
        if taps and (t - taps[-1] > self.reset_s or t <= taps[-1]):
            taps.clear()
        taps.append(t)
        del taps[: -self.max_taps]
        if len(taps) < self.min_taps:
            return None
        interval = statistics.median(b - a for a, b in zip(taps, taps[1:]))
        self.bpm = min(self.max_bpm, max(self.min_bpm, 60.0 / interval))
        return self.bpm
