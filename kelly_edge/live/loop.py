"""The live loop: a processing thread that turns captured hops into scheduled MIDI, and a supervisor.

Threads and who owns what:

* the **audio callback** (PortAudio / JACK) only copies into the :class:`FrameRing`;
* the **processing thread** owns the engine: it reads one hop at a time from the ring, runs
  ``Engine.process_hop`` (which polls the tempo source, as offline), takes its transport, advances the generator and the MIDI clock a
  short *look-ahead* past the audio just heard (so the sink receives events before they are due),
  and keeps the audio->wall :class:`TimeMap` from the ring's stamps. Requests from other threads
  (panic, a config or model re-load) reach it through a deque and run between hops;
* the **MIDI sender** (inside :class:`~kelly_edge.midi.rtmidi_sink.ScheduledSink`) emits each
  event at its wall time; its watchdog handles the MIDI port going and coming;
* **MIDI thru** (optional, :class:`~kelly_edge.midi.thru.MidiThru`): the controller's messages
  pass on python-rtmidi's input thread, or inside the JACK MIDI callback; its watchdog follows the
  controller being unplugged; the shutdown closes it first, so the last panic releases its notes;
* the **supervisor** (the thread that calls :meth:`LiveLoop.run`, the main thread in the CLI)
  reopens a lost audio device every ``retry_s``, lets the capture repair connections, logs the
  status line, and runs the shutdown in a fixed order.

When the audio input disappears (the callback stops delivering, or the backend says the device
died), one line is logged, everything is silenced, and the processing thread keeps the timeline
going on silent hops paced by the wall clock, so the MIDI clock out stays steady and the grid
does not jump; when the device is back, capture resumes on the same timeline.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from kelly_edge.audio.capture import AudioCapture
from kelly_edge.audio.ring import FrameRing
from kelly_edge.errors import DeviceError
from kelly_edge.live import rt
from kelly_edge.live.calibration import CLIP_PEAK
from kelly_edge.live.timemap import TimeMap
from kelly_edge.midi import messages as mm
from kelly_edge.midi.clock_out import ClockOut
from kelly_edge.midi.notes import ActiveNotes
from kelly_edge.midi.router import MidiRouter
from kelly_edge.midi.sinks import MidiSink
from kelly_edge.tempo.source import TempoSource

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
CLOSE_TIMEOUT_S = 3.0


class NoteGate:
    """A sink wrapper that drops note-ons while ``stopped`` (MIDI clock Stop); everything else passes."""

    def __init__(self, sink: MidiSink) -> None:
        self.sink = sink
        self.stopped = False

    def send(self, t: float, message: bytes) -> None:
        if self.stopped and mm.is_note_on(message):
            return
        self.sink.send(t, message)

    def set_tempo(self, t: float, bpm: float) -> None:
        self.sink.set_tempo(t, bpm)

    def close(self) -> None:
        """The wrapped sink is closed by its owner (the live loop)."""


@dataclass
class LiveStats:
    """Counters for the status line and the run report."""

    hops: int = 0
    silent_fill_hops: int = 0  # hops made up while no audio device was there
    audio_losses: int = 0
    clipped_hops: int = 0
    skipped_frames: int = 0  # frames dropped to catch up after a stall
    first_sound_wall: float | None = None  # wall time the first hop above the gate was captured
    tempo_changes: int = 0


class LiveLoop:
    """Runs the box until a stop event; see the module docstring.

    ``follow_frames(base_t, anchor)`` (optional) is told after every captured hop which JACK frame
    the ring's frame 0 (audio second ``base_t``) is, when the capture knows (``frame_anchor``).
    ``sink`` is the scheduled live sink (``send``, ``panic``, ``send_now``, ``close``); the engine
    was built on ``sink`` or on a :class:`NoteGate` around it (pass it as ``gate``).
    ``setup_on_first_hop``: the sink was started with ``setup_now=False``; the loop queues its
    setup (bank/program) on the first hop, after the start-up notes-off.
    ``open_capture(ring)`` opens (not starts) the audio input again after a loss; it raises
    DeviceError while the device is missing. ``capture`` is the already-opened first input (None:
    start without audio and keep retrying).
    """

    def __init__(
        self,
        engine: Any,
        sink: Any,
        *,
        ring: FrameRing,
        capture: AudioCapture | None,
        open_capture: Callable[[FrameRing], AudioCapture],
        tempo: TempoSource,
        time_map: TimeMap,
        clock_out: ClockOut | None = None,
        gate: NoteGate | None = None,
        lookahead_s: float = 0.03,
        retry_s: float = 1.5,
        stall_s: float = 1.0,
        status_every_s: float = 10.0,
        realtime_priority: int = 0,
        calibrated: bool = False,
        clock: Callable[[], float] = time.monotonic,
        follow_frames: Callable[[float, int | None], None] | None = None,
        setup_on_first_hop: bool = False,
        thru: Any = None,
    ) -> None:
        self.engine = engine
        self.sink = sink
        self.ring = ring
        self._open_capture = open_capture
        self.tempo = tempo
        self.time_map = time_map
        self.clock_out = clock_out
        self.gate = gate
        self.lookahead_s = lookahead_s
        self.retry_s = retry_s
        self.stall_s = stall_s
        self.status_every_s = status_every_s
        self.realtime_priority = realtime_priority
        self.calibrated = calibrated
        self._clock = clock
        self._follow_frames = follow_frames  # the JACK MIDI timeline follows the capture's frame anchor
        self.thru = thru  # MIDI thru (kelly_edge.midi.thru.MidiThru): closed before the last panic
        self.stats = LiveStats()
        self.setup_on_first_hop = setup_on_first_hop  # the sink was started without its setup (see ScheduledSink.send_setup)
        self.on_hop: list[Callable[[], None]] = []  # run on the processing thread after each hop
        self.error: BaseException | None = None
        self.capture_name = capture.name if capture is not None else ""

        # Nothing has been heard yet: start with the silence gate closed, as if the input had been
        # silent for the whole tail, so the box does not play into the room before the musician does.
        engine.ctx.silent_for_s = float(engine.config.audio.silence_tail_s)
        hop = engine.hop_length
        self._hop_s = hop / engine.sample_rate
        self._buf = np.zeros(hop, dtype=np.float32)
        self._zeros = np.zeros(hop, dtype=np.float32)
        self._abs = np.zeros(hop, dtype=np.float32)
        self._requests: collections.deque[Callable[[], None]] = collections.deque()
        self._stop_proc = threading.Event()
        self._done = threading.Event()
        # capture session state: the supervisor hands a started capture over, the processing
        # thread adopts it; the processing thread reports a loss, the supervisor closes it.
        self._capture: AudioCapture | None = None
        self._handoff: AudioCapture | None = None
        self._lost: AudioCapture | None = None
        self._dead: AudioCapture | None = None  # the supervisor saw the backend declare it dead
        self._frame_base_t = 0.0
        self._last_data_wall = 0.0
        self._first_capture = capture
        self._clipped_window = 0
        self._overflows_window = 0
        self._cleared = False  # the start-up clearing (see _step) has gone out
        generator = engine.config.generator
        channels = sorted({int(v.channel) - 1 for v in (generator.melody, generator.chord, generator.bass)})
        self._clearing = ActiveNotes().panic_messages(channels)  # CC123, CC120, CC64 0 on each

    # --- requests from other threads (footswitches, control) ---------------------------------
    def request(self, action: Callable[[], None]) -> None:
        """Run ``action`` on the processing thread between two hops."""
        self._requests.append(action)

    def panic(self) -> None:
        """Everything off now (from any thread): note-offs, CC123/CC120/CC64 0 on every channel used,
        and the notes a player holds through MIDI thru."""
        self.sink.panic()
        self.request(self._panic_engine)

    def _panic_engine(self) -> None:
        """The box's own notes off (audio lost, a clock Stop, a failed control action): a keyboard
        player's notes through thru keep sounding."""
        self.engine.panic()
        self.sink.panic(players=False)

    # --- the processing thread -----------------------------------------------------------------
    def _adopt(self, capture: AudioCapture) -> None:
        """Make a started capture the source of hops, continuing the current timeline."""
        ring = self.ring
        skipped = ring.skip_to_latest(0)
        self.stats.skipped_frames += skipped
        self._frame_base_t = self.engine.time_s - ring.frames_read / self.engine.sample_rate
        self.time_map.rebase()
        self._capture = capture
        self._last_data_wall = self._clock()

    def _process(self) -> None:
        rt.realtime_thread(self.realtime_priority)
        clock = self._clock
        ring = self.ring
        buf = self._buf
        sr = float(self.engine.sample_rate)
        try:
            while not self._stop_proc.is_set():
                while self._requests:
                    self._run_request(self._requests.popleft())
                handoff = self._handoff
                if handoff is not None:
                    self._handoff = None
                    self._adopt(handoff)
                capture = self._capture
                if capture is not None:
                    if ring.read_mono(buf):
                        frames, wall = ring.stamp
                        self.time_map.observe(self._frame_base_t + frames / sr, wall)
                        if self._follow_frames is not None:
                            self._follow_frames(self._frame_base_t, getattr(capture, "frame_anchor", None))
                        self._last_data_wall = clock()
                        self._step(buf, captured=True)
                        continue
                    ring.wait(0.02)
                    if ring.available() < buf.shape[0] and (
                        clock() - self._last_data_wall > self.stall_s or self._dead is capture
                    ):
                        self._capture = None
                        self._lost = capture
                        if self._follow_frames is not None:
                            self._follow_frames(0.0, None)  # silent fill runs on the wall clock
                        self.stats.audio_losses += 1
                        # the silence gate closes at once: no chord is struck again into the gap
                        self.engine.ctx.silent_for_s = float(self.engine.config.audio.silence_tail_s)
                        self._panic_engine()
                    continue
                # no audio device: silent hops at the pace of the wall clock, same timeline
                due = self.time_map.to_wall(self.engine.time_s + self._hop_s)
                delay = due - clock()
                if delay > 0.0:
                    self._stop_proc.wait(min(delay, 0.05))
                    continue
                self.stats.silent_fill_hops += 1
                self._step(self._zeros, captured=False)
        except BaseException as err:  # keep the box safe: silence, report, stop
            self.error = err
            try:
                self.sink.panic()
            except Exception:
                pass
        finally:
            self._done.set()

    def _run_request(self, action: Callable[[], None]) -> None:
        """A control action must not stop the box: a failing one is logged and everything silenced."""
        try:
            action()
        except Exception as err:
            log.error("control action failed: %s: %s", type(err).__name__, err)
            self._panic_engine()

    def _step(self, hop: np.ndarray, *, captured: bool) -> None:
        engine = self.engine
        if captured:
            np.abs(hop, out=self._abs)
            if self._abs.max() >= CLIP_PEAK:
                self.stats.clipped_hops += 1
        engine.process_hop(hop)
        self.stats.hops += 1
        t = engine.time_s
        ctx = engine.ctx
        if captured and self.stats.first_sound_wall is None and not ctx.silent:
            self.stats.first_sound_wall = self.time_map.to_wall(t - self._hop_s)
        self.stats.tempo_changes = engine.tempo_changes  # the engine polls the tempo source every hop
        event = self.tempo.transport()
        if event is not None:
            self._transport(event)
        if not self._cleared:
            # a box killed by SIGKILL, SIGABRT (systemd's watchdog) or the OOM killer left its notes
            # sounding on the synth: clear every channel this box will use before any note and
            # before Start; on the first hop, not at start-up, because by then the input runs and
            # a JACK port is connected (what is written while the graph is re-sorted can be lost)
            self._cleared = True
            for message in self._clearing:
                self.sink.send(t, message)
            if self.setup_on_first_hop:  # then each synth's bank and program
                self.sink.send_setup(t)
        ahead = min(self.lookahead_s, max(0.0, 0.4 * engine.grid.step_s - self._hop_s))
        if self.clock_out is not None and not self.clock_out.started:
            # Start once the first hop is in: by then the input is running (a JACK client activated
            # and connected: a Start written while the graph is re-sorted can be lost) and the
            # message can be handed over ahead of its time
            self.clock_out.start(t)
        engine.generator.advance(t + ahead)
        if self.clock_out is not None:
            self.clock_out.advance(t, t + ahead)
        for hook in self.on_hop:  # footswitches/LEDs, watchdog, status: cheap and rate-limited
            hook()

    def _transport(self, event: str) -> None:
        if event == "start":  # MIDI Start: the song (and so a bar) begins now
            self.engine.restart_bar()
        if self.gate is None:
            return
        if event == "stop":
            self.gate.stopped = True
            self._panic_engine()
        else:
            self.gate.stopped = False

    # --- the supervisor ------------------------------------------------------------------------
    def run(self, stop: threading.Event, *, duration_s: float | None = None) -> int:
        """Run until ``stop`` is set (a signal) or ``duration_s`` of wall time passed; then shut down
        in order: processing thread, engine (note-offs), clock Stop, panic, MIDI port, capture."""
        clock = self._clock
        started = clock()
        next_retry = started
        next_maintain = started + self.retry_s
        next_status = started + self.status_every_s
        waiting_logged = ""
        first = self._first_capture
        self._first_capture = None
        if first is not None:
            self._start_capture(first)
        else:
            log.warning("no audio input yet; retrying every %.1f s", self.retry_s)
        proc = threading.Thread(target=self._process, name="kelly-processing", daemon=True)
        proc.start()
        try:
            while not stop.wait(0.1):
                now = clock()
                if duration_s is not None and now - started >= duration_s:
                    break
                if self._done.is_set():
                    break
                lost = self._lost
                if lost is not None:
                    self._lost = None
                    log.warning("audio input %r lost; retrying every %.1f s", lost.name, self.retry_s)
                    self._close_capture(lost)
                    next_retry = now + self.retry_s
                if self._capture is None and self._handoff is None and now >= next_retry:
                    next_retry = now + self.retry_s
                    try:
                        reopened = self._open_capture(self.ring)
                        self._start_capture(reopened)
                    except DeviceError as err:
                        if str(err) != waiting_logged:
                            waiting_logged = str(err)
                            log.debug("audio input still missing: %s", err)
                    else:
                        waiting_logged = ""
                        log.warning("audio input %r is back", reopened.name)
                if now >= next_maintain:
                    next_maintain = now + self.retry_s
                    current = self._capture
                    if current is not None:
                        try:
                            if not current.alive:  # the backend says so: no need to wait for the stall
                                self._dead = current
                            else:
                                current.maintain()
                        except Exception as err:  # a repair attempt must not stop the box
                            log.debug("capture maintenance: %s", err)
                if now >= next_status:
                    next_status = now + self.status_every_s
                    self._log_status()
        finally:
            self._shutdown(proc)
        if self.error is not None:
            log.error("live processing failed: %s: %s", type(self.error).__name__, self.error)
            log.debug("processing failure", exc_info=self.error)
            return EXIT_FAILED
        return EXIT_OK

    def _start_capture(self, capture: AudioCapture) -> None:
        self.ring.reset()
        try:
            capture.start()
        except DeviceError:
            self._close_capture(capture)
            raise
        self.capture_name = capture.name
        self._handoff = capture

    def _close_capture(self, capture: AudioCapture) -> None:
        """Close an input, waiting at most CLOSE_TIMEOUT_S: a driver's stop/terminate can hang
        (PortAudio on JACK has, once in many runs), and neither the supervisor nor shutdown may."""

        def close() -> None:
            try:
                capture.close()
            except Exception as err:  # a vanished device may fail to close; it is gone either way
                log.debug("closing audio input: %s", err)

        closer = threading.Thread(target=close, name="kelly-capture-close", daemon=True)
        closer.start()
        closer.join(CLOSE_TIMEOUT_S)
        if closer.is_alive():
            log.warning("audio input %r did not close within %.0f s; leaving it to the OS", capture.name,
                        CLOSE_TIMEOUT_S)

    def _shutdown(self, proc: threading.Thread) -> None:
        if self.thru is not None:  # the player's notes stop passing; the sink's close releases them
            try:
                self.thru.close()
            except Exception as err:
                log.debug("closing MIDI thru: %s", err)
        self._stop_proc.set()
        proc.join(timeout=2.0)
        if not proc.is_alive():
            try:
                self.engine.close()  # the generator's own note-offs (queued, then superseded below)
            except Exception as err:
                log.debug("engine close: %s", err)
        if self.clock_out is not None and self.clock_out.running:
            self.sink.panic()  # drop the queued ticks before the Stop
            self.sink.send_now(self.clock_out.stop())
        self.sink.close()  # panics: note-offs, CC123/CC120/CC64 0 on every channel used
        for capture in (self._capture, self._handoff, self._lost):
            if capture is not None:
                self._close_capture(capture)
        self._capture = self._handoff = self._lost = None
        self.ring.close()
        try:
            self.tempo.close()
        except Exception as err:
            log.debug("closing tempo source: %s", err)

    # --- status --------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """A snapshot for the status line and the run report (read from any thread)."""
        engine = self.engine
        ctx = engine.ctx
        capture = self._capture
        sink = self.sink
        return {
            "audio_input": self.capture_name if capture is not None else None,
            "tempo_bpm": round(float(engine.grid.bpm), 2),
            "tempo_source": self.tempo.name,
            "key": ctx.key_name,
            "level_db": round(float(ctx.level_db), 1),
            "input_gain_db": round(float(ctx.input_gain_db), 2),
            "calibrated": self.calibrated,
            "clipped_hops": self.stats.clipped_hops,
            "overflows": capture.overflows if capture is not None else 0,  # reported by the backend
            "dropped_frames": self.ring.dropped_frames,  # the ring was full: processing fell behind
            "midi_output": sink.output.name,
            "midi_connected": bool(sink.connected),
            "midi_sent": sink.sent,
            "midi_late": sink.late,
            "midi_lateness_ms": sink.lateness_ms(),
            **_port_status(sink),
            "midi_thru": self.thru.status() if self.thru is not None else None,
        }

    def _log_status(self) -> None:
        s = self.status()
        clipped = self.stats.clipped_hops - self._clipped_window
        self._clipped_window = self.stats.clipped_hops
        total = s["overflows"] + s["dropped_frames"]
        overflows = total - self._overflows_window
        self._overflows_window = total
        if overflows > 0:
            log.warning("input overflows: %d (backend overflows + frames dropped) in the last %.0f s", overflows,
                        self.status_every_s)
        late = s["midi_lateness_ms"]
        log.info(
            "live: input %s, %s dBFS, gain %+.1f dB%s, tempo %.1f (%s), key %s, overflows %d, MIDI %s, "
            "%d sent, %d late (p99 %.2f ms)",
            repr(s["audio_input"]) if s["audio_input"] else "MISSING", s["level_db"], s["input_gain_db"],
            "" if self.calibrated else " (uncalibrated: run kelly-edge calibrate)", s["tempo_bpm"], s["tempo_source"],
            s["key"], s["overflows"], _ports_text(s), s["midi_sent"],
            s["midi_late"], late["p99"],
        )
        if clipped:
            log.warning("input clipping: %d hops in the last %.0f s (turn the interface gain down)", clipped,
                        self.status_every_s)


def _port_status(sink: Any) -> dict[str, Any]:
    """Each destination and each voice's port with its state, when the sink routes to several."""
    if not isinstance(sink, MidiRouter):
        return {}
    ports = sink.ports()
    return {"midi_ports": [p.as_dict() for p in ports],
            "midi_voices": {v: {"port": p.name, "state": p.state} for p in ports for v in p.voices}}


def _ports_text(s: dict[str, Any]) -> str:
    """The status line's MIDI part: ``'x' ok``, or ``'x' (bass) ok, 'y' (melody+chord) MISSING``."""
    ports = s.get("midi_ports") or []
    if len(ports) <= 1:
        return f"{s['midi_output']!r} {'ok' if s['midi_connected'] else 'MISSING'}"
    return ", ".join(f"{p['port']!r} ({'+'.join(p['voices']) or 'clock'}) {'ok' if p['state'] == 'connected' else 'MISSING'}"
                     for p in ports)
