"""Live MIDI out: events leave at their scheduled wall-clock time, over a port that may come and go.

Two parts, split along the seam of style note 1:

* :class:`MidiOutput` is the device (a python-rtmidi port here: :class:`RtMidiOutput`; tests use a
  fake). It opens a port by *name substring* (ALSA client numbers change on replug) or a virtual
  port, says whether its port still exists, and sends raw bytes.
* :class:`ScheduledSink` is the :class:`~kelly_edge.midi.sinks.MidiSink` the engine writes to. The
  engine stamps each message with its time on the *audio* timeline, ahead of time (the generator
  plans a step ahead); ``send`` only queues it. A sender thread maps audio time to wall time
  (``to_wall``, kept by the live loop from the capture timestamps), adds a constant ``latency_s``
  and emits each message when that moment comes, so MIDI timing does not depend on when a hop
  happened to finish processing. How late each message left is measured (``lateness``).

Hotplug: a watchdog thread checks every ``retry_s`` that the port still exists. When it vanishes,
one line is logged and messages are dropped (the notes they would have played are lost, not
delayed); it is reopened by name as soon as it is back, and then every note still marked sounding
gets its note-off and every channel used gets CC123 + CC120 + CC64 0 (one more line logged).
:meth:`ScheduledSink.panic` does the same at once and drops the queue; :meth:`ScheduledSink.close`
panics, stops the threads and closes the port.

MIDI thru (:mod:`kelly_edge.midi.thru`) joins the sink with :meth:`ScheduledSink.send_through`
(a controller's whole message at once, under the port lock, so it never splits one of the box's)
and registers the player's notes with :meth:`ScheduledSink.add_player` so that panics,
reconnections and the close release them too. :class:`RtMidiInput` is the python-rtmidi input
seam the clock follower and the thru share.

Locking: ``send`` and the sender share one condition (held only to push/pop the heap); the port is
touched under ``_port_lock`` by the sender, panic and the watchdog's reopen. Public methods check and
lock; ``_emit`` touches the device.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import re
import threading
import time
from typing import Any, Callable, Iterable, Protocol, runtime_checkable

import numpy as np

from kelly_edge.audio.native_log import mute_native_errors
from kelly_edge.errors import DeviceError
from kelly_edge.midi.notes import ActiveNotes

log = logging.getLogger(__name__)

APIS = ("alsa", "jack")
_ALSA_SUFFIX = re.compile(r"\s+\d+:\d+$")  # "... 20:0": ALSA client:port numbers, new on every replug


def display_name(port: str) -> str:
    """A port name as ``midi.port`` names it: without ALSA's trailing ``client:port`` numbers."""
    return _ALSA_SUFFIX.sub("", port)


@runtime_checkable
class MidiOutput(Protocol):
    """A MIDI output device.

    Must provide: ``name`` (what was opened, for messages), :meth:`open` (find and open the port;
    DeviceError with one clear line when it cannot), :meth:`present` (does the opened port still
    exist? called every 1-2 s from a watchdog thread, with the sink's port lock held: must be quick), :meth:`send` (one raw
    message; called with the sink's port lock held, from one thread at a time), :meth:`reopen`
    (close and open again by name; DeviceError while it is still missing) and an idempotent
    :meth:`close`.
    """

    name: str

    def open(self) -> None: ...

    def present(self) -> bool: ...

    def send(self, message: bytes) -> None: ...

    def reopen(self) -> None: ...

    def close(self) -> None: ...


# --- python-rtmidi ----------------------------------------------------------------------------


def _rtmidi() -> Any:
    mute_native_errors()
    import rtmidi

    return rtmidi


def _api(rtmidi: Any, api: str) -> int:
    if api == "alsa":
        return int(rtmidi.API_LINUX_ALSA)
    if api == "jack":
        return int(rtmidi.API_UNIX_JACK)
    raise DeviceError(f"unknown MIDI backend {api!r} (one of {', '.join(APIS)})")


def _new(kind: str, api: str, client_name: str) -> Any:
    """A python-rtmidi ``MidiOut``/``MidiIn``; DeviceError when the MIDI system is unreachable."""
    rtmidi = _rtmidi()
    cls = rtmidi.MidiOut if kind == "out" else rtmidi.MidiIn
    try:
        return cls(_api(rtmidi, api), name=client_name)
    except (rtmidi.SystemError, RuntimeError) as err:
        if api == "jack":
            raise DeviceError("no JACK server is running for MIDI (start jackd, or set midi.backend: alsa)") from err
        raise DeviceError(
            "cannot open the ALSA sequencer (no /dev/snd/seq: is snd-seq loaded?), or set midi.backend: jack"
        ) from err


def _usable(ports: list[str], client_name: str) -> list[tuple[int, str]]:
    """``(index, name)`` of ports that are not our own client's."""
    own = (f"{client_name}:", f"{client_name}-")
    return [(i, p) for i, p in enumerate(ports) if not p.startswith(own)]


def list_outputs(api: str, client_name: str = "kelly-edge-list") -> list[str]:
    """MIDI output ports as ``midi.port`` would name them (``[]`` when there are none)."""
    out = _new("out", api, client_name)
    try:
        return [display_name(p) for _, p in _usable(out.get_ports(), client_name)]
    finally:
        out.delete()


def list_inputs(api: str, client_name: str = "kelly-edge-list") -> list[str]:
    """MIDI input ports (clock sources) as ``midi.clock_in_port`` would name them."""
    mi = _new("in", api, client_name)
    try:
        return [display_name(p) for _, p in _usable(mi.get_ports(), client_name)]
    finally:
        mi.delete()


def choose_port(ports: list[str], want: str, *, what: str, key: str, client_name: str) -> tuple[int, str]:
    """The first port whose name contains ``want`` (case-insensitive); ``""`` = the first real port.

    ALSA's "Midi Through" loopback is skipped for ``""`` (it plays nothing). DeviceError when none.
    """
    usable = _usable(ports, client_name)
    if not usable:
        raise DeviceError(f"no MIDI {what} ports found (is the synth or interface plugged in?)")
    if not want:
        real = [(i, p) for i, p in usable if "midi through" not in p.casefold()]
        if not real:
            raise DeviceError(f"no MIDI {what} ports found (only {display_name(usable[0][1])!r})")
        return real[0]
    needle = want.casefold()
    for i, p in usable:
        if needle in display_name(p).casefold():
            return i, p
    names = ", ".join(repr(display_name(p)) for _, p in usable)
    raise DeviceError(f"no MIDI {what} port matches {key} {want!r} ({what}s: {names})")


class RtMidiOutput:
    """A python-rtmidi output port on ``api`` ("alsa" or "jack"), chosen by name substring or virtual.

    One python-rtmidi client is made in :meth:`open` and kept until :meth:`close`: reopening after
    an unplug only closes and opens the *port*. (Creating or deleting a python-rtmidi JACK client
    holds the GIL while the server runs a graph cycle, which stalls every Python JACK callback in
    the process, the audio capture's included, for 0.5-1 s; opening a port does not.)
    """

    def __init__(self, *, port: str, api: str = "alsa", virtual: bool = False, client_name: str = "kelly-edge",
                 key: str = "midi.port") -> None:
        self.want = port
        self.key = key  # the config key that names the port, for messages
        self.api = api
        self.virtual = virtual
        self.client_name = client_name
        self.name = f"{client_name}:out (virtual)" if virtual else (port or "first MIDI port")
        self._raw_name = ""
        self._midi: Any = None
        self._open = False

    def open(self) -> None:
        created = self._midi is None
        midi = _new("out", self.api, self.client_name) if created else self._midi
        try:
            if self.virtual:
                midi.open_virtual_port("out")
            else:
                index, raw = choose_port(midi.get_ports(), self.want, what="output", key=self.key,
                                         client_name=self.client_name)
                midi.open_port(index, "out")
                self._raw_name = raw
                self.name = display_name(raw)
        except DeviceError:  # the port is not there (yet): keep the client, a retry only looks again
            self._midi = midi
            raise
        except BaseException:
            if created:
                midi.delete()
            raise
        self._midi = midi
        self._open = True

    def present(self) -> bool:
        if not self._open:
            return False
        if self.virtual:
            return True
        return self._raw_name in self._midi.get_ports()

    def send(self, message: bytes) -> None:
        self._midi.send_message(message)

    def reopen(self) -> None:
        if self._open and not self.virtual:
            self._open = False
            self._midi.close_port()
        self.open()

    def close(self) -> None:
        midi, self._midi = self._midi, None
        was_open, self._open = self._open, False
        if midi is not None and was_open and self.api == "jack":
            time.sleep(0.03)  # python-rtmidi's JACK port writes from a ring in the next periods: the
            # shutdown panic's note-offs are still in it (ALSA hands them to the sequencer at once)
        if midi is not None:
            try:
                if was_open:
                    midi.close_port()
            finally:
                midi.delete()


class RtMidiInput:
    """A python-rtmidi input port on ``api``, chosen by name substring (``key``: the config key that
    named it, for the error line); each message goes to ``on_message(message, delta_s)`` on
    python-rtmidi's input thread (``message`` a list of ints, ``delta_s`` since the previous one,
    as the MIDI system stamped it). ``ignore``: python-rtmidi's ``ignore_types`` flags.

    As with :class:`RtMidiOutput`, the python-rtmidi client is made once and kept; :meth:`reopen`
    (after an unplug) only closes and opens the port.
    """

    def __init__(self, *, port: str, api: str, key: str, on_message: Callable[[list[int], float], None],
                 client_name: str, port_name: str = "in", sysex: bool = True, timing: bool = True,
                 active_sense: bool = True) -> None:
        self.want = port
        self.api = api
        self.key = key
        self.client_name = client_name
        self.port_name = port_name
        self.name = port or "first MIDI input"
        self._on_message = on_message
        self._ignore = {"sysex": not sysex, "timing": not timing, "active_sense": not active_sense}
        self._midi: Any = None
        self._raw = ""

    def _callback(self, event: tuple[list[int], float], data: Any = None) -> None:
        message, delta = event
        if message:
            self._on_message(message, delta)

    def open(self) -> None:
        created = self._midi is None
        midi = _new("in", self.api, self.client_name) if created else self._midi
        try:
            index, raw = choose_port(midi.get_ports(), self.want, what="input", key=self.key,
                                     client_name=self.client_name)
            midi.ignore_types(**self._ignore)
            midi.open_port(index, self.port_name)
        except BaseException:
            if created:
                midi.delete()
            raise
        self._midi = midi
        self._raw = raw
        self.name = display_name(raw)
        midi.set_callback(self._callback)

    def present(self) -> bool:
        return self._midi is not None and bool(self._raw) and self._raw in self._midi.get_ports()

    def reopen(self) -> None:
        if self._midi is not None and self._raw:
            self._raw = ""
            self._midi.cancel_callback()
            self._midi.close_port()
        self.open()

    def close(self) -> None:
        midi, self._midi = self._midi, None
        if midi is not None:
            try:
                midi.cancel_callback()
                midi.close_port()
            finally:
                midi.delete()


# --- the scheduled sink -----------------------------------------------------------------------


class WallTimeline:
    """The sink's clock for an output that sends at once (python-rtmidi): an event is due at
    ``to_wall(t) + latency_s`` on ``clock()`` and handed to the device when that moment comes.

    The interface every timeline has (see also :class:`~kelly_edge.midi.jack_sink.JackTimeline`):
    ``due(t)`` (a due time in the timeline's units), ``wait_s(due)`` (seconds until it must be
    handed over), ``now()``, ``deliver(due, message)`` (hand it over; False when refused),
    ``flush()`` (drop what was handed over and not yet out), ``seconds(due)`` (for traces),
    ``wall_of(due)`` and ``lateness_ms()`` (None: the sink measures lateness itself).
    """

    kind = "wall"

    def __init__(self, output: MidiOutput, *, to_wall: Callable[[float], float], latency_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.output = output
        self._to_wall = to_wall
        self.latency_s = float(latency_s)
        self._clock = clock

    def due(self, t: float) -> float:
        return self._to_wall(t) + self.latency_s

    def wait_s(self, due: float) -> float:
        return due - self._clock()

    def now(self) -> float:
        return self._clock()

    def deliver(self, due: float, message: bytes) -> bool:
        self.output.send(message)
        return True

    def flush(self) -> None:
        """Nothing is held outside the sink's own queue."""

    def seconds(self, due: float) -> float:
        return due

    def wall_of(self, due: float) -> float:
        return self._clock()

    def lateness_ms(self) -> dict[str, float] | None:
        return None


class ScheduledSink:
    """A live :class:`~kelly_edge.midi.sinks.MidiSink`: queue by audio time, emit at wall time.

    ``to_wall(t)`` maps audio seconds to ``clock()`` seconds (monotonic); ``latency_s`` is added
    to every message so that anything queued less than that late still leaves on time.
    ``timeline``: when and how a message is handed to the device (default :class:`WallTimeline`;
    :class:`~kelly_edge.midi.jack_sink.JackTimeline` hands it to a JACK port at its own frame).
    ``channels``: wire channels (0..15) that always get CC123/CC120 in a panic, besides those that
    played. ``setup``: messages that select the synths' sounds (bank select, program change), sent
    when the sink starts and after the notes-off of every reconnection. ``trace`` keeps ``(due, sent, message)`` of every message (tests, measurements).
    """

    STATS = 8192  # lateness samples kept (a ring)

    def __init__(
        self,
        output: MidiOutput,
        *,
        to_wall: Callable[[float], float],
        latency_s: float = 0.005,
        channels: Iterable[int] = (),
        retry_s: float = 1.5,
        clock: Callable[[], float] = time.monotonic,
        trace: bool = False,
        thread_setup: Callable[[], object] | None = None,
        timeline: Any = None,
        setup: Iterable[bytes] = (),
        connected: bool = True,
        label: str = "",
    ) -> None:
        self.output = output
        self.label = label  # who plays here, for the log lines ("bass"); "" = the box's one port
        self.setup = tuple(setup)
        self.timeline = timeline if timeline is not None else WallTimeline(
            output, to_wall=to_wall, latency_s=latency_s, clock=clock)
        self.latency_s = float(latency_s)
        self._channels = tuple(channels)
        self.retry_s = float(retry_s)
        self._clock = clock
        self._thread_setup = thread_setup
        self._heap: list[tuple[float, int, bytes]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._port_lock = threading.Lock()
        self._active = ActiveNotes()
        self._players: list[Any] = []  # thru inputs' PlayerNotes: released with the box's notes
        self._panics = 0  # panics so far: a message popped before one is not sent after it
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.connected = bool(connected)  # False: the port was missing at start (the watchdog looks for it)
        self.since = clock()  # when ``connected`` last changed, on ``clock()``
        self._ever_connected = self.connected
        self.closed = False
        self.tempos: collections.deque[tuple[float, float]] = collections.deque(maxlen=256)  # recent changes
        # statistics (sender thread)
        self.sent = 0
        self.dropped = 0  # messages that could not go out (port missing or failing)
        self._late = 0  # messages that left more than 1 ms after their due time (wall timeline)
        self.lost_count = 0
        self._lateness = np.zeros(self.STATS)
        self._n_lateness = 0
        self.trace: list[tuple[float, float, bytes]] | None = [] if trace else None
        self.first_note_on_wall: float | None = None

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self, *, setup_now: bool = True) -> None:
        """Send the setup messages (unless the caller queues them with :meth:`send_setup`), start
        the sender and the hotplug watchdog threads."""
        if self._threads:
            return
        if self.connected and setup_now:
            with self._port_lock:
                for message in self.setup:
                    self._emit(message)
        for target, name in ((self._sender, "kelly-midi-sender"), (self._watch, "kelly-midi-watch")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        """Panic (every note off), stop the threads, close the port. Idempotent."""
        if self.closed:
            return
        self.panic()
        self.closed = True
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=2.0)
        with self._port_lock:
            try:
                self.output.close()
            except Exception as err:  # closing a vanished port must not hide the shutdown
                log.debug("closing MIDI output: %s", err)

    # --- MidiSink -----------------------------------------------------------------------------
    def send(self, t: float, message: bytes) -> None:
        """Queue ``message`` for audio time ``t``; it leaves at ``to_wall(t) + latency_s``."""
        if self.closed:
            raise RuntimeError("ScheduledSink.send after close")
        seq = next(self._seq)
        with self._cond:
            heapq.heappush(self._heap, (t, seq, message))
            if self._heap[0][1] == seq:  # a new earliest message: the sender may be waiting for a later one
                self._cond.notify()

    def set_tempo(self, t: float, bpm: float) -> None:
        self.tempos.append((t, float(bpm)))

    def send_setup(self, t: float) -> None:
        """Queue the setup messages (bank select, program change) for audio time ``t``. The live
        loop does this on its first hop, after the start-up notes-off: by then a JACK port is
        connected and the graph settled (what is written while it is re-sorted can be lost)."""
        for message in self.setup:
            self.send(t, message)

    # --- immediate output ---------------------------------------------------------------------
    def send_now(self, message: bytes) -> None:
        """Send at once, ahead of the queue (transport messages, panic)."""
        with self._port_lock:
            self._emit(message)

    def send_through(self, message: bytes) -> None:
        """A controller's whole message passed through (MIDI thru), at once and ahead of the queue;
        not counted as the box's note (its player's notes are tracked by :meth:`add_player`)."""
        with self._port_lock:
            self._emit(message, track=False)

    def add_player(self, notes: Any) -> None:
        """Release ``notes`` (a :class:`~kelly_edge.midi.thru.PlayerNotes`: ``release_messages()``)
        with the box's own on every panic, reconnection and close."""
        if notes not in self._players:
            self._players.append(notes)

    def release_player(self, notes: Any) -> None:
        """Note-offs (and pedal up) now for the notes a player holds through thru, and only those."""
        with self._port_lock:
            if self.connected:
                for message in notes.release_messages():
                    self._emit(message, track=False)

    def panic(self, *, players: bool = True) -> None:
        """Drop everything queued; note-off every sounding note; CC123, CC120, CC64 0 on every channel used.
        ``players``: the notes held through MIDI thru too (:meth:`add_player`); False when only
        the box is silenced (its audio input lost, a clock Stop) and a keyboard player plays on."""
        with self._cond:
            dropped = len(self._heap)
            self._heap.clear()
            self._panics += 1
        with self._port_lock:
            self.timeline.flush()
            self._panic_locked(players)
        if dropped:
            log.debug("panic dropped %d queued MIDI messages", dropped)

    def _panic_locked(self, players: bool = True) -> None:
        for msg in self._active.panic_messages(self._channels):
            self._emit(msg)
        if self.connected:
            self._active.clear()
            for notes in self._players if players else ():  # the player's notes through thru (not
                for msg in notes.release_messages():  # sent while gone: released on reconnection)
                    self._emit(msg, track=False)

    @property
    def late(self) -> int:
        """Messages that left more than 1 ms late (through JACK: written after their frame)."""
        return self._late + int(getattr(self.timeline, "late", 0))

    def seconds_in_state(self) -> float:
        """How long the port has been connected (or missing), on the sink's clock."""
        return max(0.0, self._clock() - self.since)

    @property
    def queued(self) -> int:
        return len(self._heap)

    @property
    def sounding(self) -> int:
        """Notes this sink sent a note-on for and no note-off yet."""
        return self._active.count

    def _emit(self, message: bytes, due: Any = None, *, track: bool = True) -> bool:
        """Send one message to the device (port lock held), at once or (``due`` given) through the
        timeline; track the box's notes (``track``); False when it could not go."""
        if not self.connected:
            self.dropped += 1
            return False
        try:
            if due is None:
                self.output.send(message)
            elif not self.timeline.deliver(due, message):
                self.dropped += 1
                return False
        except Exception as err:  # a port that died between two watchdog checks
            self.dropped += 1
            log.debug("MIDI send failed: %s", err)
            return False
        if track:
            self._active.observe(message)
            self.sent += 1
        return True

    # --- the sender thread --------------------------------------------------------------------
    def _sender(self) -> None:
        if self._thread_setup is not None:
            self._thread_setup()
        while not self._stop.is_set():
            try:
                self._send_due()
            except Exception as err:  # never let the sender die silently: log, keep sending
                log.error("MIDI sender: %s: %s", type(err).__name__, err)
                self._stop.wait(0.01)

    def _send_due(self) -> None:
        """Emit queued messages as they fall due, until stopped (the sender thread's body)."""
        heap, cond, timeline = self._heap, self._cond, self.timeline
        while not self._stop.is_set():
            with cond:
                if not heap:
                    cond.wait(0.5)
                    continue
                if not self.connected:  # it would be dropped when due: drop it now, without
                    heapq.heappop(heap)  # asking a device that is gone what time it is
                    self.dropped += 1
                    continue
                t, _, message = heap[0]
                due = timeline.due(t)
                wait = timeline.wait_s(due)
                if wait > 0.0:
                    cond.wait(wait)  # a new, earlier message or the due time wakes us
                    continue
                heapq.heappop(heap)
                generation = self._panics
            with self._port_lock:
                if generation != self._panics:  # a panic dropped the queue after this was popped:
                    continue  # sending it now would start a note whose note-off was dropped
                sent_at = timeline.now()
                ok = self._emit(message, due)
            if ok:
                self._record(due, sent_at, message)

    def _record(self, due: Any, sent_at: Any, message: bytes) -> None:
        timeline = self.timeline
        if timeline.kind == "wall":
            late = sent_at - due
            self._lateness[self._n_lateness % self.STATS] = late
            self._n_lateness += 1
            if late > 0.001:
                self._late += 1
        if self.first_note_on_wall is None and len(message) == 3 and message[0] & 0xF0 == 0x90 and message[2] > 0:
            self.first_note_on_wall = sent_at if timeline.kind == "wall" else timeline.wall_of(due)
        if self.trace is not None:
            self.trace.append((timeline.seconds(due), timeline.seconds(sent_at), message))

    def lateness_ms(self) -> dict[str, float]:
        """How late messages left, ms: p50, p99, max over the last ``STATS`` (zeros when none).
        Through JACK: how late the process callback wrote them after their frame."""
        own = self.timeline.lateness_ms()
        if own is not None:
            return own
        n = min(self._n_lateness, self.STATS)
        if n == 0:
            return {"p50": 0.0, "p99": 0.0, "max": 0.0, "count": 0}
        ms = self._lateness[:n] * 1000.0
        p50, p99 = np.percentile(ms, [50, 99])
        return {"p50": round(float(p50), 3), "p99": round(float(p99), 3), "max": round(float(ms.max()), 3), "count": self._n_lateness}

    # --- the hotplug watchdog -----------------------------------------------------------------
    def _watch(self) -> None:
        while not self._stop.wait(self.retry_s):
            try:
                self._check_port()
            except Exception as err:  # the watchdog must survive anything the MIDI system does
                log.debug("MIDI watchdog: %s", err)

    def _check_port(self) -> None:
        if self.connected:
            with self._port_lock:  # the device is not used from two threads at once
                present = self.output.present()
            if present:
                return
            with self._port_lock:
                self.connected = False
                self.since = self._clock()
                self.lost_count += 1
            log.warning("MIDI output %r%s lost; %s goes quiet, retrying every %.1f s", self.output.name, self._for(),
                        self.label or "the box", self.retry_s)
            return
        try:
            with self._port_lock:
                self.output.reopen()
                self.connected = True
                self.since = self._clock()
                self._panic_locked()
                for message in self.setup:  # a synth switched off and on again lost its sound
                    self._emit(message)
        except DeviceError:
            return
        again, self._ever_connected = self._ever_connected, True
        log.warning("MIDI output %r%s %s; sent all notes off", self.output.name, self._for(),
                    "is back" if again else "found")

    def _for(self) -> str:
        return f" ({self.label})" if self.label else ""

