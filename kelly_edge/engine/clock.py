"""The 16th-note grid on the audio timeline.

Time here is *audio* time (samples consumed / sample rate), not wall time: offline runs and live
runs then produce the same grid, and MIDI written to a file lines up with the recording.
A tempo change re-anchors the grid at the current position so no step is skipped or repeated.
"""

from __future__ import annotations

import math

import numpy as np


class TempoGrid:
    """Step ``k`` (a 16th note, counted from 0) starts at ``time_of(k)`` seconds."""

    def __init__(self, bpm: float) -> None:
        self._anchor_t = 0.0
        self._anchor_step = 0.0
        self.bpm = float(bpm)
        self.step_s = 15.0 / self.bpm  # a 16th note = a quarter of a beat

    def time_of(self, step: int) -> float:
        return self._anchor_t + (step - self._anchor_step) * self.step_s

    def position(self, t: float) -> float:
        """Fractional step index at time ``t``."""
        return self._anchor_step + (t - self._anchor_t) / self.step_s

    def step_in_bar(self, t: float) -> int:
        """The 16th step 0..15 of the bar that contains time ``t`` (4/4)."""
        return int(math.floor(self.position(t))) % 16

    def set_bpm(self, bpm: float, t: float) -> None:
        """Change tempo at time ``t``, keeping the grid continuous there."""
        self._anchor_step = self.position(t)
        self._anchor_t = t
        self.bpm = float(bpm)
        self.step_s = 15.0 / self.bpm

    def restart_at(self, step: int, t: float) -> None:
        """Make step ``step`` start at time ``t`` (MIDI Start: a bar begins now), tempo unchanged."""
        self._anchor_step = float(step)
        self._anchor_t = t


class BeatLog:
    """The audio times of the grid's planned beats (every 4th step) and downbeats (every 16th).

    Filled by the engine as it plans steps, so it is what the box played to, whatever drove the
    grid; growing arrays (doubling, so appends are amortised and allocate about once per
    doubling, never per hop).
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._t = np.zeros(capacity, dtype=np.float64)
        self._down = np.zeros(capacity, dtype=bool)
        self._n = 0

    def add(self, t: float, downbeat: bool) -> None:
        if self._n == self._t.size:
            self._t = np.concatenate([self._t, np.zeros_like(self._t)])
            self._down = np.concatenate([self._down, np.zeros_like(self._down)])
        self._t[self._n] = t
        self._down[self._n] = downbeat
        self._n += 1

    def beats(self) -> np.ndarray:
        """Every planned beat's time (s), in order (a copy)."""
        return self._t[: self._n].copy()

    def downbeats(self) -> np.ndarray:
        """The planned beats that start a bar (s), in order (a copy)."""
        return self._t[: self._n][self._down[: self._n]]
