"""The tempo seam: one small interface, one class per ``tempo.source`` value.

The engine polls its source at the end of every hop, live and offline alike, and applies what it
returns (``Engine.set_tempo``: the grid, the MIDI file's tempo map, the clock out). Sources fed
from other threads (a footswitch, a MIDI input callback) hand values over through single
attributes or a deque, never a lock the processing thread could wait on.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Protocol, runtime_checkable

from kelly_edge.tempo.beat import BeatTracker
from kelly_edge.tempo.lock import GridLock
from kelly_edge.tempo.midi_clock import ClockFollower, MidiClockInput
from kelly_edge.tempo.tap import TapTempo

FILE_SOURCES = ("player", "onsets")
"""The ``tempo.source`` values a recording can drive (``onsets`` is the old name of ``player``);
the others follow hardware (a footswitch, a clock input)."""


@runtime_checkable
class TempoSource(Protocol):
    """Must provide :meth:`poll` (a new tempo in BPM to apply now, or None; ``features`` is the
    engine's :class:`~kelly_edge.features.context.FeatureContext`, ``grid`` its
    :class:`~kelly_edge.engine.clock.TempoGrid`, read-only), :meth:`transport` (the next
    pending ``"start"``, ``"stop"`` or ``"continue"``, or None) and an idempotent :meth:`close`;
    :meth:`prepare` is called once, with the features, before the first hop (allocate there).
    ``name`` says what it follows, for the status line. ``tracked_bpm`` is the tempo it follows
    when that differs from the grid's momentary rate (the player's, while the grid bends towards
    its beat), else None: the report's tempo path."""

    name: str
    tracked_bpm: float | None

    def prepare(self, features: Any) -> None: ...

    def poll(self, t: float, features: Any, grid: Any = None) -> float | None: ...

    def transport(self) -> str | None: ...

    def close(self) -> None: ...


class ConfigTempo:
    """``tempo.source: config``: the tempo of the config file, never changed."""

    name = "config"
    tracked_bpm = None  # the grid runs at what this source set, unbent

    def prepare(self, features: Any) -> None:
        pass

    def poll(self, t: float, features: Any, grid: Any = None) -> float | None:
        return None

    def transport(self) -> str | None:
        return None

    def close(self) -> None:
        pass


class TapSource:
    """``tempo.source: tap``: :meth:`tap` (from a footswitch thread) sets the tempo."""

    name = "tap"
    tracked_bpm = None  # the grid runs at what this source set, unbent

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._tapper = TapTempo()
        self._clock = clock
        self._pending: float | None = None

    def tap(self, t: float | None = None) -> float | None:
        """A tap now (or at ``t``, monotonic seconds); returns the tapped tempo once known."""
        bpm = self._tapper.tap(self._clock() if t is None else t)
        if bpm is not None:
            self._pending = bpm
        return bpm

    def prepare(self, features: Any) -> None:
        pass

    def poll(self, t: float, features: Any, grid: Any = None) -> float | None:
        bpm, self._pending = self._pending, None
        return bpm

    def transport(self) -> str | None:
        return None

    def close(self) -> None:
        pass


class MidiClockSource:
    """``tempo.source: midi_clock``: the filtered tempo and transport of an incoming MIDI clock."""

    name = "midi_clock"
    tracked_bpm = None  # the grid runs at what this source set, unbent

    def __init__(self, follower: ClockFollower, port: MidiClockInput | None = None) -> None:
        self.follower = follower
        self._port = port
        self._applied: float | None = None

    def prepare(self, features: Any) -> None:
        pass

    def poll(self, t: float, features: Any, grid: Any = None) -> float | None:
        bpm = self.follower.bpm
        if bpm is None or bpm == self._applied:
            return None
        self._applied = bpm
        return bpm

    def transport(self) -> str | None:
        q = self.follower.transport
        return q.popleft() if q else None

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            port.close()


class PlayerSource:
    """``tempo.source: player``: the grid locked to the player's beats and bars.

    A :class:`~kelly_edge.tempo.beat.BeatTracker` follows the context's onset strength; a
    :class:`~kelly_edge.tempo.lock.GridLock` bends the grid's rate once per beat towards its
    predictions. ``bpm`` (the config's) is the starting tempo and the tracker's prior centre.
    The tracker is sized by :meth:`prepare`, from the context's exact hop duration.

    A prediction's rate is applied on the hop it is made. The engine plans a step a 16th before
    it sounds, and the tracker predicts about half a beat (two 16ths) ahead, so a correction held
    back to the next 16th boundary (as first written, so the engine's model pre-runs, counted in
    hops at the grid's rate, were never cut short) often found the beat's step already planned:
    on the rendered dev pieces the box's beats scored F 0.838 against its tracker's 0.906. At
    once: 0.868 (``python -m tools.beat_diagnose``; real-dev 0.834 -> 0.832, its orchestral part
    0.625 -> 0.641). A pre-run cut short only moves that model into the planning hop. Predicting
    earlier instead (a third or a quarter of a beat after the last) cost the tracker more than
    the lock gained (real-dev 0.826 and 0.761). The rest of the time (the tracked tempo again
    after a correction) the rate changes only on a hop that planned a step.
    """

    name = "player"

    def __init__(self, bpm: float) -> None:
        self._guess = float(bpm)
        self.tracker: BeatTracker | None = None
        self.lock = GridLock()
        self._step = -1  # the grid's last 16th boundary passed, at the last poll

    @property
    def tracked_bpm(self) -> float | None:
        """The tempo the grid holds between its corrections (None until a beat was predicted)."""
        return self.lock.base_bpm

    def prepare(self, features: Any) -> None:
        """Size the tracker for the context's hop (its buffers: ~1.5 MB at 22.05 kHz)."""
        if self.tracker is None or self.tracker.hop_s != features.hop_s:
            self.tracker = BeatTracker(hop_s=features.hop_s, bpm=self._guess)

    def poll(self, t: float, features: Any, grid: Any = None) -> float | None:
        if features is None or grid is None:
            return None
        tracker = self.tracker
        if tracker is None:  # not prepared: do it now (allocates in this hop)
            tracker = self.tracker = BeatTracker(hop_s=features.hop_s, bpm=self._guess)
        step = math.floor(grid.position(t))
        if tracker.update(features.onset_strength, features.mel, features.silent):
            self._step = step
            return self.lock.on_prediction(t, grid, tracker)  # at once: see the class docstring
        if step == self._step:
            return None  # mid-step: see the class docstring
        self._step = step
        return self.lock.on_hop(t, grid, tracker)

    def transport(self) -> str | None:
        return None

    def close(self) -> None:
        pass


def file_tempo_source(config: Any) -> TempoSource:
    """The source a recording drives: the player's for ``player`` (and ``onsets``), else the
    config's tempo (a file has no footswitch and no clock input)."""
    if config.tempo.source in FILE_SOURCES:
        return PlayerSource(config.tempo.bpm)
    return ConfigTempo()


def make_tempo_source(config: Any) -> TempoSource:
    """The source ``config.tempo.source`` names; opens the MIDI clock input port when needed
    (DeviceError when it is missing)."""
    source = config.tempo.source
    if source == "tap":
        return TapSource()
    if source in FILE_SOURCES:
        return PlayerSource(config.tempo.bpm)
    if source == "midi_clock":
        follower = ClockFollower()
        port = MidiClockInput(follower, port=config.midi.clock_in_port, api=config.midi.backend)
        return MidiClockSource(follower, port)
    return ConfigTempo()
