"""The box as systemd runs it, through the real CLI wiring: READY/WATCHDOG on a fake NOTIFY_SOCKET,
status over the socket, SIGHUP with a good and then a bad config, SIGTERM with every note off.

A recording stands in for the audio interface (``run --input X --realtime``) and a .mid file for
the MIDI port, so this runs on a machine with neither.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mido

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "kelly_edge" / "data" / "demo.wav"


def _status(sock: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "kelly_edge", "status", "--json", "--socket", str(sock)],
        capture_output=True, text=True, timeout=30, env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _wait_for(predicate, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_notify_status_reload_and_clean_stop(tmp_path: Path) -> None:
    notify_path = tmp_path / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(0.2)
    cfg = tmp_path / "box.yaml"
    cfg.write_text("tempo: {bpm: 100}\nemotion: {intent: serenity}\n")
    status_sock, mid = tmp_path / "status.sock", tmp_path / "out.mid"
    env = dict(os.environ, PYTHONPATH=str(REPO), NOTIFY_SOCKET=str(notify_path), WATCHDOG_USEC="2000000")
    box = subprocess.Popen(
        [sys.executable, "-m", "kelly_edge", "run", "--input", str(DEMO), "--realtime", "--midi-out", str(mid),
         "--config", str(cfg), "--status-socket", str(status_sock), "--duration", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    messages: list[str] = []

    def read_notify() -> None:
        try:
            while True:
                messages.append(notify.recv(4096).decode())
        except (socket.timeout, BlockingIOError):
            pass

    try:
        _wait_for(lambda: (read_notify(), any("READY=1" in m for m in messages))[1])
        _wait_for(lambda: (read_notify(), sum("WATCHDOG=1" in m for m in messages) >= 2)[1])  # fed while playing
        _wait_for(status_sock.exists)
        snap = _status(status_sock)
        assert snap["emotion"]["intent"] == "serenity" and snap["key"]

        cfg.write_text("tempo: {bpm: 100}\nemotion: {intent: ecstasy}\n")  # a good new file
        box.send_signal(signal.SIGHUP)
        _wait_for(lambda: _status(status_sock)["emotion"]["intent"] == "ecstasy")
        read_notify()
        assert any("RELOADING=1" in m for m in messages)

        cfg.write_text("tempo: {bpm: 100}\nemotion: {intent: ecstasy}\ngenerator: {melody: {channel: 17}}\n")
        box.send_signal(signal.SIGHUP)  # a bad file: logged once, the box plays on with the last good one
        time.sleep(1.0)
        assert box.poll() is None
        assert _status(status_sock)["emotion"]["intent"] == "ecstasy"
        box.send_signal(signal.SIGTERM)
        out, err = box.communicate(timeout=30)
    finally:
        if box.poll() is None:
            box.kill()
        notify.close()
    assert box.returncode == 0, err
    assert "Traceback" not in err
    assert err.count("generator.melody.channel must be 1-16, got 17") == 1
    sounding: set[tuple[int, int]] = set()
    ons = 0
    for msg in mido.MidiFile(mid):
        if msg.type == "note_on" and msg.velocity > 0:
            sounding.add((msg.channel, msg.note))
            ons += 1
        elif msg.type in ("note_off", "note_on"):
            sounding.discard((msg.channel, msg.note))
    assert ons > 3 and not sounding  # it played, and SIGTERM left nothing sounding
