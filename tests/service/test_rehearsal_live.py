"""A rehearsal through the real live loop: a recording as the input, a footswitch stomped on a mock pin,
the config edited and SIGHUP sent mid-run, the watchdog fed from the processing loop.

The per-hop hook (panel tick + watchdog) and the reload hand-over are wired here the way the live
box wires them (see the report of issue 5): after every ``Engine.process_hop`` on the processing
thread, and through ``LiveLoop.request`` for a reloaded config.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from kelly_edge.audio.ring import FrameRing
from kelly_edge.audio.wav import WavReader, write_wav
from kelly_edge.config.loader import load_config
from kelly_edge.control.panel import ControlPanel
from kelly_edge.engine.engine import Engine
from kelly_edge.live.commands import stop_on_signals
from kelly_edge.live.loop import LiveLoop
from kelly_edge.live.timemap import TimeMap
from kelly_edge.midi import messages as mm
from kelly_edge.midi.rtmidi_sink import ScheduledSink
from kelly_edge.models.runner import load_all
from kelly_edge.service.notify import Notifier
from kelly_edge.service.rehearsal import rehearsal_opener
from kelly_edge.service.reload import ConfigWatcher
from kelly_edge.tempo.source import ConfigTempo

REPO = Path(__file__).resolve().parents[2]
SECONDS = 3.0

CONFIG = """\
tempo: {bpm: 100, source: config}
gpio: {backend: mock}
footswitches:
  melody: {pin: 17, press: toggle_melody}
leds:
  melody: 5
  tempo: 6
"""


class Output:
    """A MIDI output that keeps what it was sent."""

    name = "test synth"

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.lock = threading.Lock()

    def open(self) -> None:
        pass

    def present(self) -> bool:
        return True

    def send(self, message: bytes) -> None:
        with self.lock:
            self.sent.append(bytes(message))

    def reopen(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.skipif(os.name != "posix", reason="SIGHUP")
def test_a_rehearsal_behaves_like_the_live_box(tmp_path: Path) -> None:
    with WavReader(REPO / "kelly_edge" / "data" / "demo.wav") as reader:
        sr = reader.sample_rate
        audio = reader.read(int(SECONDS * sr))
    take = tmp_path / "take.wav"
    write_wav(take, audio, sr)
    config_path = tmp_path / "box.yaml"
    config_path.write_text(CONFIG)
    config = load_config(config_path)

    notify_path = tmp_path / "notify.sock"
    systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    systemd.bind(str(notify_path))
    systemd.settimeout(0.05)
    messages: list[str] = []
    listening = threading.Event()

    def listen() -> None:  # systemd reads its socket as messages come
        while not listening.is_set():
            try:
                messages.append(systemd.recv(4096).decode())
            except (socket.timeout, BlockingIOError):
                pass

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    notifier = Notifier(env={"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "500000"})

    factory = MockFactory()
    output = Output()
    time_map = TimeMap(time.monotonic())
    sink = ScheduledSink(output, to_wall=time_map.to_wall, latency_s=0.005, channels=(0, 1, 2))
    engine = Engine(config, sink, sample_rate=sr, models=load_all(None))
    panel = ControlPanel(engine, config, pin_factory=factory)
    hops_seen = []

    process_hop = engine.process_hop

    def hop_then_controls(hop: np.ndarray) -> None:  # what the live loop's per-hop hook does
        process_hop(hop)
        panel.tick()
        notifier.tick()
        hops_seen.append(engine.time_s)

    engine.process_hop = hop_then_controls  # type: ignore[method-assign]
    stop = threading.Event()
    ring = FrameRing(2 * sr)
    opener = rehearsal_opener(take, frames_per_buffer=engine.hop_length, on_end=stop.set)
    loop = LiveLoop(engine, sink, ring=ring, capture=opener(ring), open_capture=opener, tempo=ConfigTempo(),
                    time_map=time_map, retry_s=0.2, stall_s=0.5, status_every_s=10.0)
    watcher = ConfigWatcher(config_path, config, notifier=notifier,
                            on_reload=lambda old, new: loop.request(lambda: panel.apply_config(new)))
    watcher.start(interval_s=0.05)

    def player() -> None:  # stomps the melody switch, then edits the config over "SSH" and reloads
        time.sleep(0.8)
        factory.pin(17).drive_low()
        time.sleep(0.15)
        factory.pin(17).drive_high()
        time.sleep(0.3)
        config_path.write_text(CONFIG.replace("bpm: 100", "bpm: 120"))
        os.kill(os.getpid(), signal.SIGHUP)

    actor = threading.Thread(target=player, daemon=True)
    time_map.offset = time.monotonic()
    sink.start()
    notifier.ready()
    actor.start()
    try:
        with stop_on_signals(stop, watcher.request_reload):  # SIGHUP as the CLI routes it
            code = loop.run(stop, duration_s=SECONDS + 5.0)
    finally:
        watcher.stop()
        actor.join(timeout=5.0)
        panel.close()
        notifier.stopping()
    time.sleep(0.2)
    listening.set()
    listener.join(timeout=2.0)
    systemd.close()
    notifier.close()

    assert code == 0 and loop.error is None
    assert stop.is_set()  # the run ended with the recording
    assert engine.time_s >= SECONDS * 0.95
    assert panel.controls.state.active["melody"] is False  # the stomp reached the engine
    assert engine.grid.bpm == 120.0  # the edited config took effect without a restart
    assert watcher.reloads == 1
    assert not factory.pin(5).state and not factory.pin(6).state  # LEDs off on exit
    assert messages[0].startswith("READY=1")
    assert messages.count("WATCHDOG=1") >= 3  # fed from the processing loop all along
    assert any(m.startswith("RELOADING=1") for m in messages) and messages[-1].startswith("STOPPING=1")
    with output.lock:
        sent = list(output.sent)
    assert any(mm.is_note_on(m) for m in sent)
