"""The 16th-note grid on the audio timeline.

Time here is *audio* time (samples consumed / sample rate), not wall time: offline runs and live
runs then produce the same grid, and MIDI written to a file lines up with the recording.
A tempo change re-anchors the grid at the current position so no step is skipped or repeated.
"""

from __future__ import annotations

import math



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
