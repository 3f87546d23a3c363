"""Issue 15 (red team), the process side: the real CLI as a child process hit by SIGKILL, SIGHUP and
double SIGTERM/SIGINT, configs that are devices, FIFOs, huge or the state file itself, and a
status socket attacked by readers that never read or planted by another user.

Each test failed before its fix (see the README's reliability table)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import mido
import pytest

from kelly_edge.status.client import fetch_status
from tests.live.live_fakes import wait_until
from tests.reliability.rel_cli import DEMO, NATIVE_NOISE, REPO, assert_complete, run_subprocess
from tests.reliability.test_rel_live_signals import Box, _assert_clean_end

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")

VOICE_CHANNELS = {0, 1, 2}  # the default generator's melody, chord and bass wire channels


def _messages(path: Path) -> list[mido.Message]:
    return [m for m in mido.MidiFile(str(path)) if not m.is_meta]


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(NATIVE_NOISE)]


# --- item 1 + item 10: SIGKILL, then a restart -------------------------------------------------

def test_a_box_killed_with_sigkill_leaves_a_usable_midi_file_and_the_next_one_clears_the_synth(tmp_path: Path) -> None:
    killed = Box(tmp_path, "killed")
    killed.wait_listening()
    wait_until(lambda: killed.mid.exists() and any(m.type == "note_on" for m in _messages(killed.mid)), 20.0)
    time.sleep(2.5)  # at least one more checkpoint with notes in it
    killed.proc.send_signal(signal.SIGKILL)
    assert killed.wait(10.0) == -signal.SIGKILL
    assert_complete(killed.mid)  # reads back, every note released at its end
    assert sum(m.type == "note_on" and m.velocity > 0 for m in _messages(killed.mid)) >= 2
    assert [p.name for p in tmp_path.glob(".*.tmp")] == []

    restarted = Box(tmp_path, "restarted", duration=3.0)
    _assert_clean_end(restarted, restarted.wait(40.0))
    msgs = _messages(restarted.mid)
    first_note = next(i for i, m in enumerate(msgs) if m.type == "note_on")
    cleared = {(m.channel, m.control) for m in msgs[:first_note] if m.type == "control_change"}
    for ch in VOICE_CHANNELS:  # all notes off and all sound off on every channel it plays, before any note
        assert (ch, 123) in cleared and (ch, 120) in cleared, sorted(cleared)


# --- item 6: signals during start-up and shutdown ------------------------------------------------

def test_sighup_during_start_up_does_not_kill_the_box(tmp_path: Path) -> None:
    config = tmp_path / "box.yaml"
    config.write_text("tempo: {bpm: 100}\n")
    for i, delay in enumerate((0.3, 0.8, 1.5)):  # from when Python runs the CLI (~50 ms after exec)
        box = Box(tmp_path, f"early{i}", "--config", str(config), duration=2.0)
        time.sleep(delay)
        box.proc.send_signal(signal.SIGHUP)
        _assert_clean_end(box, box.wait(60.0))


@pytest.mark.parametrize("first,then", [(signal.SIGTERM, signal.SIGHUP), (signal.SIGTERM, signal.SIGTERM),
                                        (signal.SIGINT, signal.SIGINT)])
def test_a_second_signal_during_shutdown_still_gets_notes_off_and_the_report(tmp_path: Path, first: int,
                                                                              then: int) -> None:
    box = Box(tmp_path, "twice")
    box.wait_listening()
    wait_until(lambda: box.mid.exists(), 10.0)
    box.proc.send_signal(first)
    started = time.monotonic()
    while box.proc.poll() is None and time.monotonic() - started < 15.0:
        box.proc.send_signal(then)  # again and again, all through the shutdown and the report
        time.sleep(0.01)
    _assert_clean_end(box, box.wait(15.0))
    assert time.monotonic() - started < 12.0  # bounded (the exit deadline is 10 s)


# --- item 4: the state or calibration file may not be the config ------------------------------------

def test_the_state_or_calibration_file_may_not_be_the_config_itself(tmp_path: Path) -> None:
    config = tmp_path / "box.yaml"
    for key in ("path", "calibration"):
        text = f"state: {{persist: true, {key}: box.yaml}}\n"
        config.write_text(text)
        out = run_subprocess(["check-config", str(config)], timeout_s=60)
        assert out.code == 1 and _errors(out.stderr) == [f"{config}:1: state.{key} '{config}' is this config file "
                                                         f"itself (the box writes JSON there: give another file, "
                                                         f"e.g. state.json)"], out.stderr
        out = run_subprocess(["run", "--config", str(config), "--input", str(DEMO), "--midi-out",
                              str(tmp_path / "o.mid")], timeout_s=60)
        assert out.code == 2 and "is this config file itself" in out.stderr and not (tmp_path / "o.mid").exists()
        assert config.read_text() == text
    # and on SIGHUP: rejected, the running config (and the file) stay
    good = "state: {persist: true, path: state.json}\n"
    config.write_text(good)
    box = Box(tmp_path, "self", "--config", str(config), duration=4.0)
    box.wait_listening()
    bad = "state: {persist: true, path: ./box.yaml}\ntempo: {bpm: 90}\n"
    config.write_text(bad)
    box.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: box.has("rejected"), 10.0)
    _assert_clean_end(box, box.wait(40.0))
    assert box.has("is this config file itself") and config.read_text() == bad


# --- item 5: config reads are bounded ------------------------------------------------------------

def test_check_config_on_a_device_a_fifo_or_a_huge_file_is_one_quick_line(tmp_path: Path) -> None:
    zero = tmp_path / "zero.yaml"
    zero.symlink_to("/dev/zero")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.yaml"
    huge.write_text("# padding\n" * 300_000)  # 3 MB
    for path, needle in ((zero, "not a regular file"), (fifo, "not a regular file"), (huge, "larger than")):
        started = time.monotonic()
        out = run_subprocess(["check-config", str(path)], timeout_s=30)
        assert out.code == 1, out.stderr
        lines = _errors(out.stderr)
        assert len(lines) == 1 and lines[0].startswith(str(path)) and needle in lines[0], out.stderr
        assert time.monotonic() - started < 10.0
        out = run_subprocess(["run", "--config", str(path), "--input", str(DEMO), "--midi-out",
                              str(tmp_path / "o.mid")], timeout_s=30)
        assert out.code == 2 and needle in out.stderr and "Traceback" not in out.stderr


def test_a_reload_of_a_device_or_a_fifo_is_rejected_and_later_edits_still_load(tmp_path: Path) -> None:
    config = tmp_path / "box.yaml"
    config.write_text("tempo: {bpm: 100}\n")
    box = Box(tmp_path, "bounded", "--config", str(config), duration=30.0)
    box.wait_listening()
    for target in ("/dev/zero", "fifo"):
        config.unlink()
        if target == "fifo":
            os.mkfifo(config)
        else:
            config.symlink_to(target)
        before = box.count("rejected")
        box.proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: box.count("rejected") > before, 10.0), box.lines[-5:]
    config.unlink()
    config.write_text("tempo: {bpm: 132}\n")
    box.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: box.has("reloaded (tempo.bpm)"), 10.0), box.lines[-5:]
    started = time.monotonic()
    box.proc.send_signal(signal.SIGTERM)
    _assert_clean_end(box, box.wait(15.0))
    assert time.monotonic() - started < 4.5  # the watcher used to hang in the FIFO: 5 s join
    assert "MemoryError" not in box.stderr()


def test_a_big_config_is_parsed_in_a_child_process_while_the_box_plays(tmp_path: Path) -> None:
    config = tmp_path / "box.yaml"
    config.write_text("tempo: {bpm: 100}\n")
    presets = "".join(f"  p{i}:\n    tempo: {{bpm: {60 + i % 100}}}\n    emotion: {{intent: joy}}\n" for i in range(5000))
    big = "tempo: {bpm: 128}\npresets:\n" + presets  # ~290 kB: seconds of pure-Python YAML
    box = Box(tmp_path, "big", "--config", str(config), duration=60.0)
    box.wait_listening()
    config.write_text(big)
    box.proc.send_signal(signal.SIGHUP)
    parsers: list[int] = []

    def children() -> list[int]:
        for stat_file in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat_file.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid = int(stat_file.parent.name)
            if int(fields[1]) == box.proc.pid and pid not in parsers:  # field 4: the parent's pid
                try:
                    if b"_child_main" in (stat_file.parent / "cmdline").read_bytes():  # the config parser
                        parsers.append(pid)
                except OSError:
                    pass
        return parsers

    wait_until(lambda: children() or box.has("reloaded"), 10.0)
    assert parsers, "the big config was parsed inside the box"
    assert wait_until(lambda: box.has("reloaded"), 60.0), box.lines[-5:]

    def playing_at_128() -> bool:  # the new config is handed to the processing thread between hops
        try:
            return fetch_status(tmp_path / "big.sock")["tempo"]["bpm"] == 128.0
        except Exception:
            return False

    assert wait_until(playing_at_128, 10.0)
    box.proc.send_signal(signal.SIGTERM)
    _assert_clean_end(box, box.wait(15.0))


# --- item 9: the status socket -------------------------------------------------------------------

def test_readers_that_never_read_do_not_starve_status(tmp_path: Path) -> None:
    box = Box(tmp_path, "starve", duration=40.0)
    box.wait_listening()
    sock_path = str(tmp_path / "starve.sock")
    assert wait_until(lambda: os.path.exists(sock_path), 10.0)
    hogs = []
    for _ in range(16):
        hog = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        hog.connect(sock_path)
        hog.setblocking(False)
        try:  # asks for thousands of snapshots and reads none (the box may hang up on it)
            for _ in range(64):
                hog.send(b"\n" * (4096 if len(hogs) % 2 else 1))
        except (BlockingIOError, BrokenPipeError, ConnectionResetError):
            pass
        hogs.append(hog)
    try:
        for _ in range(3):
            started = time.monotonic()
            out = run_subprocess(["status", "--socket", sock_path, "--json"], timeout_s=30)
            assert out.code == 0, out.stderr
            assert json.loads(out.stdout)["kind"] == "kelly-edge-status"
            assert time.monotonic() - started < 10.0
    finally:
        for hog in hogs:
            hog.close()
    box.proc.send_signal(signal.SIGTERM)
    _assert_clean_end(box, box.wait(15.0))


class FakeBox:
    """A unix socket answering every line with ``snapshot`` as JSON (what a planted socket does)."""

    def __init__(self, path: Path, snapshot: dict[str, object]) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(4)
        self.line = (json.dumps(snapshot) + "\n").encode()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                if conn.recv(4096):
                    conn.sendall(self.line)

    def close(self) -> None:
        self.listener.close()


ESCAPES = "\x1b]0;owned\x07\x1b[2J\x1b]52;c;cm0gLXJmIH4=\x07"  # window title, clear screen, OSC 52 clipboard


def _status(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KELLY_EDGE_STATUS_SOCKET", "XDG_RUNTIME_DIR")}
    env["TMPDIR"] = str(tmp_path)  # the /tmp fallback, in a folder of this test's own
    return subprocess.run([sys.executable, "-m", "kelly_edge", "status", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=30)


@pytest.mark.skipif(Path("/run/kelly-edge/status.sock").exists(), reason="a real service box answers first")
def test_status_refuses_a_planted_socket_folder_and_never_prints_terminal_escapes(tmp_path: Path) -> None:
    folder = tmp_path / f"kelly-edge-{os.getuid()}"
    folder.mkdir(mode=0o755)  # what another user's mkdir leaves (as another user it is not even ours)
    os.chmod(folder, 0o755)
    snapshot = {"kind": "kelly-edge-status", "state": f"running{ESCAPES}", "time": time.time(),
                "chord": f"C{ESCAPES}", "key": {"name": f"A{ESCAPES}"}, "emotion": {"name": ESCAPES}}
    fake = FakeBox(folder / "status.sock", snapshot)
    try:
        done = _status(tmp_path)
        assert done.returncode == 2, (done.returncode, done.stderr)
        assert "\x1b" not in done.stdout + done.stderr
        assert [line for line in done.stderr.splitlines()] == [
            f"kelly-edge: error: not reading {folder}/status.sock: {folder} has mode 0755, not 0700 (another user "
            f"may have planted it: remove the folder, or give --socket)"]
        os.chmod(folder, 0o700)  # our own private folder: read, but what it says is shown, not obeyed
        done = _status(tmp_path)
        assert done.returncode == 0, done.stderr
        assert "\x1b" not in done.stdout and "\x07" not in done.stdout
        assert "\\x1b]0;owned\\x07" in done.stdout  # shown escaped
        done = _status(tmp_path, "--json")
        assert done.returncode == 0 and "\x1b" not in done.stdout
    finally:
        fake.close()


def test_a_malformed_snapshot_never_makes_status_fail_internally(tmp_path: Path) -> None:
    folder = tmp_path / "socks"
    folder.mkdir(mode=0o700)
    for i, snapshot in enumerate([
        {"kind": "kelly-edge-status", "state": "running", "key": "C major"},
        {"kind": "kelly-edge-status", "state": "running", "time": "now", "models": ["a"], "timing": 3,
         "emotion": {"valence": "x"}, "audio_s": 1e400, "input": {"level_db": [1]}},
        {"state": {"nested": True}, "models": {"emotion": "trained"}, "timing": {"hop_ms": "fast"}},
    ]):
        fake = FakeBox(folder / f"{i}.sock", snapshot)
        try:
            done = _status(tmp_path, "--socket", str(folder / f"{i}.sock"))
        finally:
            fake.close()
        assert done.returncode in (0, 2), (snapshot, done.returncode, done.stderr)
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr
