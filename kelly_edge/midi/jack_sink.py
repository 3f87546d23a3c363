"""Sample-accurate MIDI out through a JACK MIDI port of our own (``midi.backend: jack``).

python-rtmidi's JACK backend writes every message at offset 0 of the next period, so a message
lands anywhere in the 10 ms after its time (std ~3 ms through a 480-frame period). Here the
messages are written from JACK's process callback *at their own frame*:

* :class:`EventQueue` hands events from the sink's sender thread to the process callback: a
  single-producer / single-consumer ring of preallocated slots (a numpy array of frames, a
  bytearray of message bytes), with the two counts as the only shared state, so the callback
  takes no lock and allocates no buffer. A flush mark lets a panic drop what was already handed
  over without the producer touching the consumer's count.
* :class:`JackMidiOutput` is the :class:`~kelly_edge.midi.rtmidi_sink.MidiOutput`: a JACK-Client
  client with one MIDI output port, connected to the synth's input port by name substring.
  Immediate messages (panic, Stop) go out at the start of the next period; scheduled ones at
  their frame via :meth:`JackMidiOutput.schedule`.
* With MIDI thru (``midi.thru_port``) the client has a second port, ``<client_name>:thru_in``, fed
  by the controller: the same callback reads it through the thru processor into a preallocated
  :class:`ThruStage` and merges those whole messages, at the offsets they came in at, with the
  box's events (a thru message leaves in the frame it arrived in).
* :class:`JackTimeline` is the sink's clock: it turns an event's audio time into a JACK frame and
  says when to hand it over (one period plus a margin before its frame, measured on JACK's frame
  clock, never on the wall clock: the dummy driver and a loaded machine make the two differ).

Audio time -> JACK frame: when the audio comes from a JACK capture on the same server, its
callback records which JACK frame ring frame 0 corresponds to (:attr:`JackCapture.frame_anchor`)
and the live loop passes that on (:meth:`JackTimeline.follow`): the schedule is then on JACK's
timeline outright. Otherwise (PortAudio input) the wall-clock schedule is mapped through JACK's
current frame estimate sampled between two ``time.monotonic()`` reads. That avoids comparing
JACK's microsecond clock (jackd2 stamps it with CLOCK_MONOTONIC_RAW, tens of ms away from
CLOCK_MONOTONIC on some machines) with ``time.monotonic()``.

JACK frame counts are 32-bit and wrap after ~25 h at 48 kHz: the callback compares them modulo
2**32.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

import numpy as np

from kelly_edge.audio import jack_owner
from kelly_edge.audio.jack_owner import on_jack_thread
from kelly_edge.audio.native_log import mute_native_errors
from kelly_edge.errors import DeviceError
from kelly_edge.midi.rtmidi_sink import choose_port, display_name

log = logging.getLogger(__name__)

WRAP = 1 << 32
HALF = 1 << 31
NOW = -1  # a slot frame meaning "as soon as possible" (panic, transport)
LATENESS_KEPT = 8192


def frame_delta(a: int, b: int) -> int:
    """``a - b`` for 32-bit JACK frame counts that may have wrapped (-2**31 .. 2**31-1)."""
    return ((a - b + HALF) & (WRAP - 1)) - HALF


class EventQueue:
    """A lock-free single-producer / single-consumer queue of ``(frame, message)``.

    The producer (one thread at a time: the sink calls it under its port lock) uses :meth:`push`
    and :meth:`flush`; the consumer (the JACK process callback) reads slots between ``head`` and
    ``tail``. Each side writes only its own count, after the slot data, so under the GIL the
    other side sees the old or the new count, never a half-written slot. Messages longer than
    ``width`` bytes are refused (the box sends 1-3 byte messages; sysex would need its own path).
    """

    def __init__(self, slots: int = 2048, width: int = 8) -> None:
        if slots & (slots - 1):
            raise ValueError(f"slots must be a power of two, got {slots}")
        self.slots = slots
        self.mask = slots - 1
        self.width = width
        self.frames = np.zeros(slots, dtype=np.int64)
        self.lengths = np.zeros(slots, dtype=np.int64)
        self.data = bytearray(slots * width)
        self.view = memoryview(self.data)
        self.tail = 0  # producer-owned: slots written so far
        self.head = 0  # consumer-owned: slots consumed so far
        self.flush_to = 0  # producer-owned: the consumer skips every slot below this
        self.refused = 0

    def push(self, frame: int, message: bytes) -> bool:
        """Append one message due at JACK ``frame`` (or :data:`NOW`); False when full or too long."""
        n = len(message)
        if n == 0 or n > self.width or self.tail - self.head >= self.slots:
            self.refused += 1
            return False
        i = self.tail & self.mask
        at = i * self.width
        self.data[at : at + n] = message
        self.lengths[i] = n
        self.frames[i] = frame
        self.tail += 1  # publish last
        return True

    def flush(self) -> None:
        """Drop every *scheduled* message handed over and not yet written (a panic follows); the
        immediate ones (an earlier panic's note-offs, a Stop) still go out, in order."""
        self.flush_to = self.tail

    @property
    def pending(self) -> int:
        """Slots handed over and not yet consumed (flushed ones included until the callback skips them)."""
        return self.tail - self.head


class ThruStage:
    """Whole thru messages of one period, between the parser and the merge (preallocated; the
    callback resets it every period). ``put`` is the parser's writer; ``offset`` is the offset of
    the JACK event being parsed. Messages beyond ``slots`` or ``size`` bytes in one period are
    counted in ``overflow`` and dropped (a sysex longer than a period's buffer could not be
    written to the port either)."""

    def __init__(self, slots: int = 256, size: int = 65536 + 1024) -> None:
        self.slots = slots
        self.offsets = np.zeros(slots, dtype=np.int64)
        self.starts = np.zeros(slots, dtype=np.int64)
        self.lengths = np.zeros(slots, dtype=np.int64)
        self.data = bytearray(size)
        self.view = memoryview(self.data)
        self.size = size
        self.count = 0
        self.used = 0
        self.offset = 0
        self.overflow = 0

    def put(self, message: memoryview, status: int) -> None:
        k, at, n = self.count, self.used, len(message)
        if k >= self.slots or at + n > self.size:
            self.overflow += 1
            return
        self.view[at : at + n] = message
        self.data[at] = status
        self.offsets[k] = self.offset
        self.starts[k] = at
        self.lengths[k] = n
        self.count = k + 1
        self.used = at + n


def _jack() -> Any:
    mute_native_errors()
    try:
        import jack
    except (ImportError, OSError) as err:
        raise DeviceError(f"midi.backend jack needs the JACK-Client package and libjack ({err})") from err
    return jack


class JackMidiOutput:
    """A JACK MIDI output port ``<client_name>:out`` connected to the input port matching ``port``.

    ``virtual``: no connection is made (other clients connect to our port). The client lives from
    :meth:`open` to :meth:`close`; :meth:`reopen` (the synth's port came back) only reconnects,
    unless the server died (its shutdown callback set ``server_gone``): then the dead client is
    closed and a new one opened on the new server, with an empty queue (frames restart there).
    Clients are opened and closed on the process's one JACK owner thread.
    """

    def __init__(self, *, port: str, virtual: bool = False, client_name: str = "kelly-edge-midi",
                 queue: EventQueue | None = None, key: str = "midi.port", thru: Any = None, thru_port: str = "") -> None:
        self.want = port
        self.key = key  # the config key that names the port, for messages
        # MIDI thru (midi.thru_port): a second port <client>:thru_in, read in the same callback
        self.thru = thru  # a kelly_edge.midi.thru.ThruProcessor, or None
        self.thru_want = thru_port
        self.thru_name = thru_port
        self.stage = ThruStage()
        self._thru_in: Any = None
        self._thru_source = ""
        self._thru_linked = False
        self.virtual = virtual
        self.client_name = client_name
        self.name = f"{client_name}:out (virtual)" if virtual else (port or "first MIDI port")
        self.queue = queue if queue is not None else EventQueue()
        self.rate = 0
        self.period = 0
        self.written = 0  # callback-owned statistics
        self.thru_written = 0
        self.thru_lost = 0
        self.late = 0
        self.flushed = 0
        self._late_frames = np.zeros(LATENESS_KEPT, dtype=np.int64)
        self.server_gone = False
        self._linked = False  # our port is connected to the synth's (kept by JACK's notifications)
        self.generation = 0  # +1 for every client opened (a new server's frames start afresh)
        self._last_frame, self._last_mono = 0, time.monotonic()
        self._target = ""
        self._client: Any = None
        self._port: Any = None
        self._jack: Any = None

    # --- the process callback (JACK's real-time thread) ----------------------------------------
    def _process(self, frames: int) -> None:
        """Write every handed-over event due before the end of this period at its own offset, merged
        with what the controller played into the thru port during this period.

        Offsets only grow within a period (JACK refuses out-of-order events): an event whose frame
        has passed (handed over late) or that comes before the previous one goes out at the
        previous offset, and is counted late. A thru message goes out in the same period at the
        offset it came in at (or just after the event before it), whole: a sysex is one event,
        never split by the box's. No lock, no allocation beyond Python's small ints.
        """
        port = self._port
        port.clear_buffer()
        stage = self.stage
        stage.count = stage.used = 0
        thru_in = self._thru_in
        if thru_in is not None:
            thru = self.thru
            for offset, data in thru_in.incoming_midi_events():
                stage.offset = offset
                thru.feed(memoryview(data), stage.put)
        n_thru = stage.count
        q = self.queue
        head = q.head
        tail = q.tail
        if head >= tail and not n_thru:
            return
        flush_to = q.flush_to
        start = self._client.last_frame_time
        last = 0
        j = 0  # next staged thru message
        t_offsets = stage.offsets
        frames_arr, lengths, view, width, mask = q.frames, q.lengths, q.view, q.width, q.mask
        while head < tail:
            i = head & mask
            frame = int(frames_arr[i])
            if frame == NOW:
                offset = last
            elif head < flush_to:  # a panic took it back: only immediate messages stay
                self.flushed += 1
                head += 1
                continue
            else:
                offset = frame_delta(frame, start)
                if offset >= frames:
                    break  # due in a later period; everything behind it too
            while j < n_thru and t_offsets[j] <= offset:  # the controller played before it
                last = self._write_thru(port, j, last)
                j += 1
            if frame == NOW:
                offset = last
            elif offset < last:
                late = last - offset
                self._late_frames[self.late % LATENESS_KEPT] = late
                self.late += 1
                offset = last
            n = int(lengths[i])
            buf = port.reserve_midi_event(offset, n)
            if len(buf) == n:
                at = i * width
                buf[:] = view[at : at + n]
                self.written += 1
            last = offset
            head += 1
        q.head = head
        while j < n_thru:
            last = self._write_thru(port, j, last)
            j += 1

    def _write_thru(self, port: Any, j: int, last: int) -> int:
        """Staged thru message ``j`` out at its offset (not before ``last``); the offset used."""
        stage = self.stage
        offset = max(last, int(stage.offsets[j]))
        n = int(stage.lengths[j])
        at = int(stage.starts[j])
        buf = port.reserve_midi_event(offset, n)
        if len(buf) == n:
            buf[:] = stage.view[at : at + n]
            self.thru_written += 1
        else:
            self.thru_lost += 1  # the port's buffer is full this period
        return offset

    def _connection_changed(self, a: Any, b: Any, connect: bool) -> None:
        """JACK's notification thread: our port got or lost its connection to the synth (a flag
        only: :meth:`present` must not call into a client whose server may have just died)."""
        names = {a.name, b.name}
        if self._target in names and self._port is not None and self._port.name in names:
            self._linked = connect
        if self._thru_source in names and self._thru_in is not None and self._thru_in.name in names:
            self._thru_linked = connect

    def _shutdown(self, status: Any, reason: str) -> None:
        self.server_gone = True  # the server went away: only a flag, no client call is allowed here

    # --- MidiOutput ---------------------------------------------------------------------------
    def open(self) -> None:
        """Open the client (unless open) and connect to the synth's port. When that port is not
        there the client stays open, unlinked, and DeviceError says so: :meth:`reopen` only looks
        for the port again (a new JACK client per retry would re-sort the graph every 1.5 s)."""
        if self._client is None:
            jack_owner.opening(self._open)
        if not self.virtual:
            self._connect()

    def _open(self) -> None:
        jack = self._jack = _jack()
        try:
            client = jack.Client(self.client_name, no_start_server=True)
        except jack.JackError as err:
            raise DeviceError("no JACK server is running for MIDI (start jackd, or set midi.backend: alsa)") from err
        try:
            self.rate = int(client.samplerate)
            self.period = int(client.blocksize)
            self._port = client.midi_outports.register("out")
            self._thru_in = client.midi_inports.register("thru_in") if self.thru is not None else None
            self._thru_linked = False
            q = self.queue
            q.head = q.flush_to = q.tail  # nothing handed to a previous client carries over
            self.server_gone = False
            self.generation += 1
            self._client = client
            jack_owner.track(self)
            client.set_process_callback(self._process)
            client.set_shutdown_callback(self._shutdown)
            client.set_port_connect_callback(self._connection_changed)
            self._linked = False
            client.activate()
            if self._thru_in is not None:
                try:
                    self._connect_thru()  # already on the owner thread
                except DeviceError as err:  # the controller may come later: MidiThru retries
                    log.debug("MIDI thru: %s", err)
        except BaseException:
            self._client = None
            jack_owner.forget(self)
            client.close()
            raise

    def _inputs(self) -> list[str]:
        return [p.name for p in self._client.get_ports(is_midi=True, is_input=True)]

    def _connect(self) -> None:
        _, raw = choose_port(self._inputs(), self.want, what="output", key=self.key, client_name=self.client_name)
        own = self._port.name
        try:
            if raw not in {p.name for p in self._client.get_all_connections(self._port)}:
                self._client.connect(own, raw)
        except self._jack.JackError as err:
            raise DeviceError(f"cannot connect {own} to {raw}: {err}") from err
        self._target = raw
        self._linked = True
        self.name = display_name(raw)

    def connect_thru(self) -> None:
        """Connect the controller's MIDI output (``midi.thru_port``) to our thru port; DeviceError
        while it is missing. From any thread: it runs on the JACK owner thread, so it never meets
        the client being closed or replaced (after a JACK restart) half-way."""
        on_jack_thread(self._connect_thru)

    def _connect_thru(self) -> None:
        client = self._client
        if client is None or self.server_gone or self._thru_in is None:
            raise DeviceError("no JACK server is running for MIDI thru")
        sources = [p.name for p in client.get_ports(is_midi=True, is_output=True)]
        _, raw = choose_port(sources, self.thru_want, what="input", key="midi.thru_port",
                             client_name=self.client_name)
        own = self._thru_in.name
        try:
            if raw not in {p.name for p in client.get_all_connections(self._thru_in)}:
                client.connect(raw, own)
        except self._jack.JackError as err:
            raise DeviceError(f"cannot connect {raw} to {own}: {err}") from err
        self._thru_source = raw
        self._thru_linked = True
        self.thru_name = display_name(raw)

    def thru_present(self) -> bool:
        """The controller's port is connected to our thru port (kept by JACK's notifications)."""
        return self._client is not None and not self.server_gone and self._thru_linked

    def present(self) -> bool:
        if self._client is None or self.server_gone:
            return False
        return self.virtual or self._linked

    def send(self, message: bytes) -> None:
        """Out at the start of the next period, after whatever was handed over before it."""
        if not self.queue.push(NOW, message):
            raise DeviceError("JACK MIDI queue full")

    def schedule(self, frame: int, message: bytes) -> bool:
        """Hand ``message`` to the callback for JACK ``frame``; False when the queue refused it."""
        return self.queue.push(frame, message)

    def flush(self) -> None:
        self.queue.flush()

    def reopen(self) -> None:
        if self.server_gone:  # the client died with its server: a new one, once a server is back
            self.close()
        self.open()

    def dead(self) -> bool:
        """The server went away and the client is still open (see jack_owner)."""
        return self.server_gone and self._client is not None

    def release(self) -> None:
        """Close the dead client (owner thread)."""
        client, self._client = self._client, None
        jack_owner.forget(self)
        if client is not None:
            client.close()

    def close(self) -> None:
        """Let the callback write what is queued (the shutdown panic's note-offs), then close (a
        dead client too: it must be freed), on the JACK owner thread."""
        client = self._client
        if client is None:
            return
        if not self.server_gone and self.rate:
            period_s = self.period / self.rate
            deadline = time.monotonic() + 0.05 + 4 * period_s
            while self.queue.pending and time.monotonic() < deadline and not self.server_gone:
                time.sleep(0.002)
            time.sleep(period_s)  # the receiving client reads them in the same cycle
        self._client = None
        gone = self.server_gone

        def shut() -> None:
            jack_owner.forget(self)
            try:
                if not gone:
                    client.deactivate()
            except self._jack.JackError as err:
                log.debug("deactivating the JACK MIDI client: %s", err)
            finally:
                client.close()

        on_jack_thread(shut)

    # --- JACK's clock -------------------------------------------------------------------------
    def frame_now(self) -> int:
        """JACK's estimate of the current frame (any thread); without a client, the last one
        extrapolated (never a call into a closed client)."""
        client = self._client
        if client is None or self.server_gone:
            return (self._last_frame + int((time.monotonic() - self._last_mono) * (self.rate or 48000))) & (WRAP - 1)
        frame = int(client.frame_time)
        self._last_frame, self._last_mono = frame, time.monotonic()
        return frame

    def lateness_frames(self) -> np.ndarray:
        """Frames each late event was written after its due frame (the last ``LATENESS_KEPT``)."""
        return self._late_frames[: min(self.late, LATENESS_KEPT)].copy()


class WallFrames:
    """``clock()`` seconds -> JACK frames, for a schedule kept on the wall clock.

    JACK's current-frame estimate (``frame_time``) read between two clock reads gives one
    ``(wall, frame)`` sample. A driver woken late scatters single samples by up to a millisecond,
    and its frames need not pass at exactly the nominal rate against the CPU's clock (a sound
    card's crystal, or the dummy driver on a busy machine, runs 0.1-0.3 % off), so the map is a
    straight line fitted to the last ``keep`` samples (one at most every ``every_s``: ~0.6 s).
    """

    def __init__(self, read_frame: Callable[[], int], rate: int, *, clock: Callable[[], float] = time.monotonic,
                 keep: int = 64, every_s: float = 0.01) -> None:
        self._read = read_frame
        self.rate = rate
        self._clock = clock
        self.every_s = every_s
        self._walls = np.zeros(keep)
        self._frames = np.zeros(keep)
        self._n = 0
        self._ref: tuple[float, int] | None = None  # samples relative to the first (32-bit wrap)
        self._last = -np.inf
        self._slope = float(rate)
        self._intercept = 0.0

    def _sample(self) -> None:
        before = self._clock()
        frame = self._read()
        after = self._clock()
        if after - before > 0.0005:  # preempted between the reads: not a sample
            return
        wall = 0.5 * (before + after)
        if self._ref is None:
            self._ref = (wall, frame)
        i = self._n % self._walls.size
        self._walls[i] = wall - self._ref[0]
        self._frames[i] = frame_delta(frame, self._ref[1])
        self._n += 1
        n = min(self._n, self._walls.size)
        w, f = self._walls[:n], self._frames[:n]
        if n >= 8 and float(w.max() - w.min()) >= 0.1:
            self._slope, self._intercept = (float(v) for v in np.polyfit(w - w.mean(), f, 1))
            self._intercept -= self._slope * float(w.mean())
        else:  # too few samples for a slope yet: the nominal rate
            self._slope = float(self.rate)
            self._intercept = float(np.median(f - self.rate * w))
        self._last = after

    def frame_at(self, wall: float) -> int:
        if self._clock() - self._last >= self.every_s or self._ref is None:
            self._sample()
        if self._ref is None:
            return int(round(self._read() + (wall - self._clock()) * self.rate)) & (WRAP - 1)
        rel = self._intercept + self._slope * (wall - self._ref[0])
        return (self._ref[1] + int(round(rel))) & (WRAP - 1)


class JackTimeline:
    """The :class:`~kelly_edge.midi.rtmidi_sink.ScheduledSink`'s clock for a :class:`JackMidiOutput`.

    ``due(t)`` is the JACK frame of audio second ``t`` plus ``latency_s``: from the capture's frame
    anchor when one is followed, else through the wall clock (``to_wall``). An event is handed over
    ``lead`` frames before it (one period plus ``margin_s``), counted on JACK's frame clock.
    """

    kind = "jack"
    CONFIRM = 3

    def __init__(self, output: JackMidiOutput, *, to_wall: Callable[[float], float], latency_s: float,
                 margin_s: float = 0.010, clock: Callable[[], float] = time.monotonic) -> None:
        self.output = output
        self._to_wall = to_wall
        self.latency_s = float(latency_s)
        self.margin_s = margin_s
        self._clock = clock
        self._anchor: tuple[float, int] | None = None  # (audio second of ring frame 0, its JACK frame)
        self._candidate: tuple[float, int] | None = None  # a changed anchor not yet confirmed
        self._seen = 0
        self.shifts = 0  # lasting anchor changes within a capture session (periods the capture missed)
        self._wall = WallFrames(output.frame_now, output.rate, clock=clock)
        self._generation = output.generation

    def follow(self, base_t: float, anchor: int | None) -> None:
        """The capture's ring frame 0 is audio second ``base_t`` and JACK frame ``anchor`` (None:
        the capture is not on this server's timeline, or is gone: schedule through the wall clock).

        A changed anchor is taken only once ``CONFIRM`` hops in a row report it: a capture callback
        that runs late (after the next period began) reads the next period's start and reports an
        anchor one period off for that one hop, which would move every event planned then by 10 ms.
        A lasting change within one capture session means the capture missed a period (the audio
        timeline fell a period behind JACK's): the schedule follows it, so notes stay with the
        music, and the step is counted in ``shifts``.
        """
        if anchor is None:
            self._anchor = None
            self._candidate, self._seen = None, 0
            return
        new = (base_t, int(anchor))
        if self._anchor is None or new == self._anchor:
            self._anchor = new
            self._candidate, self._seen = None, 0
            return
        if new == self._candidate:
            self._seen += 1
        else:
            self._candidate, self._seen = new, 1
        if self._seen >= self.CONFIRM:
            if new[0] == self._anchor[0]:  # the same capture session lost (or gained) audio
                self.shifts += 1
            self._anchor = new
            self._candidate, self._seen = None, 0

    @property
    def late(self) -> int:
        """Events the callback wrote after their frame."""
        return self.output.late

    @property
    def anchored(self) -> bool:
        return self._anchor is not None

    def due(self, t: float) -> int:
        out = self.output
        if out.generation != self._generation:  # a new client on a new server: its own frames
            self._generation = out.generation
            self._anchor = self._candidate = None
            self._wall = WallFrames(out.frame_now, out.rate, clock=self._clock)
        anchor = self._anchor
        if anchor is not None:
            return (anchor[1] + int(round((t - anchor[0] + self.latency_s) * out.rate))) & (WRAP - 1)
        return self._wall.frame_at(self._to_wall(t) + self.latency_s)

    def wait_s(self, due: int) -> float:
        out = self.output
        lead = out.period + self.margin_s * out.rate
        return (frame_delta(due, out.frame_now()) - lead) / out.rate

    def now(self) -> int:
        return self.output.frame_now()

    def deliver(self, due: int, message: bytes) -> bool:
        return self.output.schedule(due, message)

    def flush(self) -> None:
        self.output.flush()

    def seconds(self, frame: int) -> float:
        """A frame as seconds on JACK's frame clock (for traces: frame / rate)."""
        return frame / self.output.rate

    def wall_of(self, due: int) -> float:
        """Roughly when frame ``due`` passes, on ``clock()`` (for the first-note latency figure)."""
        out = self.output
        before = self._clock()
        now = out.frame_now()
        return before + frame_delta(due, now) / out.rate

    def lateness_ms(self) -> dict[str, float]:
        """How late events were written after their frame, ms (0 when all were on time)."""
        out = self.output
        late = out.lateness_frames()
        count = out.written
        if late.size == 0:
            return {"p50": 0.0, "p99": 0.0, "max": 0.0, "count": count}
        ms = np.zeros(max(count, late.size))
        ms[: late.size] = late * 1000.0 / out.rate
        p50, p99 = np.percentile(ms, [50, 99])
        return {"p50": round(float(p50), 3), "p99": round(float(p99), 3), "max": round(float(ms.max()), 3),
                "count": count}
