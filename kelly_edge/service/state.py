"""The footswitch state (switched models, preset, intent, tapped tempo), kept across restarts.

Only when the config says so (``state.persist: true``). The file is small JSON, replaced
atomically (:func:`kelly_edge.fileio.write_atomic`: temporary file, fsync, rename), so a power cut
leaves either the old state or the new one, never half a file. Writing (with its fsync, which can
take tens of milliseconds on an SD card) happens on a writer thread of :class:`StateStore`, never
on the processing thread; a burst of changes (a player stomping through presets) is coalesced
into one write.

A missing file is a first start; an unreadable or malformed one is logged once and ignored (the
box starts from the config), never fatal: a stomp-box must come up.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from kelly_edge.errors import OutputError
from kelly_edge.fileio import write_atomic

log = logging.getLogger(__name__)

STATE_VERSION = 1


@dataclasses.dataclass
class ControlState:
    """What the footswitches changed. ``active``: model name -> switched on; ``bpm``: a tapped
    tempo (None: the config's); ``preset`` / ``intent``: names (None: the file's / no intent)."""

    active: dict[str, bool]
    preset: str | None = None
    intent: str | None = None
    bpm: float | None = None

    def copy(self) -> ControlState:
        return dataclasses.replace(self, active=dict(self.active))


def state_to_json(state: ControlState) -> bytes:
    """The file's bytes: ``{"version": 1, "active": {...}, "preset": .., "intent": .., "bpm": ..}``."""
    data = {"version": STATE_VERSION, **dataclasses.asdict(state)}
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


def state_from_json(data: bytes) -> ControlState:
    """Parse the file's bytes; ValueError naming the problem when they are not a state."""
    try:
        raw: Any = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"not JSON: {err}") from err
    if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION:
        raise ValueError(f"not a version {STATE_VERSION} state object")
    active = raw.get("active")
    if not isinstance(active, dict) or not all(isinstance(k, str) and isinstance(v, bool) for k, v in active.items()):
        raise ValueError("'active' must map model names to true/false")
    preset, intent, bpm = raw.get("preset"), raw.get("intent"), raw.get("bpm")
    for name, value in (("preset", preset), ("intent", intent)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name!r} must be text or null")
    if bpm is not None and (isinstance(bpm, bool) or not isinstance(bpm, (int, float))):
        raise ValueError("'bpm' must be a number or null")
    return ControlState(active=dict(active), preset=preset, intent=intent, bpm=None if bpm is None else float(bpm))


def load_state(path: str | os.PathLike[str]) -> ControlState | None:
    """The saved state, or None (no file yet, or an unusable one: logged as a warning)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        log.warning("cannot read saved state %s: %s; starting from the config", path, err.strerror or err)
        return None
    try:
        return state_from_json(data)
    except ValueError as err:
        log.warning("ignoring saved state %s: %s; starting from the config", path, err)
        return None


class StateStore:
    """Saves :class:`ControlState` snapshots to ``path`` from a writer thread.

    :meth:`save` (any thread, cheap: it serialises a small dict and wakes the writer) replaces
    the pending snapshot; the writer writes the newest one. A write error is logged once per
    distinct message and retried at the next save. :meth:`close` writes what is pending and stops
    the thread; idempotent. ``synchronous=True`` writes in :meth:`save` itself (tests, tools).
    """

    def __init__(self, path: str | os.PathLike[str], *, synchronous: bool = False) -> None:
        self.path = Path(path)
        self.writes = 0
        self._pending: bytes | None = None
        self._last_written: bytes | None = None
        self._last_error = ""
        self._cond = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        if not synchronous:
            self._thread = threading.Thread(target=self._run, name="kelly-state", daemon=True)
            self._thread.start()

    def load(self) -> ControlState | None:
        return load_state(self.path)

    def save(self, state: ControlState) -> None:
        data = state_to_json(state)
        if self._thread is None:
            self._write(data)
            return
        with self._cond:
            self._pending = data
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closing:
                    self._cond.wait()
                data, self._pending = self._pending, None
                closing = self._closing
            if data is not None:
                self._write(data)
            if closing:
                return

    def _write(self, data: bytes) -> None:
        if data == self._last_written:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, data)
        except (OutputError, OSError) as err:
            message = str(err)
            if message != self._last_error:
                self._last_error = message
                log.error("cannot save the footswitch state: %s", message)
            return
        self._last_error = ""
        self._last_written = data
        self.writes += 1

    def flush(self) -> None:
        """Write the pending snapshot now, on the calling thread."""
        with self._cond:
            data, self._pending = self._pending, None
        if data is not None:
            self._write(data)

    def close(self) -> None:
        thread = self._thread
        if thread is not None:
            with self._cond:
                self._closing = True
                self._cond.notify()
            thread.join(timeout=5.0)
            self._thread = None
        self.flush()
