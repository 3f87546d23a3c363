"""Atomic file writes: a reader (or a crash) never sees a half-written file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from kelly_edge.errors import OutputError

_UMASK = os.umask(0o022)  # read the process umask once (at import, before any threads)...
os.umask(_UMASK)  # ...and put it back


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``.

    Raises :class:`OutputError` naming the path when the folder is missing or not writable.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise OutputError(f"cannot write {target}: {err.strerror or err} (check the folder exists and is writable)") from err
    try:
        try:  # mkstemp makes 0600 files; give the usual mode (or keep the replaced file's)
            os.fchmod(fd, target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~_UMASK)
        except OSError:
            pass
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise OutputError(f"cannot write {target}: {err.strerror or err} (check the path and free space)") from err


def check_writable(path: str | os.PathLike[str]) -> None:
    """Fail early, before a long run, if ``path`` could not be written later."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise OutputError(f"cannot write {target}: it is a directory (give a file name)")
    if not folder.is_dir():
        raise OutputError(f"cannot write {target}: folder {folder} does not exist (create it first)")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"cannot write {target}: folder {folder} is not writable (choose another path)")
