"""The tempo seam: one small interface, one class per ``tempo.source`` value.

The live loop polls its source once per hop, on the processing thread, and applies what it
returns (``Engine.set_tempo`` + the clock out). Sources fed from other threads (a footswitch, a
MIDI input callback) hand values over through single attributes or a deque, never a lock the
processing thread could wait on.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Protocol, runtime_checkable

from kelly_edge.tempo.midi_clock import ClockFollower, MidiClockInput
from kelly_edge.tempo.onsets import OnsetTempo
from kelly_edge.tempo.tap import TapTempo



@runtime_checkable
class TempoSource(Protocol):
    """Must provide :meth:`poll` (a new tempo in BPM to apply now, or None; ``features`` is the
    engine's :class:`~kelly_edge.features.context.FeatureContext`), :meth:`transport` (the next
    pending ``"start"``, ``"stop"`` or ``"continue"``, or None) and an idempotent :meth:`close`.
    ``name`` says what it follows, for the status line."""

    name: str

    def poll(self, t: float, features: Any) -> float | None: ...

    def transport(self) -> str | None: ...

    def close(self) -> None: ...


class ConfigTempo:
    """``tempo.source: config``: the tempo of the config file, never changed."""

    name = "config"

    def poll(self, t: float, features: Any) -> float | None:
        return None

    def transport(self) -> str | None:
        return None

    def close(self) -> None:
        pass


class TapSource:
    """``tempo.source: tap``: :meth:`tap` (from a footswitch thread) sets the tempo."""

    name = "tap"

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

    def poll(self, t: float, features: Any) -> float | None:
        bpm, self._pending = self._pending, None
        return bpm

    def transport(self) -> str | None:
        return None

    def close(self) -> None:
        pass


class MidiClockSource:
    """``tempo.source: midi_clock``: the filtered tempo and transport of an incoming MIDI clock."""

    name = "midi_clock"

    def __init__(self, follower: ClockFollower, port: MidiClockInput | None = None) -> None:
        self.follower = follower
        self._port = port
        self._applied: float | None = None

    def poll(self, t: float, features: Any) -> float | None:
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


class OnsetSource:
    """``tempo.source: onsets``: the player's tempo, from the onset tempo estimator, stabilised."""

    name = "onsets"

    def __init__(self, bpm: float) -> None:
        self._follow = OnsetTempo(bpm)

    def poll(self, t: float, features: Any) -> float | None:
        # the scalars, not ``descriptors``: reading those every hop would compute them every hop
        return self._follow.update(t, features.tempo_bpm, features.pulse_clarity)

    def transport(self) -> str | None:
        return None

    def close(self) -> None:
        pass


def make_tempo_source(config: Any) -> TempoSource:
    """The source ``config.tempo.source`` names; opens the MIDI clock input port when needed
    (DeviceError when it is missing)."""
    source = config.tempo.source
    if source == "tap":
        return TapSource()
    if source == "onsets":
        return OnsetSource(config.tempo.bpm)
    if source == "midi_clock":
        follower = ClockFollower()
        port = MidiClockInput(follower, port=config.midi.clock_in_port, api=config.midi.backend)
        return MidiClockSource(follower, port)
    return ConfigTempo()
