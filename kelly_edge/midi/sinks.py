"""Where generated MIDI goes: a small seam with one module-level implementation per backend.

The generator and the engine only see :class:`MidiSink`. A sink receives raw messages stamped
with their time on the *audio timeline* (seconds since the start of the run), in non-decreasing
time order, plus tempo changes. Here: :class:`RecordingSink` (keeps everything, for tests and the
run report) and :class:`FileSink` (a Standard MIDI File written on close). A live port sink
(python-rtmidi) lives in its own module and implements the same three methods.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import struct
import tempfile
import threading
from typing import BinaryIO, Iterable, Iterator, Protocol, runtime_checkable

from kelly_edge.errors import OutputError
from kelly_edge.fileio import PendingFile, check_writable, prepare_atomic
from kelly_edge.midi import messages as mm
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

    Memory does not grow with the length of the run: the latest :data:`WINDOW` messages are kept
    in a heap (so messages sent slightly out of time order, such as a note-off queued ahead of
    the next note-on, still land in order) and older ones go to an unnamed temporary file beside
    the output (gone with the process, even after SIGKILL), read back once when the file is
    assembled. A message more than the window behind the ones already spooled is placed at the
    time of the last spooled one (logged once). :meth:`checkpoint` writes what was sent so far as
    a complete file (sounding notes released at its end), for a run that may be killed.
    """

    WINDOW = 16384  # messages kept in memory for time ordering (~2 MB)
    _RECORD = struct.Struct("<dI")  # spooled message: time (s), length; then the bytes
    _CHUNK = 1 << 16

    def __init__(self, path: str | os.PathLike[str], *, ppq: int = 480, bpm: float = 120.0) -> None:
        if not 1 <= ppq <= smf.MAX_PPQ:
            raise ValueError(f"ppq must be in 1..{smf.MAX_PPQ}, got {ppq}")
        smf.tempo_us(bpm)  # validates bpm
        check_writable(path)
        self.path = path
        self.ppq = ppq
        self.bpm = float(bpm)
        self._heap: list[tuple[float, int, bytes]] = []
        self._seq = 0
        self._spool: BinaryIO | None = None
        self._floor = float("-inf")  # time of the last spooled message
        self._clamped = 0
        self._tempos: list[tuple[float, float]] = []
        self._lock = threading.Lock()  # checkpoint() may run on another thread than send()
        self.messages = 0
        self.closed = False

    def send(self, t: float, message: bytes) -> None:
        if self.closed:
            raise RuntimeError(f"FileSink({self.path}).send after close")
        smf.track_event_bytes(message)  # a malformed message fails here, where its sender is on the stack
        with self._lock:
            heapq.heappush(self._heap, (t, self._seq, bytes(message)))
            self._seq += 1
            self.messages += 1
            if len(self._heap) > self.WINDOW:
                self._spill(heapq.heappop(self._heap))

    def set_tempo(self, t: float, bpm: float) -> None:
        if self.closed:
            raise RuntimeError(f"FileSink({self.path}).set_tempo after close")
        smf.tempo_us(bpm)  # validates bpm
        if self._tempos and t < self._tempos[-1][0]:
            raise ValueError(f"tempo change at {t} s comes before the previous one at {self._tempos[-1][0]} s")
        with self._lock:
            self._tempos.append((t, float(bpm)))

    def _spill(self, event: tuple[float, int, bytes]) -> None:
        t, _, message = event
        if t < self._floor:
            if not self._clamped:
                logger.warning("%s: a message came %.3f s behind later ones already written; placed with them",
                               self.path, self._floor - t)
            self._clamped += 1
            t = self._floor
        self._floor = t
        if self._spool is None:
            folder = os.path.dirname(os.fspath(self.path)) or "."
            try:
                self._spool = tempfile.TemporaryFile(dir=folder)
            except OSError as err:
                raise OutputError(f"cannot write {self.path}: {err.strerror or err} (check the folder)") from err
        try:
            self._spool.write(self._RECORD.pack(t, len(message)) + message)
        except OSError as err:
            raise OutputError(f"cannot write {self.path}: {err.strerror or err} (check the free space)") from err

    def _drain(self) -> int:
        """Everything held in memory to the spool (lock held); the spool's length in bytes."""
        while self._heap:
            self._spill(heapq.heappop(self._heap))
        return self._drain_spool()

    def _drain_spool(self) -> int:
        """The spool flushed to the OS (lock held); its length in bytes."""
        if self._spool is None:
            return 0
        try:
            self._spool.flush()
        except OSError as err:
            raise OutputError(f"cannot write {self.path}: {err.strerror or err} (check the free space)") from err
        return self._spool.tell()

    def _spooled(self, end: int) -> Iterator[tuple[float, bytes]]:
        """The first ``end`` bytes of the spool as ``(t, message)``, read in blocks (positioned
        reads: the sending thread may append meanwhile)."""
        if self._spool is None:
            return
        fd, rec = self._spool.fileno(), self._RECORD
        pos, buf, i = 0, b"", 0
        while True:
            if len(buf) - i >= rec.size:
                t, n = rec.unpack_from(buf, i)
                if len(buf) - i >= rec.size + n:
                    yield t, buf[i + rec.size : i + rec.size + n]
                    i += rec.size + n
                    continue
            if pos >= end:
                return
            chunk = os.pread(fd, min(self._CHUNK, end - pos), pos)
            if not chunk:
                return
            pos += len(chunk)
            buf, i = buf[i:] + chunk, 0

    def _prepare(self, end: int, tempos: list[tuple[float, float]], release: bool,
                 held: Iterable[tuple[float, bytes]] = ()) -> PendingFile:
        tmap = smf.TempoMap(ppq=self.ppq, initial_bpm=self.bpm, changes=tempos)
        events: Iterable[tuple[float, bytes]] = itertools.chain(self._spooled(end), held)
        if release:
            events = _released(events)
        return prepare_atomic(self.path, lambda fh: smf.write_smf(fh, events, tmap))

    def checkpoint(self) -> None:
        """Write what was sent so far as a complete file (any sounding note released at its end).
        Later messages earlier than the checkpoint are placed at its time. Raises OutputError."""
        if self.closed:
            return
        with self._lock:
            end = self._drain()
            tempos = list(self._tempos)
        self._prepare(end, tempos, release=True).commit()

    def finish(self) -> PendingFile:
        """Close and assemble the file beside its path without putting it in place (see
        :func:`kelly_edge.fileio.prepare_atomic`): commit it once every other output is written."""
        if self.closed:
            raise RuntimeError(f"FileSink({self.path}) already closed")
        self.closed = True
        with self._lock:  # what is still held in memory follows the spool, in time order (floor first)
            floor = self._floor
            held = ((max(t, floor), m) for t, _, m in sorted(self._heap))
            end = self._drain_spool()
        try:
            pending = self._prepare(end, self._tempos, release=False, held=held)
        finally:
            if self._spool is not None:
                self._spool.close()
        logger.info("%s: %d messages, %d tempo changes", self.path, self.messages, len(self._tempos))
        return pending

    def close(self) -> None:
        """Write the file (once). Raises OutputError when the path cannot be written."""
        if self.closed:
            return
        self.finish().commit()

    def __enter__(self) -> FileSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _released(events: Iterable[tuple[float, bytes]]) -> Iterator[tuple[float, bytes]]:
    """``events``, then a note-off at the last time for every note still sounding."""
    sounding: dict[tuple[int, int], None] = {}
    last = 0.0
    for t, message in events:
        if mm.is_note_on(message):
            sounding[(message[0] & 0x0F, message[1])] = None
        elif mm.is_note_off(message):
            sounding.pop((message[0] & 0x0F, message[1]), None)
        last = t
        yield t, message
    for ch, note in sounding:
        yield last, mm.note_off(ch, note)
