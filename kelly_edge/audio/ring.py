"""A preallocated single-producer / single-consumer ring of float32 audio frames.

Threading contract: exactly one *producer* (the audio callback thread) calls the ``write_*``
methods and exactly one *consumer* (the processing thread) calls ``available``, ``read_mono``
and ``wait``. Neither side ever takes a lock, so the consumer can never block the callback.
The producer copies samples into the buffer *before* it publishes the new write count, and the
consumer copies them out *before* it publishes the new read count; each count is a single
Python attribute written by one side only, so under the GIL the other side sees either the old
or the new value, never a torn one. ``reset`` is for neither thread: call it only while no
capture is running (between capture sessions).

When the consumer falls behind and the ring is full, new frames are dropped (never the
unread ones) and counted in ``dropped_frames``: the processing thread then sees a gap, which
the live loop reports as an input overflow.

The callback path allocates no array memory: it writes into the buffer made in ``__init__``
through slices (Python creates small view objects for those; nothing grows). A wake-up byte
on a non-blocking pipe lets the consumer sleep in :meth:`wait` until data arrives without any
lock the producer would have to take.
"""

from __future__ import annotations

import os
import select
import time

import numpy as np


class FrameRing:
    """``capacity`` frames of ``channels`` float32 samples; frames are counted from 0 since ``reset``.

    Producer-owned: ``frames_written`` (total frames stored), ``dropped_frames``, ``stamp``
    (``(frames_written, time.monotonic())`` of the latest write: when those frames arrived).
    Consumer-owned: ``frames_read``.
    """

    def __init__(self, capacity: int, channels: int = 1) -> None:
        if capacity < 2:
            raise ValueError(f"ring capacity must be at least 2 frames, got {capacity}")
        if not 1 <= channels <= 64:
            raise ValueError(f"ring channels must be 1..64, got {channels}")
        self.capacity = int(capacity)
        self.channels = int(channels)
        self._buf = np.zeros((self.capacity, self.channels), dtype=np.float32)  # (capacity, channels)
        self._flat = self._buf.reshape(-1)  # the same memory, interleaved
        self.frames_written = 0
        self.frames_read = 0
        self.dropped_frames = 0
        self.stamp: tuple[int, float] = (0, 0.0)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.closed = False

    # --- producer -----------------------------------------------------------------------------
    def _space(self, n: int) -> int:
        free = self.capacity - (self.frames_written - self.frames_read)
        if n > free:
            self.dropped_frames += n - free
            return free
        return n

    def _publish(self, n: int) -> None:
        self.frames_written += n
        self.stamp = (self.frames_written, time.monotonic())
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError):  # pipe full (consumer asleep for long) or closed: fine
            pass

    def write_interleaved(self, data: np.ndarray) -> int:
        """Store ``(n * channels,)`` interleaved float32 samples (PortAudio's layout); returns frames kept."""
        ch = self.channels
        n = self._space(data.shape[0] // ch)
        if n <= 0:
            return 0
        w = self.frames_written % self.capacity
        first = min(n, self.capacity - w)
        self._flat[w * ch : (w + first) * ch] = data[: first * ch]
        if first < n:
            self._flat[: (n - first) * ch] = data[first * ch : n * ch]
        self._publish(n)
        return n

    def write_planar(self, columns: list[np.ndarray] | tuple[np.ndarray, ...]) -> int:
        """Store one ``(n,)`` float32 array per channel (JACK's layout: one buffer per port)."""
        n = self._space(columns[0].shape[0])
        if n <= 0:
            return 0
        w = self.frames_written % self.capacity
        first = min(n, self.capacity - w)
        buf = self._buf
        for c, col in enumerate(columns):
            buf[w : w + first, c] = col[:first]
            if first < n:
                buf[: n - first, c] = col[first:n]
        self._publish(n)
        return n

    # --- consumer -----------------------------------------------------------------------------
    def available(self) -> int:
        """Frames written and not yet read."""
        return self.frames_written - self.frames_read

    def read_mono(self, out: np.ndarray) -> bool:
        """Fill ``out`` ``(n,)`` float32 with the next ``n`` frames downmixed to mono (channel mean).

        Returns False, reading nothing, when fewer than ``n`` frames are available.
        """
        n = out.shape[0]
        if self.available() < n:
            return False
        r = self.frames_read % self.capacity
        first = min(n, self.capacity - r)
        buf = self._buf
        if self.channels == 1:
            out[:first] = buf[r : r + first, 0]
            if first < n:
                out[first:] = buf[: n - first, 0]
        else:
            np.mean(buf[r : r + first], axis=1, out=out[:first])
            if first < n:
                np.mean(buf[: n - first], axis=1, out=out[first:])
        self.frames_read += n
        return True

    def skip_to_latest(self, keep: int) -> int:
        """Drop all but the newest ``keep`` unread frames (after a stall); returns frames skipped."""
        extra = self.available() - keep
        if extra > 0:
            self.frames_read += extra
            return extra
        return 0

    def wait(self, timeout_s: float) -> bool:
        """Sleep until the producer writes (or ``timeout_s`` passes); True when woken by a write."""
        try:
            ready, _, _ = select.select([self._wake_r], [], [], max(0.0, timeout_s))
        except (OSError, ValueError):  # closed under us
            return False
        if not ready:
            return False
        try:
            while os.read(self._wake_r, 4096):
                pass
        except (BlockingIOError, OSError):
            pass
        return True

    # --- between sessions ---------------------------------------------------------------------
    def reset(self) -> None:
        """Empty the ring and zero the counts. Only while no producer is running."""
        self.frames_written = 0
        self.frames_read = 0
        self.dropped_frames = 0
        self.stamp = (0, 0.0)

    def close(self) -> None:
        """Release the wake-up pipe; idempotent."""
        if not self.closed:
            self.closed = True
            for fd in (self._wake_r, self._wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def __enter__(self) -> FrameRing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
