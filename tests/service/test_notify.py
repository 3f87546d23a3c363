"""sd_notify messages against a fake NOTIFY_SOCKET: what systemd would receive, and when."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from kelly_edge.service.notify import Notifier, watchdog_period_s


class FakeSystemd:
    """A datagram socket standing in for systemd's notify socket."""

    def __init__(self, address: str | bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.setblocking(False)

    def messages(self) -> list[dict[str, str]]:
        out = []
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return out
            out.append(dict(line.split("=", 1) for line in data.decode().splitlines()))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[tuple[FakeSystemd, str]]:
    path = str(tmp_path / "notify.sock")
    fake = FakeSystemd(path)
    yield fake, path
    fake.close()


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_ready_status_reloading_stopping(systemd: tuple[FakeSystemd, str]) -> None:
    fake, path = systemd
    n = Notifier(env={"NOTIFY_SOCKET": path})
    assert n.enabled
    assert n.ready(status="listening")
    assert n.reloading() and n.ready()
    assert n.status("tempo 120") and n.stopping()
    got = fake.messages()
    assert got[0] == {"READY": "1", "STATUS": "listening"}
    assert got[1]["RELOADING"] == "1" and int(got[1]["MONOTONIC_USEC"]) > 0
    assert got[2] == {"READY": "1"}
    assert got[3:] == [{"STATUS": "tempo 120"}, {"STOPPING": "1"}]
    n.close()
    n.close()
    assert not n.ready()


def test_watchdog_pings_at_half_the_period_while_the_loop_ticks(systemd: tuple[FakeSystemd, str]) -> None:
    fake, path = systemd
    clock = Clock()
    n = Notifier(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())},
                 clock=clock)
    assert n.watchdog_s == 2.0
    sent = 0
    while clock.t < 10.0:  # ten seconds of 10 ms hops
        sent += n.tick()
        clock.t += 0.01
    pings = fake.messages()
    assert pings == [{"WATCHDOG": "1"}] * sent
    assert sent == pytest.approx(10.0 / 1.0, abs=1)  # one per half period


def test_a_stalled_loop_sends_no_pings(systemd: tuple[FakeSystemd, str]) -> None:
    fake, path = systemd
    clock = Clock()
    n = Notifier(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"}, clock=clock)
    n.tick()
    fake.messages()
    clock.t = 30.0  # the loop was stuck: nothing was sent meanwhile, systemd's timer ran out
    assert fake.messages() == []
    assert n.tick()  # the first tick after it resumes pings again
    assert fake.messages() == [{"WATCHDOG": "1"}]


def test_abstract_namespace_socket() -> None:
    name = f"kelly-edge-test-{uuid.uuid4().hex}"
    fake = FakeSystemd(b"\0" + name.encode())
    try:
        n = Notifier(env={"NOTIFY_SOCKET": "@" + name})
        assert n.ready()
        assert fake.messages() == [{"READY": "1"}]
    finally:
        fake.close()


def test_without_notify_socket_everything_is_a_no_op() -> None:
    n = Notifier(env={})
    assert not n.enabled
    assert not n.ready() and not n.watchdog() and not n.tick(5.0)


def test_a_missing_listener_is_logged_once_and_never_raises(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    n = Notifier(env={"NOTIFY_SOCKET": str(tmp_path / "nobody.sock")})
    assert not n.ready() and not n.ready() and not n.watchdog()
    assert len([r for r in caplog.records if "notify" in r.getMessage()]) == 1


def test_watchdog_period_is_for_this_process_only() -> None:
    assert watchdog_period_s({"WATCHDOG_USEC": "5000000"}) == 5.0
    assert watchdog_period_s({"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": str(os.getpid())}) == 5.0
    assert watchdog_period_s({"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "1"}, pid=2) is None
    assert watchdog_period_s({"WATCHDOG_USEC": "junk"}) is None
    assert watchdog_period_s({}) is None


def test_no_watchdog_configured_means_no_pings(systemd: tuple[FakeSystemd, str]) -> None:
    fake, path = systemd
    n = Notifier(env={"NOTIFY_SOCKET": path})
    assert not any(n.tick(float(t)) for t in range(100))
    assert fake.messages() == []
