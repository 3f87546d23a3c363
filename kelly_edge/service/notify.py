"""systemd's notify protocol (READY, WATCHDOG, RELOADING, STOPPING, STATUS) without the systemd package.

The protocol is one datagram of ``KEY=value`` lines sent to the unix socket named by
``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace). systemd sets it for a
``Type=notify`` service; anywhere else it is unset and every call here is a cheap no-op, so the
same code runs by hand, in tests and under systemd.

The watchdog: with ``WatchdogSec=`` systemd sets ``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``) and
kills and restarts the service (``Restart=on-failure``) when no ``WATCHDOG=1`` arrives within that
time. :meth:`Notifier.tick` is meant to be called from the *processing loop* every hop: it sends
at most once per half period (systemd's advice), so a loop that stalls stops the pings and gets
restarted, while a healthy one costs one comparison per hop. The socket is non-blocking: a full
socket buffer drops a message rather than stalling the loop.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Callable, Mapping

log = logging.getLogger(__name__)


def _address(path: str) -> str | bytes:
    if path.startswith("@"):
        return b"\0" + path[1:].encode()
    return path


def watchdog_period_s(env: Mapping[str, str], pid: int | None = None) -> float | None:
    """The watchdog period from ``WATCHDOG_USEC``, or None when there is no watchdog for this process."""
    usec = env.get("WATCHDOG_USEC", "")
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None  # the watchdog is meant for another process (e.g. a wrapper's child)
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1e6 if value > 0 else None


class Notifier:
    """Messages to systemd. ``socket_path`` None: from ``$NOTIFY_SOCKET`` (unset: disabled).

    ``watchdog_s`` None: from ``$WATCHDOG_USEC``/``$WATCHDOG_PID``. ``clock`` (seconds,
    ``time.monotonic``) paces the watchdog; ``env`` replaces ``os.environ`` (tests).
    """

    def __init__(
        self,
        socket_path: str | None = None,
        *,
        watchdog_s: float | None = None,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        env = os.environ if env is None else env
        path = env.get("NOTIFY_SOCKET", "") if socket_path is None else socket_path
        self.socket_path = path or None
        self.watchdog_s = watchdog_s if watchdog_s is not None else watchdog_period_s(env)
        self.clock = clock
        self.sent = 0
        self._next_ping = -float("inf")
        self._failed = ""
        self._sock: socket.socket | None = None
        if self.socket_path is not None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)
            self._address = _address(self.socket_path)

    @property
    def enabled(self) -> bool:
        """Whether messages go anywhere (a notify socket was given)."""
        return self._sock is not None

    def send(self, **fields: str | int) -> bool:
        """Send ``KEY=value`` lines (``send(READY=1, STATUS="listening")``); False when not delivered."""
        sock = self._sock
        if sock is None:
            return False
        data = "\n".join(f"{k}={v}" for k, v in fields.items()).encode()
        try:
            sock.sendto(data, self._address)
        except OSError as err:  # no listener, buffer full, socket gone: never stop the box for this
            text = f"{type(err).__name__}: {err}"
            if text != self._failed:
                self._failed = text
                log.warning("systemd notify to %s failed: %s", self.socket_path, text)
            return False
        self._failed = ""
        self.sent += 1
        return True

    def ready(self, status: str | None = None) -> bool:
        """Start-up (or a reload) is complete: systemd considers the service started."""
        return self.send(READY=1, **({"STATUS": status} if status else {}))

    def reloading(self) -> bool:
        """A reload began (``systemctl reload``); follow with :meth:`ready`. Carries
        ``MONOTONIC_USEC``, which ``Type=notify-reload`` (systemd 253+) requires."""
        return self.send(RELOADING=1, MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown began."""
        return self.send(STOPPING=1, **({"STATUS": status} if status else {}))

    def status(self, text: str) -> bool:
        """A one-line status shown by ``systemctl status``."""
        return self.send(STATUS=text)

    def watchdog(self) -> bool:
        """One keep-alive ping now."""
        return self.send(WATCHDOG=1)

    def tick(self, now: float | None = None) -> bool:
        """Ping the watchdog if half its period passed since the last ping; call every hop.

        Returns True when a ping was sent. No watchdog configured: does nothing.
        """
        period = self.watchdog_s
        if period is None or self._sock is None:
            return False
        if now is None:
            now = self.clock()
        if now < self._next_ping:
            return False
        self._next_ping = now + period / 2.0
        return self.watchdog()

    def close(self) -> None:
        """Close the socket; idempotent (later calls are no-ops)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
