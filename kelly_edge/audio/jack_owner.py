"""One thread opens, activates, deactivates and closes every JACK client of the process.

After a JACK server dies, each of its clients has to be closed, and libjack2 is not safe about it:
two threads closing dead clients at once crashed an earlier attempt at following a restart (the
MIDI watchdog replacing its client while the supervisor's close thread closed the dead capture),
and opening a client while a dead one is still open makes libjack free its per-process state
("Jack server was closed but clients are still allocated, cleanup..."), so closing the remaining
dead client later uses freed memory (a segfault), and that client's shutdown callback never fires.

So the capture and the MIDI output hand every such call to :func:`on_jack_thread`, which runs them
one at a time on a single daemon thread, and register what they opened with :func:`track`: before
any new client is opened (:func:`opening`), every tracked client whose server is gone is closed.
Nothing here runs in a JACK callback; JACK's shutdown callbacks only set a flag.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Protocol, TypeVar

from kelly_edge.errors import DeviceError

T = TypeVar("T")


class Tracked(Protocol):
    """A holder of one JACK client: ``dead()`` (its server went away and it is not closed yet) and
    ``release()`` (close that dead client; called on the owner thread)."""

    def dead(self) -> bool: ...

    def release(self) -> None: ...


class JackOwner:
    """A lazily started thread that runs submitted calls in order."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], object], list[object], threading.Event]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._tracked: list[Tracked] = []  # owner thread only

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="kelly-jack-owner", daemon=True)
                self._thread.start()

    def _serve(self) -> None:
        while True:
            call, box, done = self._jobs.get()
            try:
                box[0] = call()
            except BaseException as err:  # handed back to the caller
                box[1] = err
            finally:
                done.set()

    def run(self, call: Callable[[], T], timeout_s: float = 10.0) -> T:
        """``call()`` on the owner thread; its result or exception. DeviceError when it has not
        finished within ``timeout_s`` (a hung libjack call: later calls queue behind it)."""
        if threading.current_thread() is self._thread:
            return call()
        self._ensure_started()
        box: list[object] = [None, None]
        done = threading.Event()
        self._jobs.put((call, box, done))
        if not done.wait(timeout_s):
            raise DeviceError(f"the JACK server did not answer within {timeout_s:.0f} s")
        if box[1] is not None:
            raise box[1]  # type: ignore[misc]
        return box[0]  # type: ignore[return-value]


    def track(self, holder: Tracked) -> None:
        """Remember ``holder`` (owner thread) so that a dead client is closed before the next open."""
        if holder not in self._tracked:
            self._tracked.append(holder)

    def forget(self, holder: Tracked) -> None:
        if holder in self._tracked:
            self._tracked.remove(holder)

    def reap(self) -> None:
        """Close every tracked client whose server is gone (owner thread, before any open)."""
        for holder in list(self._tracked):
            if holder.dead():
                try:
                    holder.release()
                finally:
                    self.forget(holder)


_OWNER = JackOwner()


def on_jack_thread(call: Callable[[], T], timeout_s: float = 10.0) -> T:
    """Run a JACK client open/activate/deactivate/close on the process's one JACK owner thread."""
    return _OWNER.run(call, timeout_s)


def opening(call: Callable[[], T], timeout_s: float = 10.0) -> T:
    """Like :func:`on_jack_thread`, for a call that opens a JACK client: dead clients go first."""

    def run() -> T:
        _OWNER.reap()
        return call()

    return _OWNER.run(run, timeout_s)


def track(holder: Tracked) -> None:
    """Register a client holder (call on the owner thread, inside :func:`opening`)."""
    _OWNER.track(holder)


def forget(holder: Tracked) -> None:
    """The holder closed its client itself (owner thread)."""
    _OWNER.forget(holder)
