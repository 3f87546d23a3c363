"""A MIDI *output device* that is a file: what a live run sent, stamped with when it was sent.

It fills the :class:`~kelly_edge.midi.rtmidi_sink.MidiOutput` seam, so the live loop's scheduled
sink, panic and shutdown paths run unchanged on a machine with no MIDI port (rehearsal with
``run --input X.wav --realtime --midi-out OUT.mid``, and tests). Each message is stamped with the
audio time of the moment it was sent (``to_audio(monotonic())``): the file shows real send jitter.

Every :data:`CHECKPOINT_S` a thread of its own writes what was sent so far as a complete file
(atomically; sounding notes released at its end), so a rehearsal killed with SIGKILL, by the OOM
killer or a power cut still leaves a usable ``.mid`` at most that much shorter than the run.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable

from kelly_edge.errors import OutputError
from kelly_edge.midi.sinks import FileSink

log = logging.getLogger(__name__)

CHECKPOINT_S = 2.0


class FileOutput:
    """``name``, ``open``, ``present``, ``send``, ``reopen``, ``close`` as a port would have them."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        to_audio: Callable[[float], float],
        bpm: float,
        clock: Callable[[], float] = time.monotonic,
        checkpoint_s: float = CHECKPOINT_S,
    ) -> None:
        self.name = f"file:{os.fspath(path)}"
        self._file = FileSink(path, bpm=bpm)  # checks the folder now: fail before the run starts
        self._to_audio = to_audio
        self._clock = clock
        self._last_t = 0.0
        self._checkpoint_s = checkpoint_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        """Start the checkpoint thread (the file itself is written in full on close)."""
        if self._thread is None and self._checkpoint_s > 0:
            self._thread = threading.Thread(target=self._checkpoints, name="kelly-midi-file", daemon=True)
            self._thread.start()

    def _checkpoints(self) -> None:
        failed = False
        while not self._stop.wait(self._checkpoint_s):
            try:
                self._file.checkpoint()
            except OutputError as err:
                if not failed:
                    log.warning("%s (the rehearsal goes on; the file is written again at the end)", err)
                failed = True

    def present(self) -> bool:
        return True

    def send(self, message: bytes) -> None:
        t = max(self._last_t, self._to_audio(self._clock()))  # the file needs non-decreasing times
        self._last_t = t
        self._file.send(t, bytes(message))

    def reopen(self) -> None:
        """A file never goes away."""

    def close(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5.0)
        self._file.close()
