"""Where generated MIDI goes: a small seam with one module-level implementation per backend.

The generator and the engine only see :class:`MidiSink`. A sink receives raw messages stamped
with their time on the *audio timeline* (seconds since the start of the run), in non-decreasing
time order, plus tempo changes. Here: :class:`RecordingSink` (keeps everything, for tests and the
run report) and :class:`FileSink` (a Standard MIDI File written on close). A live port sink
(python-rtmidi) lives in its own module and implements the same three methods.
"""

from __future__ import annotations

import logging
import os
from typing import Protocol, runtime_checkable

from kelly_edge.fileio import check_writable, write_atomic
from kelly_edge.midi import smf

logger = logging.getLogger(__name__)


@runtime_checkable
class MidiSink(Protocol):
    """What every MIDI output provides.

    ``send(t, message)``: one raw MIDI message (``bytes``, e.g. ``b"\\x90\\x3c\\x64"``) due at ``t``
    seconds on the audio timeline. Calls come in non-decreasing ``t``; a live sink may send at once
    or hold the message until ``t``; it must not reorder messages of equal ``t`` (a note-off sent
    before a note-on of the same pitch at the same instant must stay before it).
    ``set_tempo(t, bpm)``: the tempo from ``t`` on (a file sink writes it to its tempo map; a live
    sink may drive MIDI clock from it or ignore it).
    ``close()``: flush and release the output; idempotent; no ``send`` follows it.
    """

    def send(self, t: float, message: bytes) -> None: ...

    def set_tempo(self, t: float, bpm: float) -> None: ...

    def close(self) -> None: ...


class RecordingSink:
    """Keeps every message and tempo change in memory: ``events`` ``[(t, bytes)]``, ``tempos`` ``[(t, bpm)]``."""

    def __init__(self) -> None:
        self.events: list[tuple[float, bytes]] = []
        self.tempos: list[tuple[float, float]] = []
        self.closed = False

    def send(self, t: float, message: bytes) -> None:
        if self.closed:
            raise RuntimeError("RecordingSink.send after close")
        self.events.append((t, bytes(message)))

    def set_tempo(self, t: float, bpm: float) -> None:
        if self.closed:
            raise RuntimeError("RecordingSink.set_tempo after close")
        self.tempos.append((t, float(bpm)))

    def close(self) -> None:
        self.closed = True


class FileSink:
    """Collects messages and writes them as a format-0 Standard MIDI File when closed.

    ``bpm`` is the tempo at t = 0 (a ``set_tempo`` at 0 replaces it); each ``set_tempo`` becomes a
    tempo meta event, and every message lands on the tick nearest its time under the file's tempo
    map (``ppq`` ticks per quarter note; 480 gives ~1 ms ticks at 120 BPM). The folder is checked at
    construction so a long run does not end in an unwritable path; the file appears atomically on
    :meth:`close`, which raises :class:`~kelly_edge.errors.OutputError` if it cannot be written.
    """

    def __init__(self, path: str | os.PathLike[str], *, ppq: int = 480, bpm: float = 120.0) -> None:
        if not 1 <= ppq <= smf.MAX_PPQ:
            raise ValueError(f"ppq must be in 1..{smf.MAX_PPQ}, got {ppq}")
        smf.tempo_us(bpm)  # validates bpm
        check_writable(path)
        self.path = path
        self.ppq = ppq
        self.bpm = float(bpm)
        self._events: list[tuple[float, bytes]] = []
        self._tempos: list[tuple[float, float]] = []
        self.closed = False

    def send(self, t: float, message: bytes) -> None:
        if self.closed:
            raise RuntimeError(f"FileSink({self.path}).send after close")
        smf.track_event_bytes(message)  # a malformed message fails here, where its sender is on the stack
        self._events.append((t, bytes(message)))

    def set_tempo(self, t: float, bpm: float) -> None:
        if self.closed:
            raise RuntimeError(f"FileSink({self.path}).set_tempo after close")
        smf.tempo_us(bpm)  # validates bpm
        if self._tempos and t < self._tempos[-1][0]:
            raise ValueError(f"tempo change at {t} s comes before the previous one at {self._tempos[-1][0]} s")
        self._tempos.append((t, float(bpm)))

    def close(self) -> None:
        """Write the file (once). Raises OutputError when the path cannot be written."""
        if self.closed:
            return
        self.closed = True
        data = smf.build_smf(self._events, ppq=self.ppq, initial_bpm=self.bpm, tempo_changes=self._tempos)
        write_atomic(self.path, data)
        logger.info("wrote %s: %d messages, %d tempo changes", self.path, len(self._events), len(self._tempos))

    def __enter__(self) -> FileSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
