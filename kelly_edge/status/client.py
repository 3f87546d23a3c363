"""Read the running box's status from its unix socket (``kelly-edge status``).

Protocol: connect, send a line (any text; ``status``), read one JSON line back; repeat on the same
connection as often as wanted. :class:`StatusClient` keeps the connection and reconnects after the
box restarts; :func:`fetch_status` is the one-shot form.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from kelly_edge.errors import KellyEdgeError, one_line
from kelly_edge.status import paths
from kelly_edge.status.text import render_text

EXIT_NO_BOX = 1
EXIT_ERROR = 2
MAX_LINE_BYTES = 1 << 20


class NoBoxError(KellyEdgeError):
    """No box answers on any status socket: none is running (or it runs as someone we cannot see)."""


class StatusError(KellyEdgeError):
    """A box's socket exists but cannot be read (permissions, a malformed answer)."""


def find_socket(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The first candidate socket path that exists; :class:`NoBoxError` naming the paths tried."""
    tried = paths.candidates(explicit)
    for path in tried:
        if path.exists():
            problem = paths.untrusted_reason(path)
            if problem is not None:
                raise StatusError(f"not reading {path}: {problem} (another user may have planted it: remove the "
                                  f"folder, or give --socket)")
            return path
    raise NoBoxError(f"no kelly-edge box is running (no status socket at {', '.join(map(str, tried))})")


class StatusClient:
    """A kept connection to a box's status socket. ``get()`` returns the latest snapshot dict."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, timeout: float = 2.0) -> None:
        self._explicit = path
        self.timeout = timeout
        self.path: Path | None = None
        self._sock: socket.socket | None = None
        self._buf = bytearray()

    def _connect(self) -> socket.socket:
        path = find_socket(self._explicit)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(path))
        except PermissionError as err:
            sock.close()
            raise StatusError(
                f"cannot read the status socket {path}: permission denied "
                "(it is readable by the box's user and group: add yourself to that group)"
            ) from err
        except (ConnectionRefusedError, FileNotFoundError) as err:
            sock.close()
            raise NoBoxError(f"no kelly-edge box is running (the status socket {path} is stale: nothing answers)") from err
        except OSError as err:
            sock.close()
            raise StatusError(f"cannot connect to the status socket {path}: {err.strerror or err}") from err
        self.path = path
        self._buf.clear()
        return sock

    def get(self) -> dict[str, Any]:
        """One snapshot. Raises NoBoxError when no box answers, StatusError on other failures."""
        for attempt in (0, 1):  # a kept connection may have died with a restarted box: retry once
            if self._sock is None:
                self._sock = self._connect()
            try:
                self._sock.sendall(b"status\n")
                return self._read_line()
            except (BrokenPipeError, ConnectionResetError, EOFError) as err:
                self.close()
                if attempt:
                    raise NoBoxError(f"the kelly-edge box at {self.path} went away ({err or 'connection closed'})") from err
            except socket.timeout as err:
                self.close()
                raise StatusError(f"the box at {self.path} did not answer within {self.timeout:g} s") from err
            except OSError as err:
                self.close()
                if err.errno in (errno.ECONNREFUSED, errno.ENOENT):
                    raise NoBoxError(f"no kelly-edge box is running at {self.path}") from err
                raise StatusError(f"reading the status socket {self.path} failed: {err.strerror or err}") from err
        raise AssertionError("unreachable")  # pragma: no cover

    def _read_line(self) -> dict[str, Any]:
        assert self._sock is not None
        while b"\n" not in self._buf:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self._buf += chunk
            if len(self._buf) > MAX_LINE_BYTES:
                raise StatusError(f"the answer from {self.path} is too long (not a kelly-edge status socket?)")
        end = self._buf.index(b"\n")
        line = bytes(self._buf[:end])
        del self._buf[: end + 1]
        try:
            snap = json.loads(line)
        except ValueError as err:
            raise StatusError(f"the answer from {self.path} is not JSON (not a kelly-edge status socket?)") from err
        if not isinstance(snap, dict):
            raise StatusError(f"the answer from {self.path} is not a status object")
        return snap

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "StatusClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def fetch_status(path: str | os.PathLike[str] | None = None, *, timeout: float = 2.0) -> dict[str, Any]:
    """One snapshot from the box at ``path`` (default: the first socket found)."""
    with StatusClient(path, timeout=timeout) as client:
        return client.get()


def status_main(socket_path: str | None, as_json: bool) -> int:
    """``kelly-edge status [--socket PATH] [--json]``: print the box's state once.

    Exit 0 with the state on stdout; 1 when no box is running (said plainly on stderr; with
    ``--json`` stdout also gets ``{"state": "not running", ...}`` so scripts need not parse stderr);
    2 when the socket exists but cannot be read.
    """
    try:
        snap = fetch_status(socket_path)
    except NoBoxError as err:
        if as_json:
            print(json.dumps({"kind": "kelly-edge-status", "state": "not running", "error": str(err)}))
        print(f"kelly-edge: {one_line(str(err))}", file=sys.stderr)
        return EXIT_NO_BOX
    except StatusError as err:
        print(f"kelly-edge: error: {one_line(str(err))}", file=sys.stderr)
        return EXIT_ERROR
    if as_json:
        print(json.dumps(snap, indent=2))  # control characters come out escaped (\u001b)
        return 0
    try:
        text = render_text(snap)  # control characters in the box's strings are shown escaped
    except Exception as err:  # a box of another version (or not a box): one line, not a traceback
        print(f"kelly-edge: error: the answer from the status socket is not a status snapshot this version "
              f"understands ({type(err).__name__}); try --json", file=sys.stderr)
        return EXIT_ERROR
    sys.stdout.write(text)
    return 0
