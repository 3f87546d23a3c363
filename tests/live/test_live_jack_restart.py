"""A JACK server restart under the live MIDI output: the box's notes reach the synth again.

The server here is the test's own (not the session's ``jack_server``: it is killed mid-test), and
every JACK client lives in a subprocess (``jack_restart_peer.py``).
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

PEER = Path(__file__).with_name("jack_restart_peer.py")
REPO = Path(__file__).resolve().parents[2]


def _jackd(name: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r", "48000", "-p", "480"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    ready = subprocess.run(["jack_wait", "-w", "-t", "10"], capture_output=True, env=_env(name))
    assert ready.returncode == 0 and proc.poll() is None, "jackd did not start"
    return proc


def _env(name: str) -> dict[str, str]:
    return {**os.environ, "JACK_DEFAULT_SERVER": name, "JACK_NO_START_SERVER": "1", "PYTHONPATH": str(REPO)}


def _lines(stream: IO[str]) -> queue.Queue[str]:
    q: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [q.put(line.strip()) for line in stream], daemon=True).start()
    return q


def _wait_for(q: queue.Queue[str], want: str, count: int, timeout: float) -> int:
    """Read ``q`` until ``count`` lines starting with ``want`` arrived (returns how many did)."""
    got, end = 0, time.monotonic() + timeout
    while got < count and time.monotonic() < end:
        try:
            line = q.get(timeout=0.1)
        except queue.Empty:
            continue
        got += line.startswith(want)
    return got


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.jack
def test_midi_output_comes_back_after_a_jack_server_restart() -> None:
    if shutil.which("jackd") is None:
        pytest.fail("jackd is not installed (Debian package jackd2; make test installs it)")
    name = f"kelly-restart-{os.getpid()}"
    procs: list[subprocess.Popen] = []

    def peer(*args: str) -> subprocess.Popen[str]:
        p = subprocess.Popen([sys.executable, str(PEER), *args], env=_env(name), text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(p)
        return p

    server = _jackd(name)
    try:
        synth = peer("synth", "30")
        notes = _lines(synth.stdout)
        assert _wait_for(notes, "ready", 1, 10) == 1
        box = peer("sender", "14")
        assert _wait_for(notes, "on", 5, 10) == 5  # playing before

        _stop(synth)
        _stop(server)  # the server goes away under the running box
        time.sleep(0.5)
        server = _jackd(name)
        synth = peer("synth", "30")
        notes = _lines(synth.stdout)
        assert _wait_for(notes, "ready", 1, 10) == 1
        assert _wait_for(notes, "on", 5, 10) == 5, "no notes after the server restart"

        out, err = box.communicate(timeout=30)
        assert box.returncode == 0, err[-2000:]
        assert "lost" in err and "is back" in err, err[-2000:]
        assert "Traceback" not in err, err[-2000:]
    finally:
        for p in procs:
            _stop(p)
        _stop(server)
