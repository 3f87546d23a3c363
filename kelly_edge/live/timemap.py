"""Audio time -> wall time: when did (or will) audio second ``t`` pass through the box?

The engine lives on the audio timeline (samples consumed / sample rate); MIDI must leave on the
wall clock. Each capture callback stamps the frame count it has written with ``time.monotonic``;
a callback is never *early*, only sometimes late (the OS wakes it late, the backend delivers a
burst), so ``wall - audio`` is smallest for the most punctual callbacks. The offset is therefore
the minimum of those candidates over a sliding window of a few seconds (so clock drift between
the interface's crystal and the CPU's is followed), and the offset in use moves toward it by at
most ``slew_s`` per observation, so a changed estimate never jerks the output timing.

Audio that never arrived (a stalled server, skipped periods, frames dropped on overflow) makes the
audio timeline fall behind the wall clock for good: every candidate from then on is later by the
lost time. Slewing would leave the output late for seconds, so when ``jump_count`` consecutive
candidates all lie more than ``jump_s`` above the offset, the offset jumps to their minimum.

Threading: the processing thread calls :meth:`observe`/:meth:`rebase`; any thread calls
:meth:`to_wall` (it reads one float attribute).
"""

from __future__ import annotations

import math


class TimeMap:
    """``wall = t + offset`` in seconds, with ``offset`` estimated from capture stamps."""

    def __init__(self, offset: float, *, window_s: float = 5.0, slew_s: float = 0.0002, jump_s: float = 0.015,
                 jump_count: int = 10) -> None:
        self.offset = float(offset)
        self.window_s = window_s
        self.slew_s = slew_s
        self.jump_s = jump_s
        self.jump_count = jump_count
        self.jumps = 0
        self._above = 0
        self._above_min = math.inf
        self._cur_min = math.inf
        self._prev_min = math.inf
        self._win_start = -math.inf
        self._rebase = True

    def rebase(self) -> None:
        """A new capture session starts: the next observation sets the offset outright."""
        self._rebase = True
        self._cur_min = self._prev_min = math.inf
        self._win_start = -math.inf
        self._above = 0

    def observe(self, t: float, wall: float) -> None:
        """Audio second ``t`` had been captured by wall second ``wall``."""
        cand = wall - t
        if not self._rebase and cand - self.offset > self.jump_s:
            self._above = self._above + 1 if self._above else 1
            self._above_min = cand if self._above == 1 else min(self._above_min, cand)
            if self._above >= self.jump_count:  # audio was lost: the timeline moved for good
                self.offset = self._above_min
                self._cur_min, self._prev_min, self._win_start = self._above_min, math.inf, wall
                self._above = 0
                self.jumps += 1
                return
        else:
            self._above = 0
        if wall - self._win_start > self.window_s:
            self._prev_min, self._cur_min, self._win_start = self._cur_min, cand, wall
        elif cand < self._cur_min:
            self._cur_min = cand
        target = min(self._prev_min, self._cur_min)
        if self._rebase:
            self._rebase = False
            self.offset = target
            return
        step = target - self.offset
        if step > self.slew_s:
            step = self.slew_s
        elif step < -self.slew_s:
            step = -self.slew_s
        self.offset += step

    def to_wall(self, t: float) -> float:
        return t + self.offset

    def to_audio(self, wall: float) -> float:
        return wall - self.offset
