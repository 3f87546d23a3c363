"""Follow an incoming MIDI clock (24 PPQN): a filtered tempo plus Start / Stop / Continue.

Tick timestamps arrive with jitter (USB polling, a JACK period of 5-10 ms, a busy sender), and
single ticks are occasionally lost. The tempo is the slope of a least-squares line through the
last ``window`` tick times (two beats by default), which averages jitter away far better than
the mean of the last intervals; a gap longer than 1.75 intervals (a lost tick, a paused sender)
restarts the fit, and the published tempo stays until the new fit has ``min_ticks`` ticks. (When
arrival jitter approaches an interval, e.g. ~250 BPM through a 10 ms JACK period, gaps of two
periods restart the fit often and the tempo then holds still rather than drift.) Readings outside 20-300 BPM are ignored, and the published ``bpm`` only moves
when the fit moved by more than ``min_change`` (relative), so a steady clock gives a steady grid.

Threading: :meth:`ClockFollower.feed` runs on the MIDI input thread; the processing thread reads
``bpm`` (one float attribute) and pops transport events from a deque (thread-safe for one
producer and one consumer).
"""

from __future__ import annotations

import collections
import logging

import numpy as np

from kelly_edge.tempo.tap import MAX_BPM, MIN_BPM

log = logging.getLogger(__name__)

CLOCK, START, CONTINUE, STOP = 0xF8, 0xFA, 0xFB, 0xFC
PPQN = 24
LOST_TICK_GAP = 1.75  # a gap this many intervals long means ticks were lost: the fit restarts


class ClockFollower:
    """Tempo and transport from MIDI clock bytes and their arrival times (seconds)."""

    def __init__(self, *, window: int = 48, min_ticks: int = 12, min_change: float = 0.003) -> None:
        self.window = window
        self.min_ticks = min_ticks
        self.min_change = min_change
        self._t = np.zeros(window)
        self._n = 0  # ticks in the current fit (<= window)
        self._i = 0  # next slot
        self._last = -1.0
        self.bpm: float | None = None
        self.running = True  # a clock that never sent Start still drives the tempo
        self.transport: collections.deque[str] = collections.deque()
        self.ticks = 0

    def reset_fit(self) -> None:
        self._n = 0
        self._i = 0
        self._last = -1.0

    def feed(self, t: float, status: int) -> None:
        """One real-time message ``status`` received at ``t`` seconds."""
        if status == CLOCK:
            self._tick(t)
        elif status == START:
            self.running = True
            self.reset_fit()
            self.transport.append("start")
        elif status == CONTINUE:
            self.running = True
            self.reset_fit()
            self.transport.append("continue")
        elif status == STOP:
            self.running = False
            self.transport.append("stop")

    def _interval(self) -> float | None:
        """Least-squares slope (seconds per tick) of the ticks in the fit."""
        n = self._n
        if n < 2:
            return None
        if n < self.window:
            ts = self._t[:n]
        else:  # oldest first
            ts = np.roll(self._t, -self._i)
        x = np.arange(n, dtype=np.float64)
        x -= x.mean()
        return float(np.dot(x, ts - ts.mean()) / np.dot(x, x))

    def _tick(self, t: float) -> None:
        self.ticks += 1
        if self._last >= 0.0:
            gap = t - self._last
            est = self._interval()
            slowest = 60.0 / (MIN_BPM * PPQN)
            if gap < 0.0 or gap > LOST_TICK_GAP * (est if est else slowest) or gap > LOST_TICK_GAP * slowest:
                self.reset_fit()
        self._last = t
        self._t[self._i] = t
        self._i = (self._i + 1) % self.window
        self._n = min(self._n + 1, self.window)
        if self._n < self.min_ticks:
            return
        interval = self._interval()
        if interval is None or interval <= 0.0:
            return
        bpm = 60.0 / (interval * PPQN)
        if not MIN_BPM <= bpm <= MAX_BPM:
            return
        if self.bpm is None or abs(bpm - self.bpm) > self.min_change * self.bpm:
            self.bpm = round(bpm, 2)


class MidiClockInput:
    """A python-rtmidi input port (by name substring) feeding a :class:`ClockFollower`.

    Arrival times are the sum of python-rtmidi's per-message deltas (taken by the MIDI system,
    not by the Python callback, so they do not carry the interpreter's scheduling jitter).
    """

    def __init__(self, follower: ClockFollower, *, port: str, api: str, client_name: str = "kelly-edge-clock") -> None:
        from kelly_edge.midi.rtmidi_sink import RtMidiInput

        self.follower = follower
        self._t = 0.0
        self._port = RtMidiInput(port=port, api=api, key="midi.clock_in_port", on_message=self._on_message,
                                 client_name=client_name, port_name="clock_in", sysex=False, active_sense=False)
        self._port.open()
        self.name = self._port.name

    def _on_message(self, message: list[int], delta: float) -> None:
        self._t += delta
        self.follower.feed(self._t, message[0])

    def close(self) -> None:
        self._port.close()
