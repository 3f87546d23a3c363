"""A MIDI *output device* that is a file: what a live run sent, stamped with when it was sent.

It fills the :class:`~kelly_edge.midi.rtmidi_sink.MidiOutput` seam, so the live loop's scheduled
sink, panic and shutdown paths run unchanged on a machine with no MIDI port (rehearsal with
``run --input X.wav --realtime --midi-out OUT.mid``, and tests). Each message is stamped with the
audio time of the moment it was sent (``to_audio(monotonic())``): the file shows real send jitter.
"""

from __future__ import annotations

import os
import time
from typing import Callable

from kelly_edge.midi.sinks import FileSink


class FileOutput:
    """``name``, ``open``, ``present``, ``send``, ``reopen``, ``close`` as a port would have them."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        to_audio: Callable[[float], float],
        bpm: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = f"file:{os.fspath(path)}"
        self._file = FileSink(path, bpm=bpm)  # checks the folder now: fail before the run starts
        self._to_audio = to_audio
        self._clock = clock
        self._last_t = 0.0

    def open(self) -> None:
        """Nothing to open: the file is written on close."""

    def present(self) -> bool:
        return True

    def send(self, message: bytes) -> None:
        t = max(self._last_t, self._to_audio(self._clock()))  # the file needs non-decreasing times
        self._last_t = t
        self._file.send(t, bytes(message))

    def reopen(self) -> None:
        """A file never goes away."""

    def close(self) -> None:
        self._file.close()
