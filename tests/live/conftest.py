"""A real JACK server for the live tests, plus a place to report what they measured.

``jack_server`` (session scope) starts ``jackd -R -d dummy`` (``--no-realtime`` where SCHED_FIFO is refused) under a server name of its
own (so a JACK server someone else runs, or another test run, is never touched) and points every
JACK client of this process and its children at it through ``JACK_DEFAULT_SERVER``; it is stopped
at the end of the session. Tests that use it are marked ``@pytest.mark.jack``; without ``jackd``
they are skipped.

``player`` and ``synth``: the rig's JACK player (audio into the box) and synth (a frame-stamping
MIDI receiver, ``tests/live/jack_rig.py``) on that server, closed after the test.

``measurements`` collects latency and jitter figures; they are printed at the end of the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

RATE = 48000
PERIOD = 480  # 10 ms: one JACK period per 10 ms hop

_MEASURED: dict[str, Any] = {}


RT_PRIORITY = 60  # jackd's; its clients' process threads run at it too


def jackd_flags() -> list[str]:
    """jackd's scheduling flags: real-time (as on the Pi) where this process may use SCHED_FIFO,
    so the graph and the clients' callbacks are not starved by whatever else runs on the machine."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except (OSError, AttributeError):
        return ["--no-realtime"]
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    return ["-R", "-P", str(RT_PRIORITY)]


@dataclass(frozen=True)
class JackServer:
    name: str
    rate: int
    period: int
    log: Path


@pytest.fixture(scope="session")
def jack_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JackServer]:
    if shutil.which("jackd") is None:
        pytest.fail("jackd is not installed (Debian package jackd2; make test installs it)")
    from kelly_edge.audio.native_log import mute_native_errors

    mute_native_errors()
    name = f"kelly-test-{os.getpid()}"
    log = tmp_path_factory.mktemp("jackd") / "jackd.log"
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    os.environ["JACK_DEFAULT_SERVER"] = name
    os.environ["JACK_NO_START_SERVER"] = "1"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            ["jackd", "-n", name, *jackd_flags(), "-d", "dummy", "-r", str(RATE), "-p", str(PERIOD)],
            stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    try:
        ready = subprocess.run(["jack_wait", "-w", "-t", "10"], capture_output=True, text=True)
        if ready.returncode != 0 or proc.poll() is not None:
            pytest.fail(f"jackd did not start: {log.read_text(errors='replace')[-500:]}")
        yield JackServer(name, RATE, PERIOD, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def measurements() -> dict[str, Any]:
    return _MEASURED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _MEASURED:
        return
    terminalreporter.section("live timing (measured on this machine)")
    for key in sorted(_MEASURED):
        terminalreporter.write_line(f"{key}: {_MEASURED[key]}")



@pytest.fixture
def player(jack_server: JackServer) -> Iterator[Any]:
    from tests.live.jack_rig import Player  # JACK-Client: imported only where a server runs

    p = Player()
    yield p
    p.close()


@pytest.fixture
def synth(jack_server: JackServer) -> Iterator[Any]:
    from tests.live.jack_rig import Synth

    s = Synth()
    yield s
    s.close()
