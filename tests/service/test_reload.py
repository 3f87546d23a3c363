"""ConfigWatcher: reload on SIGHUP and on change; a bad file is rejected, logged once, the old one kept."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from kelly_edge.config.loader import load_config, parse_config
from kelly_edge.config.schema import Config
from kelly_edge.live.commands import stop_on_signals
from kelly_edge.service.notify import Notifier
from kelly_edge.service.reload import ConfigWatcher, changed_keys, restart_keys


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def write(path: Path, text: str, *, bump: int = 1) -> None:
    """Write and move the mtime forward (filesystems with coarse timestamps would hide the change)."""
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, ConfigWatcher, Clock, list[tuple[Config, Config]]]:
    path = tmp_path / "config.yaml"
    write(path, "tempo:\n  bpm: 100\n")
    clock = Clock()
    seen: list[tuple[Config, Config]] = []
    watcher = ConfigWatcher(path, load_config(path), on_reload=lambda old, new: seen.append((old, new)), clock=clock)
    return path, watcher, clock, seen


def test_a_changed_file_is_picked_up_at_the_next_poll(setup) -> None:  # type: ignore[no-untyped-def]
    path, watcher, clock, seen = setup
    write(path, "tempo:\n  bpm: 120\n")
    assert watcher.check() is None  # not yet: polled about once a second
    clock.t += 1.0
    new = watcher.check()
    assert new is not None and new.tempo.bpm == 120.0
    assert watcher.current is new and seen == [(seen[0][0], new)] and seen[0][0].tempo.bpm == 100.0
    clock.t += 1.0
    assert watcher.check() is None  # nothing changed since


def test_a_bad_file_is_rejected_logged_once_and_the_old_config_stays(setup, caplog) -> None:  # type: ignore[no-untyped-def]
    path, watcher, clock, seen = setup
    rejected: list[list[str]] = []
    watcher.on_reject = rejected.append
    good = watcher.current
    write(path, "tempo:\n  bpm: 100\nfootswitches:\n  a:\n    pin: 99\n")
    for k in range(5):  # polled again and again, and touched: still one error
        clock.t += 1.0
        assert watcher.check() is None
        write(path, path.read_text(), bump=k + 2)
    assert watcher.current is good and seen == []
    logged = errors_logged(caplog)
    assert len(logged) == 1
    assert f"{path}:5: footswitches.a.pin must be 0-27, got 99" in logged[0]
    assert "last good config" in logged[0]
    assert rejected == [[f"{path}:5: footswitches.a.pin must be 0-27, got 99"]]
    assert watcher.last_error and watcher.rejected == 1
    write(path, "tempo:\n  bpm: 100\nfootswitches:\n  a:\n    pin: 99\n  b: {pin: 99}\n", bump=20)  # a new mistake
    clock.t += 1.0
    watcher.check()
    assert len(errors_logged(caplog)) == 2
    write(path, "tempo:\n  bpm: 90\n", bump=30)  # fixed
    clock.t += 1.0
    new = watcher.check()
    assert new is not None and new.tempo.bpm == 90.0 and watcher.last_error == []


@pytest.mark.parametrize("text", [
    "tempo:\n  bpm: [\n",  # YAML syntax error
    "tempo:\n  bmp: 90\n",  # unknown key
    "tempo:\n  bpm: fast\n",  # wrong type
    "generator:\n  melody: {channel: 17}\n",  # channel out of range
    "footswitches:\n  a: {pin: 4, press: toggle_drums}\n",  # unknown model in an action
    "footswitches:\n  a: {pin: 4}\nleds: {tempo: 4}\n",  # a pin used twice
])
def test_every_kind_of_bad_file_keeps_the_running_config(setup, caplog, text: str) -> None:  # type: ignore[no-untyped-def]
    path, watcher, clock, seen = setup
    good = watcher.current
    write(path, text)
    clock.t += 1.0
    assert watcher.check() is None and watcher.current is good
    logged = errors_logged(caplog)
    assert len(logged) == 1 and f"{path}:" in logged[0]


def test_a_deleted_file_is_an_error_once_and_the_box_keeps_running(setup, caplog) -> None:  # type: ignore[no-untyped-def]
    path, watcher, clock, seen = setup
    path.unlink()
    for _ in range(3):
        clock.t += 1.0
        assert watcher.check() is None
    assert len(errors_logged(caplog)) == 1 and watcher.current.tempo.bpm == 100.0


def test_touching_without_changing_reloads_nothing(setup) -> None:  # type: ignore[no-untyped-def]
    path, watcher, clock, seen = setup
    write(path, path.read_text(), bump=5)
    clock.t += 1.0
    assert watcher.check() is None and seen == [] and watcher.reloads == 0


def test_a_change_that_keeps_the_values_is_not_a_reload(setup) -> None:  # type: ignore[no-untyped-def]
    path, watcher, clock, seen = setup
    write(path, "# a comment\ntempo:\n  bpm: 100.0\n")
    clock.t += 1.0
    assert watcher.check() is None and seen == []


def test_sighup_reloads_even_when_the_file_looks_the_same(setup) -> None:  # type: ignore[no-untyped-def]
    path, watcher, clock, seen = setup
    st = path.stat()
    path.write_text("tempo:\n  bpm: 130\n", encoding="utf-8")  # same size, mtime put back: only SIGHUP can tell
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    clock.t += 5.0
    assert watcher.check() is None
    with stop_on_signals(threading.Event(), watcher.request_reload):  # the CLI's SIGHUP handler
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(0.01)  # the handler runs in the main thread at the next bytecode boundary
        new = watcher.check()
    assert new is not None and new.tempo.bpm == 130.0


def test_sighup_reload_tells_systemd(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, watcher, clock, seen = setup
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify.sock"))
    listener.settimeout(1.0)
    try:
        watcher.notifier = Notifier(env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock")})
        write(path, "tempo:\n  bpm: 140\n")
        watcher.request_reload()
        assert watcher.check() is not None
        first, second = listener.recv(4096).decode(), listener.recv(4096).decode()
        assert first.startswith("RELOADING=1\n") and second.startswith("READY=1")
    finally:
        listener.close()


def test_the_watcher_thread_reloads_on_its_own(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    write(path, "tempo:\n  bpm: 100\n")
    done = threading.Event()
    got: list[Config] = []
    watcher = ConfigWatcher(path, load_config(path), on_reload=lambda old, new: (got.append(new), done.set()),
                            poll_s=0.05)
    watcher.start(interval_s=0.02)
    try:
        write(path, "tempo:\n  bpm: 77\n")
        assert done.wait(5.0)
    finally:
        watcher.stop()
    assert got[0].tempo.bpm == 77.0


def test_changed_and_restart_keys() -> None:
    old = parse_config("tempo: {bpm: 100}\naudio: {device: a}\n")
    new = parse_config("tempo: {bpm: 90}\naudio: {device: b}\nfootswitches:\n  x: {pin: 4}\nactive: {groove: false}\n"
                       "generator:\n  melody: {enabled: false, channel: 5}\n")
    assert set(changed_keys(old, new)) == {"tempo.bpm", "audio.device", "footswitches", "active.groove",
                                           "generator.melody.enabled", "generator.melody.channel"}
    assert set(restart_keys(old, new)) == {"audio.device", "generator.melody.channel"}
    assert changed_keys(old, old) == [] and restart_keys(new, new) == []
