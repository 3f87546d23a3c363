"""Melody phrasing: where the melody voice breathes and which way its line goes.

A melody is heard as phrases: a line of one or two bars that rises and falls (most often an arch)
and ends in a breath before the next one. :class:`PhrasePlanner` lays those out on the bar grid
from its own seeded random stream (so the generator's per-step draws stay as they were) and
answers, per 16th step, "rest" or "the pitch the contour aims at here". The generator multiplies
the melody model's distribution by a bell around that target; the model still chooses the notes.

When the player is busy (many onsets per second) the breaths get longer: the box leaves room.
"""

from __future__ import annotations

import math
import random

BAR = 16  # 16th steps per 4/4 bar

ARCH, RISE, FALL = 0, 1, 2
SHAPE_WEIGHTS = (0.6, 0.2, 0.2)
"""How often a phrase is an arch (up, then down), a rising or a falling line."""
TWO_BAR_SHARE = 0.6
"""Share of phrases two bars long (the rest are one bar)."""
BUSY_ONSETS_PER_S = 4.0
"""Player onset rate above which a phrase's breath is two beats instead of one or two."""
MIN_CENTRE_MOVE = 4
"""Semitones each phrase's register centre moves at least from the last, so the range gets used."""


class PhrasePlanner:
    """Phrases of 1-2 bars starting on bar lines, each ending in a rest of 1-2 beats.

    ``low``/``high``: the melody voice's range (MIDI notes). Call :meth:`target` once per planned
    step with increasing absolute step indices (steps may be skipped: a phrase that has ended is
    replaced by one starting at the current bar).
    """

    def __init__(self, seed: int, low: int, high: int) -> None:
        self._rng = random.Random(int(seed) * 7919 + 17)
        self._low, self._high = int(low), int(high)
        self._start = 0
        self._rest_at = 0  # first step of the phrase's breath
        self._end = 0  # first step after the phrase
        self._centre = (self._low + self._high) / 2.0
        self._amp = 0.0
        self._shape = ARCH

    @property
    def rest_at(self) -> int:
        """First step of the current phrase's breath (absolute 16th index)."""
        return self._rest_at

    def target(self, step_index: int, busy: bool) -> float | None:
        """The contour's target pitch at ``step_index``, or None when the melody rests there."""
        if step_index >= self._end:
            self._new_phrase(step_index, busy)
        if step_index >= self._rest_at:
            return None
        x = (step_index - self._start) / max(1, self._rest_at - 1 - self._start)
        if self._shape == ARCH:
            f = 2.0 * math.sin(math.pi * x) - 1.0
        elif self._shape == RISE:
            f = 2.0 * x - 1.0
        else:
            f = 1.0 - 2.0 * x
        return self._centre + self._amp * f

    def _new_phrase(self, step_index: int, busy: bool) -> None:
        rng = self._rng
        bars = 2 if rng.random() < TWO_BAR_SHARE else 1
        self._start = step_index - step_index % BAR
        self._end = self._start + bars * BAR
        rest_beats = 2 if busy or rng.random() < 0.4 else 1
        self._rest_at = self._end - 4 * rest_beats
        self._shape = rng.choices((ARCH, RISE, FALL), SHAPE_WEIGHTS)[0]
        lo, hi = self._low, self._high
        span = hi - lo
        self._amp = min(6.0, span / 4.0) * (0.6 + 0.4 * rng.random())
        margin = min(self._amp, span / 2.0)
        c_lo, c_hi = lo + margin, hi - margin
        centre = rng.uniform(c_lo, c_hi)
        if c_hi - c_lo > 2 * MIN_CENTRE_MOVE and abs(centre - self._centre) < MIN_CENTRE_MOVE:
            # move away from the last register, inside the allowed band
            up = self._centre + MIN_CENTRE_MOVE
            centre = up if up <= c_hi else self._centre - MIN_CENTRE_MOVE
        self._centre = centre
