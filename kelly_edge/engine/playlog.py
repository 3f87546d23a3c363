"""What the box played on its own timeline: its beats, downbeats, chords and tempo path.

These are the report fields a run is scored with against ground truth (``tools.evaluate``): the
box's beats against the player's, its chords against the chords heard. They are recorded at the
one seam every beat tracker and chord decision passes through: each 16th step the engine plans,
with that step's grid time, the tempo followed then (the tempo source's ``tracked_bpm``: the
player's tempo, not the rate of a grid bending onto their beat; else the grid's BPM) and the
generator's chord after planning it. So
however the tempo source or the chord choice work inside, the log records what came out.

Bounded memory: each path keeps its last :data:`MAX_EVENTS` entries (four hours of beats at 300
BPM); older ones are dropped and counted in ``dropped``. Tempo is recorded when it moves by at
least :data:`TEMPO_STEP_BPM`, so a tracker nudging the tempo every beat does not fill the log with
noise. Appending a float per beat is the only cost in the hop (no search, no naming).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from kelly_edge.models import spec

MAX_EVENTS = 4 * 3600 * 5  # four hours at 300 BPM
TEMPO_STEP_BPM = 0.05
STEPS_PER_BEAT = 4


class PlayLog:
    """Beats, downbeats, chord changes and tempo changes of the steps the engine planned."""

    def __init__(self, max_events: int = MAX_EVENTS) -> None:
        self.beats: deque[float] = deque(maxlen=max_events)
        self.downbeats: deque[float] = deque(maxlen=max_events)
        self.chords: deque[tuple[float, int]] = deque(maxlen=max_events)  # (t, chord class) at each change
        self.tempo: deque[tuple[float, float]] = deque(maxlen=max_events)  # (t, bpm) at each change
        self.dropped = 0  # entries pushed out of a full path
        self._chord = -1
        self._bpm = 0.0

    def _append(self, path: deque[Any], item: Any) -> None:
        if len(path) == path.maxlen:
            self.dropped += 1
        path.append(item)

    def step(self, step_index: int, t: float, bpm: float, chord: int, playing: bool) -> None:
        """Record planned step ``step_index`` (absolute 16th) at grid time ``t``: a beat on every
        4th step, a downbeat on every 16th, while ``playing``; ``chord`` (a chord class) is what
        the box plays from here, N.C. while it is not ``playing`` (the gate is closed).

        The grid runs on through the silence before the player is heard and after the gate
        closed, but no beat of the box sounds there: the report's beats are the ones a listener
        could hear (before, a rendered piece's silent ending put ~6 beats the box never played
        into its beat F-measure)."""
        if playing and step_index % STEPS_PER_BEAT == 0:
            self._append(self.beats, t)
            if step_index % spec.N_STEPS == 0:
                self._append(self.downbeats, t)
        if abs(bpm - self._bpm) >= TEMPO_STEP_BPM:
            self._bpm = bpm
            self._append(self.tempo, (t, bpm))
        if not playing:
            chord = spec.NO_CHORD
        if chord != self._chord:
            self._chord = chord
            self._append(self.chords, (t, chord))

    def chord_at(self, t: float, chord: int) -> None:
        """Record a chord struck between steps, at audio time ``t`` (a change heard and played at
        once, :meth:`Generator.hear_chord`). Entries the steps planned ahead stamped after ``t``
        are dropped first: the strike at ``t`` replaced what they would have started."""
        chords = self.chords
        while chords and chords[-1][0] > t:
            chords.pop()
        self._chord = chords[-1][1] if chords else -1
        if chord != self._chord:
            self._chord = chord
            self._append(chords, (t, chord))

    def beat_times(self) -> np.ndarray:
        """The planned beats' audio times (s), oldest first: ``(n,) float64``."""
        return np.fromiter(self.beats, dtype=np.float64, count=len(self.beats))

    def downbeat_times(self) -> np.ndarray:
        """The planned bar starts' audio times (s), oldest first: ``(n,) float64``."""
        return np.fromiter(self.downbeats, dtype=np.float64, count=len(self.downbeats))

    def report_fields(self) -> dict[str, Any]:
        """The report's ``beats``, ``downbeats``, ``chords`` (``[{t, chord}]`` named as
        :func:`spec.chord_name`) and ``tempo`` (``[{t, bpm}]``), times in seconds of audio."""
        return {
            "beats": [round(t, 4) for t in self.beats],
            "downbeats": [round(t, 4) for t in self.downbeats],
            "chords": [{"t": round(t, 4), "chord": spec.chord_name(c)} for t, c in self.chords],
            "tempo": [{"t": round(t, 4), "bpm": round(bpm, 3)} for t, bpm in self.tempo],
            "played_dropped": self.dropped,
        }
