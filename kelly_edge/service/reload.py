"""Config reload on SIGHUP (``systemctl reload``) and on a change to the file, keeping the last good one.

:class:`ConfigWatcher` holds the config the box runs on. It re-reads the file when asked (the
SIGHUP handler only sets a flag: no work, no lock, no logging in a signal handler) or when the
file's modification time, size or inode changed (polled about once a second: no inotify
dependency; editors that replace the file are seen too). A new file that validates and differs
from the running one is handed to ``on_reload(old, new)``; one that does not validate is
rejected with its ``file:line: key ...`` messages logged once per distinct bad content, and the
running config stays in force. Touching a file without changing it does nothing.

Reading is bounded (:func:`~kelly_edge.config.loader.read_config_bytes`: a regular file of at most
1 MB, opened non-blocking, so a FIFO or a link to /dev/zero is rejected at once). Validating a
normal YAML file takes milliseconds on a Pi (a file over 32 kB is parsed in a child process, which
cannot hold this process's GIL), so it runs on the watcher's own thread (:meth:`ConfigWatcher.start`)
or whoever calls :meth:`ConfigWatcher.check`, never on the processing thread; ``on_reload`` should hand the config to that thread (the live loop's
``request``) rather than touch the engine itself.

:func:`restart_keys` says which changed keys a running box cannot apply (audio device, MIDI
port, model files...): they are logged as taking effect at the next restart.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

from kelly_edge.config.loader import parse_config_isolated, read_config_bytes
from kelly_edge.config.schema import Config, FrozenMap
from kelly_edge.errors import ConfigError

log = logging.getLogger(__name__)

POLL_S = 1.0

LIVE_KEYS = (
    "tempo.bpm", "emotion.", "active.", "presets", "footswitches", "gpio.", "leds.", "state.persist", "state.path",
    "scheduler.budget_ms", "generator.melody.enabled", "generator.chord.enabled", "generator.bass.enabled",
)
"""Dotted keys (or prefixes ending in ``.``) a running box applies on reload (see
:meth:`kelly_edge.control.box.EngineControls.apply_config` and :class:`kelly_edge.control.panel.ControlPanel`)."""


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two configs (a named row counts as one key)."""
    out: list[str] = []
    for f in dataclasses.fields(old):
        if not f.compare:
            continue
        a, b = getattr(old, f.name), getattr(new, f.name)
        path = f"{prefix}.{f.name}" if prefix else f.name
        if dataclasses.is_dataclass(a) and not isinstance(a, FrozenMap):
            out.extend(changed_keys(a, b, path))
        elif a != b:
            out.append(path)
    return out


def restart_keys(old: Config, new: Config) -> list[str]:
    """The changed keys that take effect only after a restart (not in :data:`LIVE_KEYS`)."""
    return [k for k in changed_keys(old, new) if not any(k == live or (live.endswith(".") and k.startswith(live))
                                                         for live in LIVE_KEYS)]


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class ConfigWatcher:
    """Keeps ``current`` (the running config) and replaces it when the file changes validly.

    ``path``: the config file. ``on_reload(old, new)``: called (on the checking thread) after a
    valid, different config was read; ``on_reject(messages)`` after a new bad content was logged
    (e.g. to flash the error LED). ``notifier``: a :class:`~kelly_edge.service.notify.Notifier`
    told ``RELOADING=1`` / ``READY=1`` around a SIGHUP reload. ``poll_s``: how often the file's
    signature is compared. ``clock``: seconds (``time.monotonic``), for the poll pacing.

    Counters for tests and the status: ``reloads`` (accepted), ``rejected`` (bad contents seen).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        current: Config,
        *,
        on_reload: Callable[[Config, Config], None] | None = None,
        on_reject: Callable[[list[str]], None] | None = None,
        notifier: Any = None,
        poll_s: float = POLL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.current = current
        self.on_reload = on_reload
        self.on_reject = on_reject
        self.notifier = notifier
        self.poll_s = poll_s
        self.clock = clock
        self.reloads = 0
        self.rejected = 0
        self.last_error: list[str] = []  # the messages of the last rejected file (empty once a good one loads)
        self.on_request: Callable[[], None] | None = None  # after each SIGHUP check (e.g. re-load model files)
        self._requested = False
        self._signature = _signature(self.path)
        self._digest = self._read_digest()
        self._bad_digest: str | None = None
        self._next_poll = clock() + poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read_digest(self) -> str | None:
        try:
            return hashlib.sha256(read_config_bytes(self.path)).hexdigest()
        except ConfigError:
            return None

    # --- triggers -----------------------------------------------------------------------------
    def request_reload(self) -> None:
        """Ask for a re-read at the next check. Safe in a signal handler (the CLI's SIGHUP handler,
        :func:`kelly_edge.live.commands.stop_on_signals`): it only sets a flag."""
        self._requested = True

    # --- the check ------------------------------------------------------------------------------
    def check(self, now: float | None = None) -> Config | None:
        """Re-read the file if asked to or if it changed; the new config when one was accepted."""
        if now is None:
            now = self.clock()
        requested, self._requested = self._requested, False
        if not requested:
            if now < self._next_poll:
                return None
            self._next_poll = now + self.poll_s
            signature = _signature(self.path)
            if signature == self._signature:
                return None
            self._signature = signature
        else:
            self._signature = _signature(self.path)
            if self.notifier is not None:
                self.notifier.reloading()
        try:
            return self._reload(requested)
        finally:
            if requested and self.on_request is not None:
                try:
                    self.on_request()
                except Exception:  # a failed extra must not end the config reload
                    log.exception("reload hook failed")
            if requested and self.notifier is not None:
                self.notifier.ready(status="running" if not self.last_error else "running on the last good config")

    def _reload(self, requested: bool) -> Config | None:
        try:  # bounded: a regular file of at most 1 MB, opened non-blocking (a FIFO never blocks us)
            data = read_config_bytes(self.path)
        except ConfigError as err:
            return self._reject(f"unreadable:{err}", err.messages, requested)
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._digest:
            if self._bad_digest is not None:
                log.info("config %s is back to the running version", self.path)
            elif requested:
                log.info("config %s unchanged; nothing to reload", self.path)
            self._bad_digest = None
            self.last_error = []
            return None
        try:  # a big file is parsed in a child process: it must not hold the GIL the live threads need
            new = parse_config_isolated(data, str(self.path), cancel=self._stop)
        except ConfigError as err:
            return self._reject(digest, err.messages, requested)
        old = self.current
        self._digest = digest
        self._bad_digest = None
        self.last_error = []
        if new == old:
            log.info("config %s re-read: no change in effect", self.path)
            return None
        self.current = new
        self.reloads += 1
        log.info("config %s reloaded (%s)", self.path, ", ".join(changed_keys(old, new)) or "no key changed")
        later = restart_keys(old, new)
        if later:
            log.warning("changed keys that take effect after a restart (systemctl restart kelly-edge): %s",
                        ", ".join(later))
        if self.on_reload is not None:
            self.on_reload(old, new)
        return new

    def _reject(self, digest: str, messages: list[str], requested: bool) -> None:
        self.last_error = list(messages)
        if digest == self._bad_digest:
            if requested:
                log.info("config %s still has the errors logged before; running on the last good config", self.path)
            return None
        self._bad_digest = digest
        self.rejected += 1
        log.error("config %s rejected, still running on the last good config:\n  %s",
                  self.path, "\n  ".join(messages))
        if self.on_reject is not None:
            self.on_reject(list(messages))
        return None

    # --- the watcher thread -----------------------------------------------------------------------
    def start(self, interval_s: float = 0.2) -> None:
        """Check every ``interval_s`` on a thread of its own (SIGHUP is seen within that time)."""
        if self._thread is not None:
            return
        self._stop.clear()

        def run() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.check()
                except Exception:  # a bug here must not end the watching
                    log.exception("config watcher failed")

        self._thread = threading.Thread(target=run, name="kelly-config", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; idempotent."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5.0)
