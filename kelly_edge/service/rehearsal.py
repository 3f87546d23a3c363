"""A WAV recording as the live audio input: rehearsal and tests without an audio interface.

:class:`WavCapture` implements the live-capture seam (:class:`kelly_edge.audio.capture.AudioCapture`)
exactly as a PortAudio or JACK backend does: a thread of its own writes blocks of
``frames_per_buffer`` frames into the same :class:`~kelly_edge.audio.ring.FrameRing`, stamped
when they "arrive", at the pace of the wall clock. The live loop cannot tell it from an interface,
so SIGHUP reloads, footswitches, LEDs, the watchdog and the status socket behave as on stage
(``kelly-edge run --input FILE.wav --realtime``).

Pacing: block ``k`` is written when ``(k + 1)`` blocks of audio time have passed since
:meth:`WavCapture.start` (an absolute schedule from ``time.monotonic``: no drift however long the
file). When the thread falls behind (a suspended machine), it catches up at once; more than
:data:`MAX_BEHIND_S` behind, it restarts the schedule from now instead of flooding the ring.
With ``realtime=False`` blocks are written as fast as the ring has room (a fast, still
hop-by-hop, run for tests).

At the end of the file: ``loop=True`` starts again; otherwise the capture goes on delivering
silence (like an instrument that stopped) and calls ``on_end()`` once, after ``tail_s`` of
silence so the last notes are heard out (the CLI passes its stop event's ``set`` there: the run ends
with the recording).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from kelly_edge.audio.ring import FrameRing
from kelly_edge.audio.wav import WavReader
from kelly_edge.errors import DeviceError

log = logging.getLogger(__name__)

MAX_BEHIND_S = 1.0
TAIL_S = 0.5


class WavCapture:
    """A WAV file delivered into ``ring`` at real-time pace (see the module docstring).

    ``ring`` may have any number of channels (the mono file is copied into each).
    Raises :class:`~kelly_edge.errors.AudioInputError` (from the reader) when the file is
    missing or not a usable WAV. ``clock``/``wait``: the pacing clock and a stop-aware sleep
    (``wait(timeout) -> bool`` returns True when stopping), injectable for tests.
    """

    def __init__(
        self,
        path: str | Path,
        ring: FrameRing,
        *,
        frames_per_buffer: int,
        realtime: bool = True,
        loop: bool = False,
        on_end: Callable[[], None] | None = None,
        tail_s: float = TAIL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if frames_per_buffer < 1:
            raise ValueError(f"frames_per_buffer must be >= 1, got {frames_per_buffer}")
        self.path = Path(path)
        self.reader = WavReader(self.path)
        self.name = f"file:{self.path.name}"
        self.sample_rate = self.reader.sample_rate
        self.channels = ring.channels
        self.overflows = 0
        self.blocks = 0  # blocks written so far
        self.ended = False  # the file has been played to its end (not looping)
        self.ring = ring
        self.frames_per_buffer = int(frames_per_buffer)
        self.realtime = realtime
        self.loop = loop
        self.on_end = on_end
        self.tail_s = tail_s
        self.clock = clock
        self._block = np.zeros(self.frames_per_buffer, dtype=np.float32)  # (frames_per_buffer,) mono
        self._columns = [self._block] * self.channels
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._failed: BaseException | None = None

    @property
    def alive(self) -> bool:
        """False only when reading the file failed (the loop then treats the input as lost)."""
        return self._failed is None and not self._closed

    def start(self) -> None:
        if self._closed:
            raise DeviceError(f"{self.name}: closed")
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="kelly-wav-capture", daemon=True)
            self._thread.start()

    def maintain(self) -> None:
        """Nothing to repair for a file."""

    def close(self) -> None:
        """Stop delivering and close the file; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)
        self.reader.close()

    # --- the capture thread ---------------------------------------------------------------------
    def _fill(self) -> None:
        """Next block of the file into ``_block`` (zero-padded; silence after the end)."""
        block = self._block
        if self.ended:
            block[:] = 0.0
            return
        n = 0
        while n < block.shape[0]:
            got = self.reader.read(block.shape[0] - n)
            if got.size == 0:
                if self.loop and self.blocks + n > 0:
                    self.reader.close()
                    self.reader = WavReader(self.path)
                    continue
                self.ended = True
                break
            block[n : n + got.size] = got
            n += got.size
        block[n:] = 0.0

    def _write(self) -> None:
        ring = self.ring
        if self.channels == 1:
            kept = ring.write_interleaved(self._block)
        else:
            kept = ring.write_planar(self._columns)
        if kept < self._block.shape[0]:
            self.overflows += 1

    def _run(self) -> None:
        block_s = self.frames_per_buffer / self.sample_rate
        start = self.clock()
        k = 0
        end_block: int | None = None
        try:
            while not self._stop.is_set():
                if self.realtime:
                    due = start + (k + 1) * block_s
                    delay = due - self.clock()
                    if delay > 0.0:
                        if self._stop.wait(delay):
                            return
                    elif -delay > MAX_BEHIND_S:
                        log.warning("%s: %.1f s behind real time; resuming from now", self.name, -delay)
                        start = self.clock() - (k + 1) * block_s
                else:
                    while self.ring.capacity - self.ring.available() < self.frames_per_buffer:
                        if self._stop.wait(0.001):
                            return
                self._fill()
                self._write()
                self.blocks += 1
                k += 1
                if self.ended and end_block is None:
                    end_block = k + int(self.tail_s / block_s)
                    log.info("%s: end of the recording", self.name)
                if end_block is not None and k == end_block and self.on_end is not None:
                    self.on_end()
        except Exception as err:  # a read error: the input is "lost", as an unplugged device
            self._failed = err
            log.error("%s: reading failed: %s", self.name, err)


def rehearsal_opener(
    path: str | Path,
    *,
    frames_per_buffer: int,
    realtime: bool = True,
    on_end: Callable[[], None] | None = None,
) -> Callable[[FrameRing], WavCapture]:
    """An ``open_capture(ring)`` for the live loop that opens the recording once.

    A second call (the loop reopening a "lost" input) raises DeviceError: a rehearsal plays its
    recording once.
    """
    opened: list[WavCapture] = []

    def open_capture(ring: FrameRing) -> WavCapture:
        if opened:
            raise DeviceError(f"{path}: the rehearsal recording was already played")
        capture = WavCapture(path, ring, frames_per_buffer=frames_per_buffer, realtime=realtime, on_end=on_end)
        opened.append(capture)
        return capture

    return open_capture


def wav_sample_rate(path: str | Path) -> int:
    """The recording's sample rate (the engine and the ring must be built for it)."""
    with WavReader(path) as reader:
        return reader.sample_rate
