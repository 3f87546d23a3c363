"""One port per synth: the owner of where each MIDI message goes.

A stomp-box drives several synths (a bass synth, a poly synth, a drum machine on a USB hub). Each
voice names its synth's port (``generator.<voice>.port``, a substring of the port name; ``""`` =
``midi.port``); voices that name the same port share one *destination*. :func:`plan_routes` turns
the config into destinations; :class:`MidiRouter` is the :class:`~kelly_edge.midi.sinks.MidiSink`
the engine writes to, with one :class:`~kelly_edge.midi.rtmidi_sink.ScheduledSink` per
destination, so each port is opened, watched for hot-plug, panicked and measured on its own: a
synth that goes missing silences only the voices that play on it (one log line), and when it
comes back it gets its notes-off first, then its voices' bank/program, then notes again.

Routing is by the channel the generator writes a voice on, its *lane*: a voice's own channel,
unless another voice on another port already plays on that channel (two synths that both listen
on channel 1): then a free channel, which the router moves back to the voice's channel on the
way out (:func:`voice_lanes`, :func:`playing_config`), so the generator needs no change. System messages (clock, Start, Stop) go to the clock destinations:
the ports listed in ``midi.clock_out_ports``, or every destination when that is empty. A listed
port that no voice plays to is opened for the clock alone (a drum machine that only follows).

Public API for everything that reads or adds to the output (status, report, ``devices``, MIDI
thru): :meth:`MidiRouter.ports` (one :class:`PortState` per destination), :meth:`MidiRouter.voices`
(voice -> its destination's state), :meth:`MidiRouter.sink_for_voice` / :meth:`MidiRouter.sink_for_port` (the :class:`ScheduledSink`
of a voice or of a configured port text, for MIDI thru: its ``send(t, m)`` is scheduled, its
``send_now(m)`` goes out at once, and both are tracked there, so that port's panic and close
release them), and the aggregate figures the single-port box had (``sent``, ``late``, ``connected``...).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from kelly_edge.errors import DeviceError
from kelly_edge.generate.generator import VOICES
from kelly_edge.midi import messages as mm
from kelly_edge.midi.rtmidi_sink import MidiOutput, ScheduledSink

log = logging.getLogger(__name__)

_TRANSPORT = frozenset((0xF8, 0xFA, 0xFB, 0xFC))  # clock, Start, Continue, Stop


@dataclass
class Route:
    """One destination: the port text that names it, who plays there, what it is sent at start."""

    want: str  # the substring the config gives ("" = midi.port's own, which may be "" = first port)
    key: str  # the config key that names it: "midi.port", "generator.bass.port", "midi.clock_out_ports", ...
    voices: list[str] = field(default_factory=list)
    channels: list[int] = field(default_factory=list)  # wire channels 0..15 of its voices
    lanes: dict[int, int] = field(default_factory=dict)  # the generator's channel of a voice -> its wire channel
    setup: list[bytes] = field(default_factory=list)  # bank select + program change of its voices
    clock: bool = False
    primary: bool = False  # midi.port's destination (midi.virtual applies to it)

    @property
    def label(self) -> str:
        """Who plays here, for log lines: "bass", "melody+chord", "clock", "thru"."""
        return "+".join(self.voices) if self.voices else "clock" if self.clock else "thru"

    def is_for(self, want: str) -> bool:
        """Is this the destination a config's port text ``want`` names ("" = midi.port's)?"""
        return (self.primary and not want) or self.want.casefold() == want.casefold()


def voice_lanes(config: Any) -> dict[str, int]:
    """Each voice's lane (0..15): the channel the generator writes it on. Its own wire channel,
    unless a voice before it on another port has that lane already: then the lowest channel no
    voice plays on (the router moves it back to the wire channel for that voice's synth)."""
    gen = config.generator
    # a voice's port text, "" meaning midi.port's: a voice naming midi.port outright shares its synth
    ports = {name: (getattr(gen, name).port.strip() or config.midi.port).casefold() for name in VOICES}
    wires = {name: mm.wire_channel(int(getattr(gen, name).channel)) for name in VOICES}
    lanes: dict[str, int] = {}
    owner: dict[int, str] = {}  # lane -> the port it goes to
    for name in VOICES:
        lane = wires[name]
        if owner.get(lane, ports[name]) != ports[name]:
            lane = next(ch for ch in range(16) if ch not in owner and ch not in wires.values())
        owner[lane] = ports[name]
        lanes[name] = lane
    return lanes


def playing_config(config: Any) -> Any:
    """``config`` with each voice's channel set to its lane (what the engine of a routed box plays
    on); the config itself when every lane is the voice's own channel."""
    import dataclasses

    lanes, gen = voice_lanes(config), config.generator
    moved = {name: dataclasses.replace(getattr(gen, name), channel=lane + 1)
             for name, lane in lanes.items() if lane != mm.wire_channel(int(getattr(gen, name).channel))}
    if not moved:
        return config
    return dataclasses.replace(config, generator=dataclasses.replace(gen, **moved))


def plan_routes(config: Any, also: Iterable[str] = ()) -> list[Route]:
    """The destinations of ``config``, midi.port's first (when a voice or the clock uses it).

    ``also``: port texts that must have a destination even when no voice or clock uses them
    (MIDI thru's target; ``""`` = midi.port's); one that names no voice's port gets its own."""
    gen, midi = config.generator, config.midi
    routes: list[Route] = []

    def find(want: str) -> Route | None:
        return next((r for r in routes if r.want.casefold() == want.casefold()), None)

    primary = Route(want=midi.port, key="midi.port", primary=True)
    routes.append(primary)
    lanes = voice_lanes(config)
    for name in VOICES:
        voice = getattr(gen, name)
        own = voice.port.strip()
        route = primary if not own else find(own)
        if route is None:
            route = Route(want=own, key=f"generator.{name}.port")
            routes.append(route)
        ch = mm.wire_channel(int(voice.channel))
        route.voices.append(name)
        route.lanes[lanes[name]] = ch
        if ch not in route.channels:
            route.channels.append(ch)
        route.setup += mm.voice_setup(ch, voice.program, voice.bank)
    if midi.clock_out:
        from kelly_edge.config.schema import port_list

        listed = port_list(midi.clock_out_ports)
        for want in listed:
            needle = want.casefold()
            matches = [r for r in routes if r.voices and needle in r.want.casefold()]
            if not matches:
                matches = [find(want) or Route(want=want, key="midi.clock_out_ports")]
                if matches[0] not in routes:
                    routes.append(matches[0])
            for r in matches:
                r.clock = True
        if not listed:
            for r in routes:
                r.clock = True
    needed = {id(primary)} if any(not want for want in also) else set()
    for want in also:
        if want:
            route = find(want)
            if route is None:
                route = Route(want=want, key="midi.thru_to")
                routes.append(route)
            needed.add(id(route))
    return [r for r in routes if r.voices or r.clock or id(r) in needed]


@dataclass(frozen=True)
class PortState:
    """What status, the report and ``devices`` show of one destination."""

    want: str  # the configured text
    key: str
    name: str  # the port it opened (or the text it looks for while missing)
    voices: tuple[str, ...]
    clock: bool
    state: str  # "connected" | "missing"
    since_s: float  # seconds in that state
    sent: int
    late: int
    dropped: int
    lost: int
    sounding: int
    late_p99_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {"port": self.name, "want": self.want, "key": self.key, "voices": list(self.voices),
                "clock": self.clock, "state": self.state, "since_s": round(self.since_s, 1), "sent": self.sent,
                "late": self.late, "dropped": self.dropped, "lost": self.lost, "sounding": self.sounding,
                "late_p99_ms": self.late_p99_ms}


class MidiRouter:
    """The :class:`~kelly_edge.midi.sinks.MidiSink` of a box with one port per synth.

    ``routes`` and ``sinks`` are parallel (see :func:`open_router`). A channel message goes to the
    sink of the voice on that channel (a channel no voice uses: the first destination); a clock,
    Start, Continue or Stop to every clock destination; any other system message to every one.
    """

    def __init__(self, routes: Sequence[Route], sinks: Sequence[ScheduledSink]) -> None:
        if not routes or len(routes) != len(sinks):
            raise ValueError("a router needs one sink per route, at least one")
        self._routes = tuple(routes)
        self._sinks = tuple(sinks)
        by_lane: list[ScheduledSink] = [sinks[0]] * 16
        wire = list(range(16))  # lane -> the channel its synth hears
        for route, sink in zip(routes, sinks):
            for lane, ch in route.lanes.items():
                by_lane[lane] = sink
                wire[lane] = ch
        self._by_lane = by_lane
        self._wire = tuple(wire)
        self._clock_sinks = tuple(s for r, s in zip(routes, sinks) if r.clock)
        self._by_voice = {v: s for r, s in zip(routes, sinks) for v in r.voices}

    # --- MidiSink ------------------------------------------------------------------------------
    def send(self, t: float, message: bytes) -> None:
        status = message[0]
        if status < 0xF0:
            lane = status & 0x0F
            self._by_lane[lane].send(t, self._on_wire(lane, message))
            return
        for sink in self._clock_sinks if status in _TRANSPORT else self._sinks:
            sink.send(t, message)

    def _on_wire(self, lane: int, message: bytes) -> bytes:
        ch = self._wire[lane]
        return message if ch == lane else bytes((message[0] & 0xF0 | ch,)) + message[1:]

    def set_tempo(self, t: float, bpm: float) -> None:
        for sink in self._sinks:
            sink.set_tempo(t, bpm)

    def close(self) -> None:
        """Close every destination (each panics first); every one is closed even if one fails."""
        for sink in self._sinks:
            try:
                sink.close()
            except Exception as err:
                log.debug("closing MIDI output %r: %s", sink.output.name, err)

    # --- the live sink's other duties -----------------------------------------------------------
    def start(self, *, setup_now: bool = True) -> None:
        """Start every destination's threads; ``setup_now`` False: the caller queues the voices'
        bank/program with :meth:`send_setup` (the live loop, on its first hop)."""
        for sink in self._sinks:
            sink.start(setup_now=setup_now)

    def send_setup(self, t: float) -> None:
        for sink in self._sinks:
            sink.send_setup(t)

    def send_now(self, message: bytes) -> None:
        """At once, ahead of the queues: a channel message to its voice's port, a Stop to the
        clock ports, any other system message to every port."""
        status = message[0]
        if status < 0xF0:
            lane = status & 0x0F
            self._by_lane[lane].send_now(self._on_wire(lane, message))
            return
        for sink in self._clock_sinks if status in _TRANSPORT else self._sinks:
            sink.send_now(message)

    def panic(self, *, players: bool = True) -> None:
        """Every destination's panic (``players``: also the notes a keyboard holds through MIDI thru,
        see :meth:`ScheduledSink.panic`)."""
        for sink in self._sinks:
            sink.panic(players=players)

    def follow(self, base_t: float, anchor: int | None) -> None:
        """Every JACK timeline follows the capture's frame anchor (see JackTimeline.follow)."""
        for sink in self._sinks:
            follow = getattr(sink.timeline, "follow", None)
            if follow is not None:
                follow(base_t, anchor)

    # --- the public read side ---------------------------------------------------------------
    def sink_for_voice(self, voice: str) -> ScheduledSink:
        """The destination sink a voice plays on (MIDI thru to a voice's port uses it)."""
        try:
            return self._by_voice[voice]
        except KeyError:
            raise ValueError(f"unknown voice {voice!r}: expected one of {', '.join(self._by_voice)}") from None

    def sink_for_port(self, want: str) -> ScheduledSink:
        """The destination sink whose configured port text is ``want`` ("" = midi.port's)."""
        for route, sink in zip(self._routes, self._sinks):
            if route.is_for(want):
                return sink
        raise ValueError(f"no MIDI destination is configured for port {want!r}")

    def ports(self) -> list[PortState]:
        """Every destination's state, midi.port's first."""
        out = []
        for route, sink in zip(self._routes, self._sinks):
            out.append(PortState(
                want=route.want, key=route.key, name=sink.output.name, voices=tuple(route.voices),
                clock=route.clock, state="connected" if sink.connected else "missing",
                since_s=sink.seconds_in_state(), sent=sink.sent, late=sink.late, dropped=sink.dropped,
                lost=sink.lost_count, sounding=sink.sounding, late_p99_ms=float(sink.lateness_ms()["p99"])))
        return out

    def voices(self) -> dict[str, PortState]:
        """``{voice: its destination's state}``."""
        return {v: p for p in self.ports() for v in p.voices}

    # --- aggregates (the one-port box's figures, summed) ------------------------------------
    @property
    def primary(self) -> ScheduledSink:
        return self._sinks[0]

    @property
    def output(self) -> MidiOutput:
        return self._sinks[0].output

    @property
    def timeline(self) -> Any:
        return self._sinks[0].timeline

    @property
    def latency_s(self) -> float:
        return self._sinks[0].latency_s

    @property
    def connected(self) -> bool:
        """Every destination is connected."""
        return all(s.connected for s in self._sinks)

    @property
    def sent(self) -> int:
        return sum(s.sent for s in self._sinks)

    @property
    def late(self) -> int:
        return sum(s.late for s in self._sinks)

    @property
    def dropped(self) -> int:
        return sum(s.dropped for s in self._sinks)

    @property
    def lost_count(self) -> int:
        return sum(s.lost_count for s in self._sinks)

    @property
    def sounding(self) -> int:
        return sum(s.sounding for s in self._sinks)

    @property
    def first_note_on_wall(self) -> float | None:
        times = [s.first_note_on_wall for s in self._sinks if s.first_note_on_wall is not None]
        return min(times) if times else None

    @property
    def trace(self) -> list[tuple[float, float, bytes]] | None:
        """Every destination's trace merged by due time (one destination: its own, as sent)."""
        traces = [s.trace for s in self._sinks if s.trace is not None]
        if not traces:
            return None
        if len(traces) == 1:
            return traces[0]
        return sorted((e for tr in traces for e in tr), key=lambda e: e[0])

    def lateness_ms(self) -> dict[str, float]:
        """The worst destination's figures (the one a musician would hear)."""
        return max((s.lateness_ms() for s in self._sinks), key=lambda d: (d["p99"], d["max"]))


def open_router(
    routes: Sequence[Route],
    make_output: Callable[[Route], MidiOutput],
    make_sink: Callable[[Route, MidiOutput, bool], ScheduledSink],
    *,
    wait: bool,
    stop: Any,
    retry_s: float = 1.5,
) -> MidiRouter | None:
    """Open every destination. One that is missing starts quiet (one log line naming its key and
    the fix) and its watchdog keeps looking; when none at all can be opened, the first failure is
    raised (DeviceError: exit code 2), or with ``wait`` logged once and retried every ``retry_s``
    (None when ``stop`` is set first). Outputs are made once and retried in place."""
    outputs = [make_output(r) for r in routes]
    errors: list[DeviceError | None] = [None] * len(routes)
    logged = ""
    while True:
        for i, output in enumerate(outputs):
            try:
                output.open() if errors[i] is None else output.reopen()
                errors[i] = None
            except DeviceError as err:
                errors[i] = err
        if any(e is None for e in errors) or not wait:
            break
        if str(errors[0]) != logged:
            logged = str(errors[0])
            log.warning("MIDI output: %s; waiting for it (audio.wait_for_devices), retrying every %.1f s",
                        errors[0], retry_s)
        if stop.wait(retry_s):
            _close_all(outputs)
            return None
    if all(e is not None for e in errors):
        _close_all(outputs)
        raise errors[0]  # type: ignore[misc]
    sinks = []
    for route, output, err in zip(routes, outputs, errors):
        if err is not None:
            log.warning("%s; %s stays quiet until it appears (kelly-edge devices lists the ports), retrying every "
                        "%.1f s", err, route.label if route.voices else "the clock", retry_s)
        sinks.append(make_sink(route, output, err is None))
    return MidiRouter(routes, sinks)


def _close_all(outputs: Iterable[MidiOutput]) -> None:
    for output in outputs:
        try:
            output.close()
        except Exception as err:
            log.debug("closing MIDI output: %s", err)
