"""Serve the box's latest status snapshot on a local unix socket, from a thread of its own.

The processing thread must never wait for a reader. It calls :meth:`StatusServer.publish` a few
times a second with a freshly built snapshot (see :mod:`kelly_edge.status.snapshot`); publishing is
one reference assignment (atomic in CPython), so there is no lock to contend for and no I/O on the
caller's thread. The server thread does all the work: it JSON-encodes a snapshot once when a reader
first asks for it, and answers every line a reader sends with one JSON line of the latest snapshot.
The thread runs at a lower scheduling priority (nice +10 on Linux). Every reader socket is
non-blocking: answers wait in a per-reader buffer of at most ``MAX_PENDING_BYTES``, and a reader
that asks without reading (the buffer overflows, or nothing drains for ``SEND_TIMEOUT_S``) is
dropped, so readers that never read cannot starve the others.

The socket is ``0660``: the box's own user and group only (add a user to the service's group to let
them read it). It is created under a temporary name and renamed into place, so it never exists with
looser permissions, and a stale socket left by a crashed box is replaced; a *live* one (another box
answers on it) is an error rather than being stolen.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import selectors
import socket
import threading
import time
from pathlib import Path
from typing import Any

from kelly_edge.errors import DeviceError
from kelly_edge.status import paths
from kelly_edge.status.snapshot import KIND, SCHEMA_VERSION

log = logging.getLogger(__name__)

SOCKET_MODE = 0o660
MAX_CLIENTS = 16
SEND_TIMEOUT_S = 1.0
POLL_S = 0.2  # how often the thread checks for close()
MAX_REQUEST_BYTES = 4096  # a reader sending more than this without a newline is dropped
MAX_PENDING_BYTES = 1 << 18  # answers a reader asked for and did not read yet: more and it is dropped


class _Client:
    """One reader: its partial request line, the answers not yet sent, and when it last read."""

    __slots__ = ("inp", "out", "progress", "events")

    def __init__(self, now: float) -> None:
        self.inp = bytearray()
        self.out = bytearray()
        self.progress = now
        self.events = selectors.EVENT_READ


def socket_in_use(path: Path, timeout: float = 0.5) -> bool:
    """True when something accepts connections on the unix socket at ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(timeout)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


class StatusServer:
    """Publishes snapshots on ``path`` (default: :func:`kelly_edge.status.paths.server_path`).

    Use :meth:`start` (or ``with``), then :meth:`publish` from the processing thread; :meth:`due`
    rate-limits publishing on any clock (audio time works). :meth:`close` stops the thread and
    removes the socket.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, interval_s: float = 0.25) -> None:
        self._explicit = path
        self.path: Path | None = None
        self.interval_s = float(interval_s)
        self._next_due = float("-inf")
        self._latest: dict[str, Any] = {"kind": KIND, "version": SCHEMA_VERSION, "state": "starting", "pid": os.getpid()}
        self._encoded: tuple[dict[str, Any], bytes] | None = None  # (the snapshot, its JSON line)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._inode: int | None = None
        self.requests = 0  # answered requests (for tests and logs)

    # --- the processing thread's side --------------------------------------------------------
    def publish(self, snapshot: dict[str, Any]) -> None:
        """Make ``snapshot`` the one served. Lock-free; the caller must not mutate it afterwards."""
        self._latest = snapshot

    def due(self, now: float) -> bool:
        """True at most once per ``interval_s`` of the clock ``now`` comes from (then re-armed)."""
        if now >= self._next_due:
            self._next_due = now + self.interval_s
            return True
        return False

    @property
    def latest(self) -> dict[str, Any]:
        return self._latest

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "StatusServer":
        """Create the socket (0660) and start the serving thread. Raises DeviceError when it cannot."""
        if self._thread is not None:
            return self
        path = paths.server_path(self._explicit)
        if path.exists() or path.is_symlink():
            if socket_in_use(path):
                raise DeviceError(f"status socket {path} is in use: another kelly-edge box is running (stop it first)")
            log.info("replacing stale status socket %s", path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
            listener.bind(str(tmp))
            os.chmod(tmp, SOCKET_MODE)
            os.replace(tmp, path)
            listener.listen(MAX_CLIENTS)
            listener.setblocking(False)
        except OSError as err:
            listener.close()
            try:
                tmp.unlink()
            except OSError:
                pass
            raise DeviceError(f"cannot create the status socket {path}: {err.strerror or err}") from err
        self.path = path
        self._inode = os.stat(path).st_ino
        self._listener = listener
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="kelly-edge-status", daemon=True)
        self._thread.start()
        log.info("status on %s", path)
        return self

    def close(self) -> None:
        """Stop serving and remove the socket (only if it is still ours). Idempotent."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout=2.0)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self.path is not None and self._inode is not None:
            try:
                if os.stat(self.path).st_ino == self._inode:
                    os.unlink(self.path)
            except OSError:
                pass
            self._inode = None

    def __enter__(self) -> "StatusServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the server thread -------------------------------------------------------------------------
    def _line(self) -> bytes:
        snap = self._latest  # one read of the reference: a consistent snapshot
        cached = self._encoded
        if cached is not None and cached[0] is snap:  # holding the dict itself: its id cannot be reused
            return cached[1]
        line = (json.dumps(snap, separators=(",", ":"), default=str) + "\n").encode()
        self._encoded = (snap, line)
        return line

    def _serve(self) -> None:
        try:  # on Linux a thread id is a valid "process" for setpriority: only this thread is niced
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except (AttributeError, OSError):
            pass
        listener = self._listener
        assert listener is not None
        sel = selectors.DefaultSelector()
        sel.register(listener, selectors.EVENT_READ, None)
        clients: dict[socket.socket, _Client] = {}
        try:
            while not self._stop.is_set():
                for key, events in sel.select(timeout=POLL_S):
                    if key.data is None:
                        self._accept(listener, sel, clients)
                        continue
                    conn = key.fileobj
                    if conn not in clients:
                        continue  # dropped earlier in this round
                    if events & selectors.EVENT_READ:
                        self._read(conn, sel, clients)  # type: ignore[arg-type]
                    if conn in clients and events & selectors.EVENT_WRITE:
                        self._flush(conn, sel, clients)  # type: ignore[arg-type]
                now = time.monotonic()
                for conn, client in list(clients.items()):  # a reader that stopped reading is dropped
                    if client.out and now - client.progress > SEND_TIMEOUT_S:
                        self._drop(conn, sel, clients)
        except Exception:  # the box must keep playing even if its status page breaks
            log.exception("status server stopped")
        finally:
            for conn in list(clients):
                self._drop(conn, sel, clients)
            sel.close()

    def _accept(self, listener: socket.socket, sel: selectors.BaseSelector, clients: dict[socket.socket, _Client]) -> None:
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        if len(clients) >= MAX_CLIENTS:  # drop the oldest reader rather than refuse the newest
            self._drop(next(iter(clients)), sel, clients)
        conn.setblocking(False)  # nothing a reader does (or does not do) may block this thread
        clients[conn] = _Client(time.monotonic())
        sel.register(conn, selectors.EVENT_READ, "client")

    def _read(self, conn: socket.socket, sel: selectors.BaseSelector, clients: dict[socket.socket, _Client]) -> None:
        try:
            data = conn.recv(MAX_REQUEST_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn, sel, clients)
            return
        client = clients[conn]
        buf = client.inp
        buf += data
        lines = buf.count(b"\n")
        if lines == 0:
            if len(buf) > MAX_REQUEST_BYTES:
                self._drop(conn, sel, clients)
            return
        del buf[: buf.rfind(b"\n") + 1]
        line = self._line()
        if len(client.out) + lines * len(line) > MAX_PENDING_BYTES:  # asks without reading: bounded work
            self._drop(conn, sel, clients)
            return
        if not client.out:
            client.progress = time.monotonic()
        client.out += line * lines
        self.requests += lines
        self._flush(conn, sel, clients)

    def _flush(self, conn: socket.socket, sel: selectors.BaseSelector, clients: dict[socket.socket, _Client]) -> None:
        """Send what the socket takes now; wait for it to be writable for the rest."""
        client = clients[conn]
        try:
            sent = conn.send(client.out) if client.out else 0
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as err:
            if err.errno not in (errno.EPIPE, errno.ECONNRESET, None):
                log.debug("status reader dropped: %s", err)
            self._drop(conn, sel, clients)
            return
        if sent:
            del client.out[:sent]
            client.progress = time.monotonic()
        want = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.out else 0)
        if want != client.events:
            client.events = want
            sel.modify(conn, want, "client")

    @staticmethod
    def _drop(conn: socket.socket, sel: selectors.BaseSelector, clients: dict[socket.socket, _Client]) -> None:
        clients.pop(conn, None)
        try:
            sel.unregister(conn)
        except (KeyError, ValueError):
            pass
        conn.close()
