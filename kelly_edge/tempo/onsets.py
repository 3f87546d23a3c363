"""Tempo from the player's onsets, made stable enough to drive a grid.

:class:`~kelly_edge.features.onset.TempoEstimator` (inside the feature context) re-estimates the
tempo every 0.25 s from ~6 s of onset strength, with a pulse clarity. Raw, that reading wobbles
and jumps octaves (a half-time feel reads as half the tempo), and a grid that followed it would
stumble. Here a reading counts only with enough pulse clarity; it is folded to the octave
(x1/2, x1, x2) nearest the current tempo, so the grid never jumps by an octave; and the tempo
changes only when the folded readings stayed within ``agree`` (relative) of each other for
``hold_s`` seconds and differ from the current tempo by more than ``min_change``.
"""

from __future__ import annotations

import math

from kelly_edge.tempo.tap import MAX_BPM, MIN_BPM


class OnsetTempo:
    """Feed :meth:`update` every hop with the estimator's reading; it returns a new tempo or None."""

    def __init__(self, bpm: float, *, min_clarity: float = 0.3, hold_s: float = 3.0, agree: float = 0.04,
                 min_change: float = 0.02) -> None:
        self.bpm = float(bpm)
        self.min_clarity = min_clarity
        self.hold_s = hold_s
        self.agree = agree
        self.min_change = min_change
        self._cand = 0.0
        self._since = 0.0

    def fold(self, estimate: float) -> float:
        """``estimate`` x 1/2, 1 or 2, whichever is nearest the current tempo (in log ratio)."""
        options = [estimate * f for f in (0.5, 1.0, 2.0) if MIN_BPM <= estimate * f <= MAX_BPM]
        if not options:
            return min(MAX_BPM, max(MIN_BPM, estimate))
        return min(options, key=lambda b: abs(math.log(b / self.bpm)))

    def update(self, t: float, estimate_bpm: float, clarity: float) -> float | None:
        """``estimate_bpm`` (0 = unknown) and ``clarity`` (0..1) at audio time ``t``; the new tempo or None."""
        if not (estimate_bpm > 0.0 and math.isfinite(estimate_bpm)) or clarity < self.min_clarity:
            self._cand = 0.0
            return None
        folded = self.fold(estimate_bpm)
        if self._cand == 0.0 or abs(folded - self._cand) > self.agree * self._cand:
            self._cand = folded
            self._since = t
            return None
        self._cand += 0.1 * (folded - self._cand)  # a slow average of agreeing readings
        if t - self._since < self.hold_s or abs(self._cand - self.bpm) <= self.min_change * self.bpm:
            return None
        self.bpm = round(self._cand, 1)
        self._since = t
        return self.bpm
