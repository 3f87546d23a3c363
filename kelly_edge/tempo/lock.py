"""The grid follows the beat tracker like a phase-locked loop.

The 16th grid (:class:`~kelly_edge.engine.clock.TempoGrid`) is never re-anchored to a beat: that
would skip or repeat steps, and the listener hears the jump. Instead, once per beat, when the
tracker predicts the next beat (about half a beat ahead), :class:`GridLock` sets the grid's
*rate* until that beat so that the grid's beat lands on it (a fraction :data:`GAIN` of the way),
within :data:`MAX_BEND` of the tracked tempo (more while acquiring: :data:`ACQUIRE_BEND` for the
first :data:`ACQUIRE_BEATS` predictions and after a new tempo). The correction ends *at* the predicted
beat: spread over the beat after it too (as first written), only a third of the error was gone
when the beat sounded, and the box's beats trailed the tracker's on every tempo change and in
rubato. From the beat on the grid runs at the tracked tempo again and keeps it, with its phase,
through a break or silence until the player is back.

A steady phase error (the tracker's tempo lagging an accelerando) builds up a tempo correction
(the integral term, :data:`DRIFT_GAIN`), so the grid catches up rather than trailing behind. It is
bounded by :data:`MAX_DRIFT`, 3 %: the tracker's tempo states are 1 % apart and it re-reads the
tempo every quarter second, so it lags a real accelerando by a state or two; more than that is
phase noise integrated (real recordings' beats wobble by tens of ms, and at 6 % the held tempo sat
outside the judge's 4 % while the tracker's was right: real-dev tempo right on 5 of 10 -> 8 of 10,
``python -m tools.beat_diagnose --real-dev``; rendered dev unchanged).

The bar: while first acquiring, and later with a downbeat estimate that held for :data:`BAR_HOLD`
beats, the target is the bar line (step 0 of 16) rather than any beat. A grid whole beats off
slips onto it in one go, over the coming beat and the next (up to :data:`SLIP_BEND` faster or
slower): one beat of the box is off, where a slow bend (at most 15 %, as first written) kept it
off the beat for the eight or more beats it took.
"""

from __future__ import annotations

import math
from typing import Any

GAIN = 1.0  # share of the phase error removed by the predicted beat once locked...
ACQUIRE_GAIN = 1.0  # ... and while acquiring
DRIFT_GAIN = 0.01  # per beat, the tempo correction that builds up per 16th of steady phase error
MAX_DRIFT = 0.03  # ... up to this share of the tracked tempo (see the module docstring)
MAX_BEND = 0.4  # largest rate deviation from the tracked tempo once locked (for half a beat; 0.25 trailed rubato: real-dev beat F 0.782 -> 0.792 at 0.4, 0.6 no better)
ACQUIRE_BEND = 1.0  # ... while acquiring
SLIP_BEND = 1.5  # ... while slipping onto the bar line (up to 2.5x for a beat and a half)
SLIP_BACK = 6.0  # 16ths: a bar line further back than this is sought forward
ACQUIRE_BEATS = 6  # predictions that count as acquiring: the first, or after a new tempo...
MAX_ACQUIRE_BEATS = 16  # ... and more, up to this many, until the grid is near the beat
NEW_TEMPO = math.log(1.08)  # a tempo change larger than this acquires again
BAR_HOLD = 16  # beats a new downbeat estimate must hold before a locked grid moves to it
MIN_GRID_BPM, MAX_GRID_BPM = 40.0, 240.0  # the bent rate stays in the box's tempo range
MIN_SPAN = 0.25  # beats: the shortest correction (a prediction right before its beat)
MAX_RATE_STEP = 1.9  # a new rate at most this times the grid's: at twice, a step planned at the
# old rate (one ahead) would come after the next one planned at the new
LATENCY_S = 0.01  # the flux peaks this long after the onset (measured on rendered pieces)


def _wrap(x: float, span: float) -> float:
    """``x`` wrapped into (-span/2, span/2]."""
    return x - span * math.ceil(x / span - 0.5)


class GridLock:
    """Turns the tracker's predictions into grid rates; see the module docstring."""

    def __init__(self, *, latency_s: float = LATENCY_S) -> None:
        self.latency_s = float(latency_s)
        self.base_bpm: float | None = None  # the tempo the grid holds between corrections, once known
        self._tracked: float | None = None  # the tracker's tempo at the last prediction
        self._until = math.inf  # when the current correction ends
        self._predictions = 0
        self._last_t = -math.inf
        self._slot = -1
        self._slot_beats = 0
        self._drift = 0.0  # the integral term: a tempo the tracker's estimate lags behind
        self._bar_found = False
        self._near = 0  # predictions in a row with the grid within half a 16th of the target

    def on_hop(self, t: float, grid: Any, tracker: Any = None) -> float | None:
        """Between predictions: the tracked tempo again once the correction window is over; a
        new tempo of ``tracker`` (more than :data:`NEW_TEMPO` from the one held) at once.

        After a tempo change the tracker makes no prediction until its tempo held for a few
        updates and it found the new beat (about a second); the grid held the old tempo until
        then, so the box's tempo trailed the tracker's by ~2 s on every step of the rendered dev
        pieces. The new tempo is right before its phase is known: the grid takes it now and
        acquires the phase from the next prediction on (a correction under way ends first).
        """
        if (tracker is not None and self._tracked is not None and tracker.known
                and abs(math.log(tracker.bpm / self._tracked)) > NEW_TEMPO):
            self._tracked = tracker.bpm
            self._predictions = self._near = 0  # acquire again, as on_prediction does for a new tempo
            self._drift = 0.0
            self.base_bpm = float(tracker.bpm)  # from the end of a correction under way
        if t < self._until or self.base_bpm is None:
            return None
        if self.base_bpm > MAX_RATE_STEP * grid.bpm:  # back from a slowed slip: in two steps
            return MAX_RATE_STEP * grid.bpm
        self._until = math.inf
        return self.base_bpm if abs(grid.bpm - self.base_bpm) > 1e-9 else None

    def on_prediction(self, t: float, grid: Any, tracker: Any) -> float:
        """The grid rate (BPM) to run at from ``t``, the hop the tracker predicted a beat on (its
        ``next_beat_hops`` count from then)."""
        period_s = 60.0 / tracker.bpm
        first = self._tracked is None
        new_tempo = not first and abs(math.log(tracker.bpm / self._tracked)) > NEW_TEMPO
        if first or new_tempo:
            self._predictions = 0  # first lock or a new tempo: acquire
            self._drift = 0.0
            self._near = 0
            # the bar line is sought until a first lock completed: across a tempo change or a
            # break after that, the player's bars go on where the grid's are
        # back after a break (no prediction for beats): the grid kept the pulse through it,
        # so it goes on locked, not acquiring (the tracker's first beats back are the least sure)
        self._last_t = t
        self._predictions += 1
        self._tracked = tracker.bpm
        beat_t = t + tracker.next_beat_hops * tracker.hop_s - self.latency_s
        position = grid.position(beat_t)
        slot = tracker.downbeat_slot
        self._slot_beats = self._slot_beats + 1 if slot == self._slot and slot >= 0 else 0
        self._slot = slot
        # acquiring: the first few predictions, and on until the grid is near the beat twice
        acquiring = self._predictions <= ACQUIRE_BEATS or (self._near < 2 and self._predictions <= MAX_ACQUIRE_BEATS)
        bend = ACQUIRE_BEND if acquiring else MAX_BEND
        if not acquiring and slot >= 0:
            self._bar_found = True
        error = _wrap(-position, 4.0)  # to the nearest beat
        span = max(beat_t - t, MIN_SPAN * period_s)
        if slot >= 0 and ((acquiring and not self._bar_found) or self._slot_beats >= BAR_HOLD):
            # the bar line: a grid whole beats off slips onto it in one go, over this beat and the
            # next (one beat of the box off instead of the many a slow bend took), forward when
            # that is shorter than 1.5 beats back
            wanted = 4.0 * ((tracker.next_beat_index - slot) % 4)
            bar_error = (wanted - position + SLIP_BACK) % 16.0 - SLIP_BACK
            if abs(bar_error - error) > 2.0:
                error = bar_error
                span += period_s
                bend = max(bend, SLIP_BEND)
        self._near = self._near + 1 if abs(error) < 0.5 else 0
        if not acquiring and abs(error) <= 2.0:
            self._drift = min(MAX_DRIFT, max(-MAX_DRIFT, self._drift + DRIFT_GAIN * error))
        step0 = period_s / (4.0 * (1.0 + self._drift))
        self.base_bpm = 15.0 / step0
        gain = ACQUIRE_GAIN if acquiring else GAIN
        rate = (span / step0 + gain * error) / span  # steps per second
        rate = min((1.0 + bend) / step0, max((1.0 - bend) / step0, rate))
        self._until = t + span
        return min(MAX_GRID_BPM, MAX_RATE_STEP * grid.bpm, max(MIN_GRID_BPM, 15.0 * rate))
