"""``monitor`` in a real terminal: tmux runs it, send-keys types, capture-pane reads the screen."""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from kelly_edge.status.server import StatusServer
from tests.status.status_harness import REPO, RecordingBox, read_wav

WAIT_S = 30.0  # generous: a loaded CI machine may take a while to start Python; never a pass/fail criterion
_ids = itertools.count()


class Tmux:
    """One private tmux server (its own socket name) running one command in a fixed-size window."""

    def __init__(self, command: str, folder: Path, *, width: int = 120, height: int = 36) -> None:
        if shutil.which("tmux") is None:
            pytest.fail("tmux is needed for the monitor tests (apt-get install tmux; make test installs it)")
        self.name = f"tmux-{os.getpid()}-{next(_ids)}"
        self.socket = folder / f"{self.name}.sock"  # a private server, its socket in the test's folder
        self.stderr = folder / f"{self.name}.err"
        self.status = folder / f"{self.name}.status"
        env = {"PYTHONPATH": str(REPO), "TERM": "xterm-256color"}
        # bash, not sh: on Ctrl-C it waits for the monitor and records how it ended (dash would die)
        script = f"{command} 2>{shlex.quote(str(self.stderr))}; echo $? >{shlex.quote(str(self.status))}.tmp; " \
                 f"mv {shlex.quote(str(self.status))}.tmp {shlex.quote(str(self.status))}"
        wrapped = f"exec bash -c {shlex.quote(script)}"
        self._tmux("new-session", "-d", "-x", str(width), "-y", str(height),
                   *itertools.chain.from_iterable(("-e", f"{k}={v}") for k, v in env.items()), wrapped)
        self._tmux("set-option", "-g", "remain-on-exit", "on")

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", str(self.socket), *args], check=True, capture_output=True, text=True).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", *keys)

    def wait_for(self, predicate: Callable[[str], bool], what: str) -> str:
        deadline = time.monotonic() + WAIT_S
        while True:
            text = self.screen()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                pane = self._tmux("display-message", "-p", "dead=#{pane_dead} status=#{pane_dead_status} signal=#{pane_dead_signal} pid=#{pane_pid}")
                errors = self.stderr.read_text() if self.stderr.exists() else ""
                raise AssertionError(f"the screen never showed {what} ({pane.strip()}); it shows:\n{text.rstrip()}\n{errors}")
            time.sleep(0.1)

    def size(self) -> str:
        return self._tmux("display-message", "-p", "#{window_width}x#{window_height}").strip()

    def wait_exit(self) -> tuple[int, str]:
        """Wait for the command to end; its exit status and the screen it left behind."""
        self.wait_for(lambda s: self.status.exists(), "the monitor exiting")
        return int(self.status.read_text()), self.screen()

    def close(self) -> None:
        subprocess.run(["tmux", "-S", str(self.socket), "kill-server"], capture_output=True)


@pytest.fixture
def tmux_factory(tmp_path: Path) -> Iterator[Callable[[str], Tmux]]:
    made: list[Tmux] = []

    def make(command: str) -> Tmux:
        t = Tmux(command, tmp_path)
        made.append(t)
        return t

    yield make
    for t in made:
        t.close()


def _monitor_command(sock: Path) -> str:
    return f"{shlex.quote(sys.executable)} -m kelly_edge.status.monitor {shlex.quote(str(sock))}"


def _audio_time(screen: str) -> str | None:
    m = re.search(r"audio (\d+:\d\d:\d\d)", screen)
    return m.group(1) if m else None


def test_monitor_follows_a_box_live_and_quits_on_q(tmp_path: Path, tmux_factory: Callable[[str], Tmux]) -> None:
    sock = tmp_path / "status.sock"
    samples, rate = read_wav()
    with StatusServer(sock) as server:
        box = RecordingBox(server, samples, rate, speed=3.0, extras={
            "audio": {"backend": "file", "state": "running"}, "midi": {"port": "Synth A", "state": "open"},
            "last_error": None,
        })
        term = tmux_factory(_monitor_command(sock))
        term.wait_for(lambda s: "No kelly-edge box" in s or "starting" in s or "kelly-edge box" in s, "the monitor")
        box.start()
        first = term.wait_for(lambda s: _audio_time(s) is not None and "Models" in s, "the box's state")
        # it refreshes by itself: the audio clock on screen moves while the box plays
        term.wait_for(lambda s: _audio_time(s) not in (None, _audio_time(first)), "the audio time moving")
        box.join()
        eng = box.engine
        final = term.wait_for(lambda s: f"of {eng.scheduler.hops} hops" in s, "the final hop count")
        assert f"Key      {eng.ctx.key_name}" in final
        for name, model in eng.models.items():
            assert re.search(rf"^\s+{name}\s+{model.status}\b", final, re.M), name
        assert '"Synth A"' in final and "Error    none" in final
        assert "q or Ctrl-C: quit" in final
        term.keys("q")
        status, after = term.wait_exit()
    assert status == 0
    assert "Models" not in after  # the terminal was given back as it was (curses left the screen)


def test_monitor_quits_cleanly_on_ctrl_c(tmp_path: Path, tmux_factory: Callable[[str], Tmux]) -> None:
    sock = tmp_path / "status.sock"
    with StatusServer(sock) as server:
        server.publish({"kind": "kelly-edge-status", "state": "running", "pid": 4242, "time": time.time(),
                        "audio_s": 61.0, "last_error": "MIDI port 'Synth A' went away"})
        term = tmux_factory(_monitor_command(sock))
        shown = term.wait_for(lambda s: "went away" in s, "the last error")
        assert "pid 4242" in shown and "audio 0:01:01" in shown
        term.keys("C-c")
        status, after = term.wait_exit()
    assert status == 0
    assert "Traceback" not in after and "went away" not in after


def test_monitor_says_no_box_then_finds_one(tmp_path: Path, tmux_factory: Callable[[str], Tmux]) -> None:
    sock = tmp_path / "status.sock"
    term = tmux_factory(_monitor_command(sock))
    waiting = term.wait_for(lambda s: "No kelly-edge box is running" in s, "that no box runs")
    assert str(sock) in waiting
    with StatusServer(sock) as server:  # a box starts later: the monitor picks it up by itself
        server.publish({"kind": "kelly-edge-status", "state": "running", "pid": 777, "time": time.time(), "audio_s": 1.0})
        term.wait_for(lambda s: "kelly-edge box  running  pid 777" in s, "the new box")
        term.keys("q")
        status, after = term.wait_exit()
    assert status == 0


def test_monitor_refuses_without_a_terminal(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "kelly_edge.status.monitor", str(tmp_path / "s.sock")],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)},
                          timeout=60)
    assert proc.returncode == 2
    assert "monitor needs a terminal" in proc.stderr and "Traceback" not in proc.stderr
