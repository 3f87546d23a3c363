"""Entry points for the CLI: the live box (``run`` without ``--input``), ``devices``, ``calibrate``.

Start-up order for the live box, each step failing with one DeviceError line (exit code 2 from
the CLI) unless ``audio.wait_for_devices`` says to wait: audio input (opened, not started: this
checks the device and its rate), MIDI output, tempo source, engine (models), then real-time settings, and only then the
threads. Shutdown (SIGTERM, SIGINT, ``--duration``) runs in :meth:`LiveLoop.run`'s fixed order and
always ends with every note off.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Iterator, TypeVar

import numpy as np

from kelly_edge.audio.capture import AudioCapture, open_capture
from kelly_edge.audio.native_log import mute_native_errors
from kelly_edge.audio.ring import FrameRing
from kelly_edge.errors import DeviceError, KellyEdgeError
from kelly_edge.features.mel import hop_length_for
from kelly_edge.live import calibration, rt
from kelly_edge.live.devices import print_devices
from kelly_edge.live.loop import LiveLoop, NoteGate
from kelly_edge.live.timemap import TimeMap
from kelly_edge.midi.clock_out import ClockOut
from kelly_edge.midi.file_output import FileOutput
from kelly_edge.midi.jack_sink import JackMidiOutput, JackTimeline
from kelly_edge.midi.router import VOICES, MidiRouter, Route, open_router, plan_routes, playing_config
from kelly_edge.midi.rtmidi_sink import MidiOutput, RtMidiOutput, ScheduledSink
from kelly_edge.midi.thru import (
    JackThruInput, MidiThru, ThruFilter, ThruProcessor, as_bytes, rtmidi_thru_input, thru_target,
)
from kelly_edge.service.notify import Notifier
from kelly_edge.service.reload import ConfigWatcher
from kelly_edge.tempo.source import TempoSource, make_tempo_source

log = logging.getLogger(__name__)

RETRY_S = 1.5
SHUTDOWN_DEADLINE_S = 10.0  # below systemd's TimeoutStopSec=15 and the tests' 15 s
EXIT_STUCK = 1
RING_SECONDS = 2.0
CLIENT_NAME = "kelly-edge"
# midi.latency_ms when null: what each backend needs so that an event planned on the hop just
# heard still reaches the device ahead of its time (measured: README, live timing)
LATENCY_MS = {"jack": 2.0, "alsa": 5.0}

T = TypeVar("T")


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, on_hup_request: Callable[[], None] | None = None) -> Iterator[None]:
    """SIGTERM / SIGINT set ``stop`` (a clean shutdown, every note off); SIGHUP calls
    ``on_hup_request`` (which only sets a flag: the config is re-read on the watcher's thread).
    Only in the main thread; the previous handlers are restored after, except the default ones: a
    second SIGTERM or Ctrl-C while the box exits (after the report) must not kill it either."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_stop(signum: int, frame: Any) -> None:
        stop.set()

    def on_hup(signum: int, frame: Any) -> None:
        if on_hup_request is not None:
            on_hup_request()

    previous = {sig: signal.signal(sig, handler) for sig, handler in
                ((signal.SIGTERM, on_stop), (signal.SIGINT, on_stop), (signal.SIGHUP, on_hup))}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            if handler not in (signal.SIG_DFL, signal.default_int_handler):  # a default would kill the
                signal.signal(sig, handler)  # process on a second SIGTERM/Ctrl-C while it exits: keep ours


def open_or_wait(what: str, opener: Callable[[], T], *, wait: bool, stop: threading.Event, retry_s: float = RETRY_S) -> T | None:
    """``opener()``; on DeviceError re-raise, or with ``wait`` log the problem once and retry every
    ``retry_s`` until it works (None when ``stop`` is set first)."""
    logged = ""
    while True:
        try:
            return opener()
        except DeviceError as err:
            if not wait:
                raise
            if str(err) != logged:
                logged = str(err)
                log.warning("%s: %s; waiting for it (audio.wait_for_devices), retrying every %.1f s", what, err, retry_s)
        if stop.wait(retry_s):
            return None


class _Box:
    """Everything opened for a live run, closed in reverse on a start-up failure."""

    def __init__(self) -> None:
        self.router: MidiRouter | None = None
        self.capture: AudioCapture | None = None
        self.ring: FrameRing | None = None
        self.tempo: TempoSource | None = None

    def close(self) -> None:
        for thing in (self.tempo, self.capture, self.router, self.ring):
            if thing is not None:
                try:
                    thing.close()
                except Exception as err:
                    log.debug("closing %r: %s", thing, err)


def live_main(config: Any, args: Any) -> int:
    """The live stomp-box until SIGTERM/SIGINT (or ``args.duration`` seconds).

    ``args`` may carry ``duration`` (seconds, None = forever), ``report`` (a JSON run report path)
    and ``trace`` (include every MIDI message's due and sent times in the report). Raises
    KellyEdgeError (one line, exit 2) when a device is missing at start-up and
    ``audio.wait_for_devices`` is false. Returns 0 after a clean stop, 1 after a failure.
    """
    duration = getattr(args, "duration", None)
    report_path = getattr(args, "report", None)
    trace = bool(getattr(args, "trace", False))
    rehearsal = getattr(args, "input", None) if getattr(args, "realtime", False) else None
    midi_file = getattr(args, "midi_out", None)
    config_path = getattr(args, "config", None)
    from kelly_edge.fileio import check_writable

    for path in (report_path, midi_file):
        if path is not None:
            check_writable(path)
    mute_native_errors()
    rt.set_cpu_affinity(config.realtime.cpu_affinity)
    wait = bool(config.audio.wait_for_devices) and rehearsal is None
    stop = threading.Event()
    box = _Box()
    notifier = Notifier()
    watcher = ConfigWatcher(config_path, config, notifier=notifier) if config_path else None
    with stop_on_signals(stop, watcher.request_reload if watcher is not None else None):
        try:
            loop = _build(config, box, stop=stop, wait=wait, trace=trace, rehearsal=rehearsal, midi_file=midi_file)
            if loop is None:
                box.close()
                return 0
        except BaseException:
            box.close()
            raise
        extras = _attach_controls(loop, config, watcher, notifier, getattr(args, "status_socket", None), rehearsal)
        started = time.monotonic()
        try:
            notifier.ready(f"listening: {loop.capture_name}")
            code = loop.run(stop, duration_s=duration)
        finally:
            torn_down = _exit_deadline(SHUTDOWN_DEADLINE_S)  # notes are off by now; teardown must not hang
            notifier.stopping()
            extras.close()
        wall = time.monotonic() - started
        try:  # still inside the handlers: a second SIGTERM/Ctrl-C or a SIGHUP now cannot lose the report
            if report_path is not None:
                _write_report(report_path, loop, wall)
        finally:
            torn_down.set()
    return code


def _exit_deadline(seconds: float) -> threading.Event:
    """Last resort after the loop has stopped (notes off): if teardown has not finished within
    ``seconds`` — a driver or thread stuck — log it with every thread's stack and exit, rather than
    wait for systemd's SIGKILL with nothing in the journal. Set the returned event when done."""
    done = threading.Event()

    def expire() -> None:
        if done.wait(seconds):
            return
        log.error("shutdown did not finish within %.0f s; exiting (thread stacks follow)", seconds)
        faulthandler.dump_traceback(all_threads=True)
        os._exit(EXIT_STUCK)

    threading.Thread(target=expire, name="kelly-exit-deadline", daemon=True).start()
    return done


class _Extras:
    """The box's pedalboard side around a live loop: panel, reload watcher, status socket."""

    def __init__(self) -> None:
        self.closers: list[Callable[[], None]] = []

    def close(self) -> None:
        for close in reversed(self.closers):
            try:
                close()
            except Exception as err:  # shutdown goes on: every piece gets its chance to close
                log.debug("closing: %s", err)


def _attach_controls(
    loop: LiveLoop, config: Any, watcher: ConfigWatcher | None, notifier: Notifier, socket_path: str | None,
    rehearsal: str | None,
) -> _Extras:
    """Footswitches/LEDs, watchdog, config reload and the status socket, all fed on the processing
    thread between hops (``loop.on_hop``) or through ``loop.request`` from their own threads."""
    from kelly_edge.control.panel import ControlPanel
    from kelly_edge.status.server import StatusServer
    from kelly_edge.status.snapshot import build_snapshot, live_extras
    from kelly_edge.tempo.source import TapSource

    extras = _Extras()
    engine = loop.engine
    tap = loop.tempo.tap if isinstance(loop.tempo, TapSource) else None
    try:
        panel: ControlPanel | None = ControlPanel(engine, config, tap=tap, panic=loop.panic)
    except DeviceError as err:  # no GPIO: the box still plays, without its switches
        log.error("footswitches/LEDs unavailable: %s", err)
        panel = None
    if panel is not None:
        extras.closers.append(panel.close)  # every LED off on exit
        loop.on_hop.append(panel.tick)
    loop.on_hop.append(notifier.tick)  # a stalled processing thread stops feeding the watchdog
    if watcher is not None:
        def reloaded(old: Any, new: Any) -> None:
            if panel is not None:
                loop.request(lambda: panel.apply_config(new))

        def rejected(messages: list[str]) -> None:
            if panel is not None:
                loop.request(panel.flag_error)

        watcher.on_reload = reloaded
        watcher.on_reject = rejected
        watcher.on_request = _model_reload_hook(loop, config)
        watcher.start()
        extras.closers.append(watcher.stop)
    try:
        server: StatusServer | None = StatusServer(socket_path)
        server.start()
    except DeviceError as err:
        log.warning("status socket unavailable (%s); kelly-edge status will not see this box", err)
        server = None
    if server is not None:
        extras.closers.append(server.close)
        backend = "wav" if rehearsal else config.audio.backend

        def publish() -> None:
            if server.due(engine.time_s):
                last = None if loop.error is None else f"{type(loop.error).__name__}: {loop.error}"
                more = live_extras(loop.status(), backend=backend, sample_rate=engine.sample_rate, last_error=last)
                if rehearsal:
                    more["input_file"] = rehearsal
                server.publish(build_snapshot(engine, more))

        loop.on_hop.append(publish)
    return extras


def _model_reload_hook(loop: LiveLoop, config: Any) -> Callable[[], None]:
    """On SIGHUP (on the watcher's thread): re-load the model files that changed since start-up or
    the last SIGHUP, and swap them in on the processing thread; a bad file gives that model's fallback."""
    from kelly_edge.config.schema import models_dir
    from kelly_edge.models import spec
    from kelly_edge.models.reload import ModelReloader, swap_in

    reloader = ModelReloader(models_dir(config), {n for n in spec.MODEL_NAMES if config.models.get(n).enabled})

    def reload_models() -> None:
        loaded = reloader.changed()
        if loaded:
            loop.request(lambda: swap_in(loop.engine, loaded))

    return reload_models


def _build(
    config: Any, box: _Box, *, stop: threading.Event, wait: bool, trace: bool,
    rehearsal: str | None = None, midi_file: str | None = None,
) -> LiveLoop | None:
    """Open everything for a live run. ``rehearsal``: a WAV played in real time instead of the
    audio input; ``midi_file``: a .mid written with what would have been sent, instead of a port."""
    from kelly_edge.engine.engine import Engine

    audio = config.audio
    midi_api = config.midi.backend
    virtual = bool(config.midi.virtual)

    if rehearsal is not None:
        from kelly_edge.service.rehearsal import rehearsal_opener, wav_sample_rate

        sample_rate = wav_sample_rate(rehearsal)
        hop = hop_length_for(sample_rate)
        box.ring = ring = FrameRing(int(RING_SECONDS * sample_rate), channels=1)
        reopen = rehearsal_opener(rehearsal, frames_per_buffer=hop, on_end=stop.set)
    else:
        sample_rate = int(audio.sample_rate)
        hop = hop_length_for(sample_rate)
        box.ring = ring = FrameRing(int(RING_SECONDS * sample_rate), channels=int(audio.channels))

        def reopen(r: FrameRing) -> AudioCapture:
            return open_capture(audio, r, frames_per_buffer=hop, client_name=CLIENT_NAME)

    box.capture = open_or_wait("audio input", lambda: reopen(ring), wait=wait, stop=stop)
    if box.capture is None:
        return None
    log.info("audio input: %r (%s, %d Hz, %d ch)", box.capture.name, audio.backend, sample_rate, audio.channels)

    time_map = TimeMap(time.monotonic())
    thru_proc: ThruProcessor | None = None
    if config.midi.thru_port:
        if midi_file is not None:
            log.warning("midi.thru_port is not used with --midi-out (a file has no player to pass through)")
        else:
            thru_proc = ThruProcessor(ThruFilter.from_config(config.midi))
    thru_want = thru_target(config) if thru_proc is not None else None

    priority = int(config.realtime.priority)
    latency_ms = config.midi.latency_ms
    if latency_ms is None:
        latency_ms = LATENCY_MS["alsa" if midi_file is not None else midi_api]
    latency_s = float(latency_ms) / 1000.0
    routes = plan_routes(config, also=() if thru_want is None else (thru_want,))
    if midi_file is not None:  # one file takes every voice and the clock
        routes = [Route(want="", key="midi.port", voices=list(VOICES), clock=True, primary=True,
                        channels=sorted({ch for route in routes for ch in route.channels}),
                        setup=[m for route in routes for m in route.setup])]

    def make_output(route: Route) -> MidiOutput:
        if midi_file is not None:
            return FileOutput(midi_file, to_audio=time_map.to_audio, bpm=float(config.tempo.bpm))
        own_virtual = virtual and route.primary
        if midi_api == "jack":  # our own JACK port per synth, written at each event's frame
            suffix = "" if route.primary else f"-{route.label}"
            takes_thru = thru_want is not None and route.is_for(thru_want)
            return JackMidiOutput(port=route.want, virtual=own_virtual, client_name=f"{CLIENT_NAME}-midi{suffix}",
                                  key=route.key, thru=thru_proc if takes_thru else None,
                                  thru_port=config.midi.thru_port if takes_thru else "")
        return RtMidiOutput(port=route.want, api=midi_api, virtual=own_virtual, client_name=CLIENT_NAME, key=route.key)

    def make_sink(route: Route, output: MidiOutput, connected: bool) -> ScheduledSink:
        timeline: JackTimeline | None = None
        if isinstance(output, JackMidiOutput):
            timeline = JackTimeline(output, to_wall=time_map.to_wall, latency_s=latency_s)
        return ScheduledSink(
            output, to_wall=time_map.to_wall, latency_s=latency_s, channels=route.channels, retry_s=RETRY_S,
            trace=trace, thread_setup=lambda: rt.realtime_thread(priority), timeline=timeline, setup=route.setup,
            connected=connected, label="" if len(routes) == 1 else route.label,
        )

    sink = open_router(routes, make_output, make_sink, wait=wait, stop=stop, retry_s=RETRY_S)
    if sink is None:
        return None
    box.router = sink
    for port in sink.ports():
        if port.state != "connected":  # open_router said so, with the fix
            continue
        log.info("MIDI output: %r (%s)%s", port.name, "file" if midi_file else midi_api,
                 "" if len(routes) == 1 else f" for {'+'.join(port.voices) or 'the clock'}")
    box.tempo = tempo = make_tempo_source(config)
    # audio from a JACK capture on the same server: schedule MIDI on its frames outright
    follow = sink.follow if midi_api == "jack" and midi_file is None and audio.backend == "jack" and rehearsal is None else None
    gate = NoteGate(sink)
    # voices on one channel but different synths play on lanes of their own (the router puts them back)
    engine = Engine(config if midi_file is not None else playing_config(config), gate, sample_rate=sample_rate,
                    tempo=tempo)
    key = calibration.device_key(audio.backend, box.capture.name)
    cal = None if rehearsal is not None else calibration.load(config, key)  # a file is not an interface
    gain = float(audio.input_gain_db) + (cal.gain_db if cal is not None else 0.0)
    engine.ctx.set_input_gain_db(gain)
    if cal is None and rehearsal is None:
        log.warning("input %r is uncalibrated (run kelly-edge calibrate while playing); loudness cues may be off",
                    box.capture.name)
    clock_out = ClockOut(sink, engine.grid) if config.midi.clock_out else None
    thru = None if thru_want is None else _thru(config, thru_proc, sink.sink_for_port(thru_want))
    loop = LiveLoop(
        engine, sink, ring=ring, capture=box.capture, open_capture=reopen, tempo=tempo, time_map=time_map,
        clock_out=clock_out, gate=gate, retry_s=RETRY_S, realtime_priority=priority, calibrated=cal is not None,
        follow_frames=follow, setup_on_first_hop=True,  # bank/program once the JACK ports are settled
        thru=thru,
    )
    if thru is not None and thru.voice is not None:
        voice, generator = thru.voice, engine.generator
        loop.on_hop.append(lambda: thru.follow_voice(generator.voice_enabled(voice)))
    box.capture = None  # the loop owns them now
    box.router = None
    box.tempo = None
    time_map.offset = time.monotonic()  # audio time 0 is now
    sink.start(setup_now=False)
    if thru is not None:
        thru.start()
    rt.settle_after_startup()
    log.info("live: listening (tempo %.1f BPM from %s); SIGTERM or Ctrl-C stops with every note off",
             engine.grid.bpm, tempo.name)
    return loop


def _thru(config: Any, processor: ThruProcessor | None, sink: ScheduledSink) -> MidiThru | None:
    """The run's MIDI thru (None when ``midi.thru_port`` is off): through the thru port of the JACK
    client of ``sink`` (the destination ``thru_target`` names) with ``midi.backend: jack``, else a
    python-rtmidi input whose messages join ``sink``."""
    if processor is None:
        return None
    output = sink.output
    voice = None if config.midi.thru_to == "port" else str(config.midi.thru_to)
    source: Any
    if isinstance(output, JackMidiOutput):
        source = JackThruInput(output)
    else:
        source = rtmidi_thru_input(processor, lambda message, status: sink.send_through(as_bytes(message, status)),
                                   port=config.midi.thru_port, api=config.midi.backend,
                                   client_name=f"{CLIENT_NAME}-thru")
    log.debug("MIDI thru %r -> output %r", config.midi.thru_port, output.name)
    return MidiThru(processor, source, sink, voice=voice, retry_s=RETRY_S)


def _write_report(path: str, loop: LiveLoop, wall_s: float) -> None:
    from kelly_edge.report import build_report, write_report

    engine = loop.engine
    report = build_report(engine, source={"live": loop.capture_name}, wall_s=wall_s)
    status = loop.status()
    sink = loop.sink
    first_latency = None
    if sink.first_note_on_wall is not None and loop.stats.first_sound_wall is not None:
        first_latency = round((sink.first_note_on_wall - loop.stats.first_sound_wall) * 1000.0, 2)
    report["live"] = {
        **status,
        "hops": loop.stats.hops,
        "silent_fill_hops": loop.stats.silent_fill_hops,
        "audio_losses": loop.stats.audio_losses,
        "midi_losses": sink.lost_count,
        "midi_dropped": sink.dropped,
        "tempo_changes": loop.stats.tempo_changes,
        "first_sound_to_first_note_ms": first_latency,
        "latency_ms": round(sink.latency_s * 1000.0, 3),
        # trace times: monotonic seconds ("wall"), or JACK frames / sample rate ("jack")
        "midi_timeline": sink.timeline.kind,
        "midi_timeline_shifts": int(getattr(sink.timeline, "shifts", 0)),  # JACK: periods the capture missed
        "error": None if loop.error is None else f"{type(loop.error).__name__}: {loop.error}",
    }
    if sink.trace is not None:
        report["live"]["trace"] = [[round(due, 6), round(sent, 6), msg.hex()] for due, sent, msg in sink.trace]
    write_report(path, report)


def devices_main(config: Any = None) -> int:
    """Print the audio inputs and MIDI ports as the config names them, and (with a config) the
    port each voice would play on; always 0."""
    print_devices(sys.stdout, config)
    return 0


def calibrate_main(config: Any, seconds: float) -> int:
    """Listen for ``seconds`` of playing on the configured input and store its gain (0 on success).

    Raises KellyEdgeError (one line) when the device is missing or only silence was heard.
    """
    if not 1.0 <= seconds <= 120.0:
        raise KellyEdgeError(f"calibration needs 1-120 seconds of playing, got {seconds:g}")
    mute_native_errors()
    audio = config.audio
    sample_rate = int(audio.sample_rate)
    hop = hop_length_for(sample_rate)
    n_hops = int(round(seconds * sample_rate / hop))
    levels = np.full(n_hops, -200.0)
    peaks = np.zeros(n_hops)
    buf = np.zeros(hop, dtype=np.float32)
    with FrameRing(int(RING_SECONDS * sample_rate), channels=int(audio.channels)) as ring:
        capture = open_capture(audio, ring, frames_per_buffer=hop, client_name=f"{CLIENT_NAME}-calibrate")
        try:
            capture.start()
            print(f"calibrating {capture.name!r}: play at a medium level for {seconds:g} s ...", file=sys.stderr)
            i = 0
            deadline = time.monotonic() + seconds + 3.0
            while i < n_hops and time.monotonic() < deadline:
                if ring.read_mono(buf):
                    ms = float(np.dot(buf, buf)) / hop
                    levels[i] = 10.0 * np.log10(ms) if ms > 0.0 else -200.0
                    peaks[i] = float(np.max(np.abs(buf)))
                    i += 1
                else:
                    ring.wait(0.05)
            name = capture.name
        finally:
            capture.close()
    if i < n_hops // 2:
        raise DeviceError(f"audio input {name!r} delivered only {i * hop / sample_rate:.1f} s of audio in {seconds:g} s")
    cal = calibration.measure(levels[:i], peaks[:i], hop_s=hop / sample_rate)
    path = calibration.store(config, calibration.device_key(audio.backend, name), cal)
    clip = f"; WARNING: {cal.clipped_hops} clipped hops, turn the interface gain down" if cal.clipped_hops else ""
    print(f"{name!r}: playing at {cal.median_db:.1f} dBFS (loud {cal.loud_db:.1f}, peak {cal.peak_dbfs:.1f}) -> "
          f"input gain {cal.gain_db:+.1f} dB, stored in {path}{clip}")
    return 0
