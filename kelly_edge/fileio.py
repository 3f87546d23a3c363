"""Atomic file writes: a reader (or a crash) never sees a half-written file.

Also the one place that decides what an output path may be: a regular file or a new path (never
a device node, FIFO, socket or folder), and never the same file as an input or another output of
the same run (compared by device and inode, so symlinks and ``./a`` vs ``a`` do not fool it).
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from kelly_edge.errors import OutputError

_UMASK = os.umask(0o022)  # read the process umask once (at import, before any threads)...
os.umask(_UMASK)  # ...and put it back


def _folder(target: Path) -> Path:
    return target.parent if str(target.parent) else Path(".")


class PendingFile:
    """A complete, fsynced file for ``target``, not yet in place.

    :meth:`commit` renames it over ``target`` (atomic, and cannot fail for want of space);
    :meth:`discard` removes it. Lets a run write several outputs and put them in place only when
    every one of them was written (both or neither). Where Linux allows (``O_TMPFILE``) the file
    has no name until :meth:`commit`, so a process killed while writing (SIGKILL, the OOM killer)
    leaves nothing behind; elsewhere it is a hidden ``.<name>.*.tmp`` beside the target.
    """

    def __init__(self, target: Path, *, tmp: str | None = None, fd: int | None = None) -> None:
        self.target = target
        self.tmp = tmp
        self.fd = fd  # an unnamed (O_TMPFILE) file, named at commit

    def commit(self) -> None:
        try:
            if self.fd is not None:
                try:
                    self.tmp = _link_unnamed(self.fd, self.target)
                except OSError:  # a filesystem that made the file but cannot link it: copy it to a named one
                    self.tmp = _copy_unnamed(self.fd, self.target)
                os.close(self.fd)
                self.fd = None
            assert self.tmp is not None
            os.replace(self.tmp, self.target)
        except OSError as err:
            self.discard()
            raise OutputError(f"cannot write {self.target}: {err.strerror or err} (check the path)") from err

    def discard(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.tmp is not None:
            try:
                os.unlink(self.tmp)
            except OSError:
                pass


def _open_unnamed(folder: Path) -> int | None:
    """An unnamed file in ``folder`` (Linux ``O_TMPFILE``), or None where that is not possible."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(folder, flag | os.O_RDWR | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError:  # a filesystem without O_TMPFILE support: fall back to a named temporary file
        return None


def _link_unnamed(fd: int, target: Path) -> str:
    """Give the unnamed file ``fd`` a hidden temporary name beside ``target`` (then renamed over it)."""
    proc_fds = os.open("/proc/self/fd", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        for _ in range(100):
            name = str(_folder(target) / f".{target.name}.{os.urandom(6).hex()}.tmp")
            try:  # linkat(AT_SYMLINK_FOLLOW) through /proc: a plain link() would not follow the fd's link
                os.link(str(fd), name, src_dir_fd=proc_fds, follow_symlinks=True)
                return name
            except FileExistsError:
                continue
    finally:
        os.close(proc_fds)
    raise FileExistsError(f"no free temporary name beside {target}")


def _copy_unnamed(fd: int, target: Path) -> str:
    """The unnamed file ``fd`` copied to a named temporary file beside ``target`` (fsynced)."""
    out, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=_folder(target))
    try:
        os.fchmod(out, os.fstat(fd).st_mode & 0o7777)
        offset = 0
        while chunk := os.pread(fd, 1 << 20, offset):
            offset += len(chunk)
            while chunk:
                chunk = chunk[os.write(out, chunk):]
        os.fsync(out)
    except BaseException:
        os.close(out)
        os.unlink(name)
        raise
    os.close(out)
    return name


def prepare_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> PendingFile:
    """Write a temporary file for ``path`` with ``write(fh)``, fsync it, and return it uncommitted.

    Raises :class:`OutputError` naming the path when the folder is missing or not writable, the
    disk is full, or ``path`` exists and is not a regular file.
    """
    target = Path(path)
    _refuse_special(target)
    folder = _folder(target)
    fd = _open_unnamed(folder)
    pending = PendingFile(target, fd=fd)
    if fd is None:
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
        except OSError as err:
            raise OutputError(f"cannot write {target}: {err.strerror or err} (check the folder exists and is writable)") from err
        pending = PendingFile(target, tmp=tmp)
        owned = fd
    else:
        owned = os.dup(fd)  # the pending file keeps its own descriptor for the commit
    try:
        try:  # temporary files are 0600; give the usual mode (or keep the replaced file's)
            os.fchmod(owned, target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~_UMASK)
        except OSError:
            pass
        with os.fdopen(owned, "w+b") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as err:
        pending.discard()
        raise OutputError(f"cannot write {target}: {err.strerror or err} (check the path and free space)") from err
    except BaseException:
        pending.discard()
        raise
    return pending


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``.

    Raises :class:`OutputError` naming the path when the folder is missing or not writable.
    """
    prepare_atomic(path, lambda fh: fh.write(data)).commit()


def _refuse_special(target: Path) -> None:
    """An existing ``target`` (followed through symlinks) must be a regular file."""
    try:
        st = os.stat(target)
    except OSError:
        return  # a new path (or a dangling symlink, which the rename replaces)
    if stat.S_ISDIR(st.st_mode):
        raise OutputError(f"cannot write {target}: it is a directory (give a file name)")
    if not stat.S_ISREG(st.st_mode):
        raise OutputError(f"cannot write {target}: it is {kind_of(st.st_mode)}, not a regular file "
                          f"(give the path of a new or existing .mid/.json file)")


def kind_of(mode: int) -> str:
    """What a non-regular file is, for messages: "a FIFO", "a character device", ..."""
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a file"


def check_writable(path: str | os.PathLike[str]) -> None:
    """Fail early, before a long run, if ``path`` could not be written later."""
    target = Path(path)
    folder = _folder(target)
    _refuse_special(target)
    if not folder.is_dir():
        raise OutputError(f"cannot write {target}: folder {folder} does not exist (create it first)")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"cannot write {target}: folder {folder} is not writable (choose another path)")


def _identity(path: Path) -> tuple[object, ...]:
    """What makes two paths the same file: (device, inode) when it exists, else its resolved path."""
    try:
        st = os.stat(path)
    except OSError:
        return ("new", os.path.realpath(path))
    return ("file", st.st_dev, st.st_ino)


def check_outputs(outputs: Iterable[tuple[str, str | os.PathLike[str] | None]],
                  inputs: Iterable[tuple[str, str | os.PathLike[str] | None]] = ()) -> None:
    """Before any work: every output is writable (:func:`check_writable`), and none is the same
    file as an input or as another output. ``outputs``/``inputs``: ``(option name, path or None)``.

    Raises :class:`OutputError` (one line naming both options) on the first problem.
    """
    seen: dict[tuple[object, ...], str] = {}
    for option, path in inputs:
        if path is not None and os.path.exists(path):
            seen.setdefault(_identity(Path(path)), f"{option} {path}")
    for option, path in outputs:
        if path is None:
            continue
        check_writable(path)
        key = _identity(Path(path))
        other = seen.get(key)
        if other is not None:
            raise OutputError(f"{option} {path} is the same file as {other} (give each output a file of its own)")
        seen[key] = f"{option} {path}"
