"""Where the status socket lives, for the box (which creates it) and its readers (which look for it).

In order (the box takes the first usable folder; a reader takes the first socket that exists):

1. an explicit path (``--socket``, or the live loop's argument), then ``$KELLY_EDGE_STATUS_SOCKET``;
2. ``/run/kelly-edge/status.sock`` when ``/run/kelly-edge`` exists and is writable: the systemd
   service's ``RuntimeDirectory=kelly-edge``, shared with the service's group;
3. ``$XDG_RUNTIME_DIR/kelly-edge/status.sock``: a box started by hand in a login session;
4. ``/tmp/kelly-edge-<uid>/status.sock`` (``$TMPDIR`` instead of /tmp when set): the fallback when
   neither exists (e.g. over SSH without a runtime dir); the folder must be ours, mode 0700 and not
   a symlink, for the box that makes it and for the reader alike (:func:`untrusted_reason`):
   another user could plant the folder before the box starts and serve a forged snapshot from it.

Readers try 2 before 3 too, so ``kelly-edge status`` in an SSH session finds the service's box.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from kelly_edge.errors import DeviceError

ENV_VAR = "KELLY_EDGE_STATUS_SOCKET"
SOCKET_NAME = "status.sock"
SERVICE_DIR = Path("/run/kelly-edge")
DIR_MODE = 0o750  # the group may reach the socket (itself 0660); others may not even list it
PRIVATE_MODE = 0o700  # the /tmp fallback: this user only (anyone may create names in /tmp)
MAX_PATH_BYTES = 107  # sun_path is 108 bytes including the terminating NUL


def _tmp_dir() -> Path:
    return Path(os.environ.get("TMPDIR") or "/tmp") / f"kelly-edge-{os.getuid()}"


def candidates(explicit: str | os.PathLike[str] | None = None) -> list[Path]:
    """Socket paths to try, most specific first (see the module docstring)."""
    if explicit:
        return [Path(explicit)]
    env = os.environ.get(ENV_VAR)
    if env:
        return [Path(env)]
    out = [SERVICE_DIR / SOCKET_NAME]
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        out.append(Path(xdg) / "kelly-edge" / SOCKET_NAME)
    out.append(_tmp_dir() / SOCKET_NAME)
    return out


def server_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The path the box binds: the first candidate whose folder exists or can be made safely.

    Raises :class:`DeviceError` when an explicit path is too long or its folder cannot be made.
    """
    for path in candidates(explicit):
        if path.parent == SERVICE_DIR and not explicit and not os.environ.get(ENV_VAR):
            if SERVICE_DIR.is_dir() and os.access(SERVICE_DIR, os.W_OK | os.X_OK):
                return _checked(path)
            continue
        prepare_dir(path.parent)
        return _checked(path)
    raise DeviceError("no folder for the status socket (set KELLY_EDGE_STATUS_SOCKET)")  # pragma: no cover


def _checked(path: Path) -> Path:
    if len(os.fsencode(str(path))) > MAX_PATH_BYTES:
        raise DeviceError(f"status socket path {path} is longer than {MAX_PATH_BYTES} bytes (choose a shorter one)")
    return path


def prepare_dir(folder: Path) -> None:
    """Make ``folder`` (mode 0750; 0700 for the /tmp fallback) if missing; for our /tmp fallback,
    refuse one that is not ours.

    A folder under /tmp could have been planted by another user to catch the socket; it must be a
    real directory owned by us. Other folders (explicit paths, XDG) are the caller's choice.
    """
    private = folder == _tmp_dir()
    try:
        folder.mkdir(mode=PRIVATE_MODE if private else DIR_MODE, parents=False, exist_ok=True)
    except FileNotFoundError as err:
        raise DeviceError(f"cannot create the status socket in {folder}: its parent does not exist") from err
    except OSError as err:
        raise DeviceError(f"cannot create {folder} for the status socket: {err.strerror or err}") from err
    if private:
        st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            raise DeviceError(
                f"{folder} is not a folder owned by this user (remove it, or set {ENV_VAR} to another path)"
            )
        if st.st_mode & 0o077:
            os.chmod(folder, PRIVATE_MODE)


def untrusted_reason(socket_path: Path) -> str | None:
    """Why a reader must not believe the socket at ``socket_path`` (None: it may).

    Only the /tmp fallback is checked: there anyone can create ``kelly-edge-<uid>`` first. It must
    be a real folder (not a symlink) owned by this user with mode 0700. The service's folder
    (/run/kelly-edge) can only be made by root, $XDG_RUNTIME_DIR is this user's own, and an
    explicit path is the user's choice.
    """
    folder = socket_path.parent
    if folder != _tmp_dir():
        return None
    try:
        st = os.lstat(folder)
    except OSError:
        return None  # nothing there: nothing to trust or fear
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        return f"{folder} is not a folder owned by this user"
    if st.st_mode & 0o077:
        return f"{folder} has mode {stat.S_IMODE(st.st_mode):04o}, not 0700"
    return None
