"""A box on a recording publishes its state on a unix socket; readers see it move."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
import time
from pathlib import Path

import pytest

from kelly_edge.errors import DeviceError
from kelly_edge.status import paths
from kelly_edge.status.client import NoBoxError, StatusClient, StatusError, fetch_status, find_socket, status_main
from kelly_edge.status.server import StatusServer
from tests.status.status_harness import RecordingBox, read_wav


@pytest.fixture
def sock_path(tmp_path: Path) -> Path:
    return tmp_path / "status.sock"


def test_box_on_a_recording_publishes_its_state_through_the_socket(sock_path: Path) -> None:
    samples, rate = read_wav()
    with StatusServer(sock_path) as server:
        box = RecordingBox(server, samples, rate, speed=8.0).start()
        seen: list[float] = []
        with StatusClient(sock_path) as client:  # one kept connection, many requests
            while box.running:
                snap = client.get()
                if snap.get("state") == "running":
                    seen.append(snap["audio_s"])
                time.sleep(0.1)
            box.join()
            final = client.get()
        eng = box.engine
        assert seen == sorted(seen) and len(set(seen)) >= 3  # the state moved while the box played
        assert final["audio_s"] == pytest.approx(eng.time_s, abs=1e-3)
        assert final["timing"]["hops"] == eng.scheduler.hops
        assert final["key"]["name"] == eng.ctx.key_name
        assert final["models"].keys() == eng.models.keys()
        assert all(final["models"][n]["status"] == m.status for n, m in eng.models.items())
        assert final["audio"]["state"] == "running" and final["midi"]["state"] == "open"
        assert final["pid"] == os.getpid()
        assert server.requests >= len(seen)
    assert not sock_path.exists()  # closing removes the socket


def test_socket_is_for_its_user_and_group_only(sock_path: Path) -> None:
    with StatusServer(sock_path) as server:
        mode = os.stat(sock_path).st_mode
        assert stat.S_ISSOCK(mode)
        assert stat.S_IMODE(mode) == 0o660
        assert server.path == sock_path
    assert not any(p.name.endswith(".tmp") for p in sock_path.parent.iterdir())


def test_before_the_first_snapshot_the_box_says_it_is_starting(sock_path: Path) -> None:
    with StatusServer(sock_path):
        snap = fetch_status(sock_path)
    assert snap["state"] == "starting" and snap["pid"] == os.getpid()


def test_each_request_line_gets_the_latest_snapshot(sock_path: Path) -> None:
    with StatusServer(sock_path) as server:
        server.publish({"kind": "kelly-edge-status", "state": "running", "n": 1})
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(sock_path))
            s.sendall(b"status\nstatus\n")  # two requests at once: two lines back
            data = b""
            while data.count(b"\n") < 2:
                data += s.recv(4096)
            first, second = (json.loads(line) for line in data.splitlines())
            assert first["n"] == second["n"] == 1
            server.publish({"kind": "kelly-edge-status", "state": "running", "n": 2})
            s.sendall(b"\n")
            data = b""
            while not data.endswith(b"\n"):
                data += s.recv(4096)
            assert json.loads(data)["n"] == 2


def test_every_new_snapshot_is_served_even_when_python_reuses_its_memory(sock_path: Path) -> None:
    with StatusServer(sock_path) as server, StatusClient(sock_path) as client:
        for n in range(60):  # some snapshots are never read; freed dicts' ids get reused
            server.publish({"kind": "kelly-edge-status", "state": "running", "n": -n})
            server.publish({"kind": "kelly-edge-status", "state": "running", "n": n})
            assert client.get()["n"] == n


def test_due_rate_limits_publishing() -> None:
    server = StatusServer("/nonexistent/unused.sock", interval_s=0.25)
    ticks = [t / 100.0 for t in range(100)]  # one second of 10 ms hops
    assert sum(server.due(t) for t in ticks) == 4


def test_stale_socket_is_replaced_and_a_live_one_is_refused(sock_path: Path) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock_path))
    stale.close()  # a crashed box leaves its socket file behind, nobody listening
    with pytest.raises(NoBoxError, match="stale"):
        fetch_status(sock_path)
    with StatusServer(sock_path):
        assert fetch_status(sock_path)["state"] == "starting"
        with pytest.raises(DeviceError, match="another kelly-edge box is running"):
            StatusServer(sock_path).start()
        assert fetch_status(sock_path)["state"] == "starting"  # the first box is undisturbed


def test_reader_survives_a_box_restart(sock_path: Path) -> None:
    with StatusClient(sock_path) as client:
        with StatusServer(sock_path) as first:
            first.publish({"kind": "kelly-edge-status", "state": "running", "box": 1})
            assert client.get()["box"] == 1
        with pytest.raises(NoBoxError):
            client.get()
        with StatusServer(sock_path) as second:
            second.publish({"kind": "kelly-edge-status", "state": "running", "box": 2})
            assert client.get()["box"] == 2


def test_not_a_status_socket_is_reported(sock_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        other.bind(str(sock_path))
        other.listen(1)
        client = StatusClient(sock_path, timeout=5)

        def answer() -> None:
            conn, _ = other.accept()
            conn.recv(100)
            conn.sendall(b"HTTP/1.0 400 nope\n")
            conn.close()

        t = threading.Thread(target=answer)
        t.start()
        with pytest.raises(StatusError, match="not JSON"):
            client.get()
        t.join()
        client.close()


def test_status_command_prints_text_and_json(sock_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    samples, rate = read_wav()
    with StatusServer(sock_path) as server:
        box = RecordingBox(server, samples[: rate * 4], rate, speed=0).start()
        box.join()
        assert status_main(str(sock_path), as_json=False) == 0
        text = capsys.readouterr().out
        assert status_main(str(sock_path), as_json=True) == 0
        snap = json.loads(capsys.readouterr().out)
    eng = box.engine
    assert snap["key"]["name"] == eng.ctx.key_name and snap["timing"]["hops"] == eng.scheduler.hops
    assert f"Key      {eng.ctx.key_name}" in text
    assert f"Chord {snap['chord']}" in text
    assert f"{snap['emotion']['name']} ({snap['emotion']['family']})" in text
    for name, model in snap["models"].items():
        assert any(line.split()[:2] == [name, model["status"]] for line in text.splitlines())
    assert f"deadline misses {eng.scheduler.deadline_misses} of {eng.scheduler.hops} hops" in text


def test_status_says_plainly_when_no_box_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "none.sock"
    assert status_main(str(missing), as_json=False) == 1
    out = capsys.readouterr()
    assert out.out == "" and "no kelly-edge box is running" in out.err and str(missing) in out.err
    assert status_main(str(missing), as_json=True) == 1
    out = capsys.readouterr()
    assert json.loads(out.out)["state"] == "not running"


def test_socket_path_from_env_and_fallbacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_path = tmp_path / "env.sock"
    monkeypatch.setenv(paths.ENV_VAR, str(env_path))
    assert paths.candidates() == [env_path]
    assert paths.candidates(tmp_path / "x.sock") == [tmp_path / "x.sock"]  # explicit beats env
    with StatusServer() as server:
        assert server.path == env_path and fetch_status()["state"] == "starting"
    monkeypatch.delenv(paths.ENV_VAR)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    found = paths.candidates()
    assert found[-2:] == [tmp_path / "run" / "kelly-edge" / "status.sock", Path(f"/tmp/kelly-edge-{os.getuid()}/status.sock")]
    if not paths.SERVICE_DIR.is_dir():
        assert paths.server_path() == tmp_path / "run" / "kelly-edge" / "status.sock"
        assert stat.S_IMODE(os.stat(tmp_path / "run" / "kelly-edge").st_mode) & 0o007 == 0
    with pytest.raises(NoBoxError, match="no kelly-edge box is running"):
        find_socket(tmp_path / "nothing.sock")


def test_tmp_fallback_folder_must_be_ours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    planted = tmp_path / "kelly-edge-planted"
    monkeypatch.setattr(paths, "_tmp_dir", lambda: planted)
    real = tmp_path / "elsewhere"
    real.mkdir()
    planted.symlink_to(real)  # someone points our fallback folder at theirs
    with pytest.raises(DeviceError, match="not a folder owned by this user"):
        paths.prepare_dir(planted)
    planted.unlink()
    paths.prepare_dir(planted)
    assert planted.is_dir() and stat.S_IMODE(planted.stat().st_mode) & 0o007 == 0


def test_too_long_socket_path_is_a_clear_error(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    with pytest.raises(DeviceError, match="longer than"):
        StatusServer(deep / "status.sock").start()
