"""MIDI clock out: 24 ticks per quarter note, phase-locked to the engine's 16th-note grid.

A hardware drum machine or arpeggiator following the box must hear ticks that line up with the
notes the box plays, so ticks are not a free-running timer: tick ``k`` is due when the grid's
position reaches ``k / 6`` sixteenths (6 ticks per 16th = 24 per quarter), on the same audio
timeline as the notes. The live loop calls :meth:`ClockOut.advance` after every hop with a short
look-ahead; ticks are queued in the sink like any other event and leave at their scheduled wall
time. A tempo change moves the ticks that follow with the grid, never backwards.
"""

from __future__ import annotations

import math
from typing import Protocol

from kelly_edge.midi.sinks import MidiSink

TICKS_PER_16TH = 6  # 24 PPQN
CLOCK = b"\xf8"
START = b"\xfa"
CONTINUE = b"\xfb"
STOP = b"\xfc"


class Grid(Protocol):
    """What the clock reads from :class:`~kelly_edge.engine.clock.TempoGrid`."""

    bpm: float
    step_s: float

    def position(self, t: float) -> float: ...


class ClockOut:
    """Queues Start and clock ticks into ``sink`` following ``grid``."""

    def __init__(self, sink: MidiSink, grid: Grid) -> None:
        self._sink = sink
        self._grid = grid
        self._k = 0  # next tick index
        self._last_t = -math.inf
        self.running = False
        self.started = False  # Start was sent once (the live loop sends it on its first hop)
        self.ticks = 0

    def start(self, t: float) -> None:
        """Send Start at ``t``; the first tick is the first grid tick at or after ``t``."""
        self._k = math.ceil(self._grid.position(t) * TICKS_PER_16TH - 1e-9)
        self._last_t = t
        self._sink.send(t, START)
        self.running = True
        self.started = True

    def tick_time(self, k: int, now_t: float) -> float:
        """Audio time of tick ``k`` under the tempo in force at ``now_t``."""
        grid = self._grid
        return now_t + (k / TICKS_PER_16TH - grid.position(now_t)) * grid.step_s

    def advance(self, now_t: float, until_t: float) -> None:
        """Queue every tick due before ``until_t`` (``now_t`` is the current audio time).

        Ticks more than one tick behind ``now_t`` (after a stall) are skipped, not sent in a burst.
        """
        if not self.running:
            return
        interval = self._grid.step_s / TICKS_PER_16TH
        t = self.tick_time(self._k, now_t)
        if t < now_t - interval:
            self._k = math.ceil(self._grid.position(now_t) * TICKS_PER_16TH - 1e-9)
            t = self.tick_time(self._k, now_t)
        sink = self._sink
        while t < until_t:
            if t < self._last_t:  # a tempo change must never send a tick before the previous one
                t = self._last_t
            sink.send(t, CLOCK)
            self._last_t = t
            self._k += 1
            self.ticks += 1
            t = self.tick_time(self._k, now_t)

    def stop(self) -> bytes:
        """Stop running; returns the Stop message for the caller to send at once."""
        self.running = False
        return STOP
