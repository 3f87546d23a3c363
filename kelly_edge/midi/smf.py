"""A minimal Standard MIDI File writer: timed raw messages + a tempo map -> format-0 ``bytes``.

Written here rather than with mido so the runtime has no MIDI-library dependency (mido is only
used by the tests to read the files back). The writer places every event at the tick whose time,
*under the file's own tempo map*, is nearest to the event's time in seconds: tempo changes are
themselves placed on whole ticks, and the seconds-to-ticks mapping of each tempo segment starts
from the file time of that tick, so rounding errors never accumulate across tempo changes.

One track (format 0): a time signature (4/4) and the tempo meta events, then the messages in time
order (at equal ticks, in the order given), then end-of-track. Running status is not used.
"""

from __future__ import annotations

import bisect
import io
import logging
from dataclasses import dataclass
from typing import BinaryIO, Iterable, Sequence

logger = logging.getLogger(__name__)

MAX_TEMPO_US = 0xFFFFFF  # a tempo meta event holds 3 bytes of microseconds per quarter note
MAX_PPQ = 0x7FFF  # the header's division word, top bit clear = ticks per quarter note
_META = 0xFF
_META_TEMPO = 0x51
_META_TIME_SIGNATURE = 0x58
_META_END_OF_TRACK = 0x2F
_CHANNEL_MESSAGE_LENGTH = {0x80: 3, 0x90: 3, 0xA0: 3, 0xB0: 3, 0xC0: 2, 0xD0: 2, 0xE0: 3}


def vlq(value: int) -> bytes:
    """Variable-length quantity: 7 bits per byte, most significant first, high bit = more follows."""
    if value < 0 or value > 0x0FFFFFFF:
        raise ValueError(f"variable-length quantity must be in 0..0x0FFFFFFF, got {value}")
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def tempo_us(bpm: float) -> int:
    """Microseconds per quarter note for ``bpm`` (> 0), as stored in a tempo meta event."""
    if not bpm > 0:
        raise ValueError(f"tempo must be > 0 BPM, got {bpm!r}")
    return max(1, min(MAX_TEMPO_US, round(60_000_000 / bpm)))


@dataclass(frozen=True)
class _Segment:
    t: float  # seconds: when the caller changed tempo
    tick: int  # where the change sits in the file
    file_s: float  # the file time of ``tick`` under the preceding segments
    us: int  # microseconds per quarter from here on


class TempoMap:
    """Seconds -> ticks under a piecewise-constant tempo; changes are placed on whole ticks.

    ``changes`` are ``(t seconds, bpm)`` in non-decreasing time (the last of equal times wins);
    the tempo before the first change (and at t = 0 unless a change is at 0) is ``initial_bpm``.
    """

    def __init__(self, *, ppq: int, initial_bpm: float, changes: Iterable[tuple[float, float]] = ()) -> None:
        if not 1 <= ppq <= MAX_PPQ:
            raise ValueError(f"ppq must be in 1..{MAX_PPQ}, got {ppq}")
        self.ppq = ppq
        segs = [_Segment(0.0, 0, 0.0, tempo_us(initial_bpm))]
        for t, bpm in changes:
            us = tempo_us(bpm)
            t = max(0.0, float(t))
            last = segs[-1]
            if t < last.t:
                raise ValueError(f"tempo changes must be in time order: {t} s after {last.t} s")
            tick = self._tick_in(last, t)
            if tick == last.tick:  # same tick as the previous change: it replaces it
                segs[-1] = _Segment(last.t, last.tick, last.file_s, us)
                continue
            file_s = last.file_s + (tick - last.tick) * last.us / (1e6 * ppq)
            segs.append(_Segment(t, tick, file_s, us))
        self.segments: tuple[_Segment, ...] = tuple(segs)
        self._seg_times = [seg.t for seg in segs]
        self._seg_ticks = [seg.tick for seg in segs]

    def _tick_in(self, seg: _Segment, t: float) -> int:
        return seg.tick + max(0, round((t - seg.file_s) * 1e6 * self.ppq / seg.us))

    def segment_at(self, t: float) -> _Segment:
        """The segment in force at ``t`` seconds (the last change at or before ``t``)."""
        return self.segments[max(0, bisect.bisect_right(self._seg_times, t) - 1)]

    def tick_of(self, t: float) -> int:
        """Nearest tick to ``t`` seconds (never before the tempo change in force at ``t``)."""
        return self._tick_in(self.segment_at(max(0.0, t)), max(0.0, t))

    def seconds_of(self, tick: int) -> float:
        """File time of ``tick``, seconds (what a reader of the file computes)."""
        found = self.segments[max(0, bisect.bisect_right(self._seg_ticks, tick) - 1)]
        return found.file_s + (tick - found.tick) * found.us / (1e6 * self.ppq)


def track_event_bytes(message: bytes) -> bytes | None:
    """The bytes of ``message`` as an SMF track event (after the delta time), or None to skip it."""
    if not message:
        raise ValueError("empty MIDI message")
    status = message[0]
    if status < 0x80:
        raise ValueError(f"MIDI message must start with a status byte, got {bytes(message).hex()}")
    if status < 0xF0:
        expected = _CHANNEL_MESSAGE_LENGTH[status & 0xF0]
        if len(message) != expected:
            raise ValueError(f"channel message {bytes(message).hex()} must be {expected} bytes long")
        if any(b > 0x7F for b in message[1:]):
            raise ValueError(f"data bytes of {bytes(message).hex()} must be in 0..127")
        return bytes(message)
    if status == 0xF0:  # sysex: F0 <length> <data ... F7>
        return b"\xf0" + vlq(len(message) - 1) + bytes(message[1:])
    # System common / real-time (clock, start, stop...) have no place in a file.
    logger.debug("smf: skipping system message %s", bytes(message[:1]).hex())
    return None


def build_smf(
    events: Sequence[tuple[float, bytes]],
    *,
    ppq: int = 480,
    initial_bpm: float = 120.0,
    tempo_changes: Sequence[tuple[float, float]] = (),
) -> bytes:
    """A format-0 SMF holding ``events`` (``(t seconds, message)``) under the given tempo map.

    Events are stably sorted by time, so equal times keep their order (a note-off sent before a
    note-on at the same instant stays before it). Raises ValueError on malformed messages.
    """
    tmap = TempoMap(ppq=ppq, initial_bpm=initial_bpm, changes=tempo_changes)
    out = io.BytesIO()
    write_smf(out, sorted(events, key=lambda e: e[0]), tmap)
    return out.getvalue()


def write_smf(fh: BinaryIO, events: Iterable[tuple[float, bytes]], tmap: TempoMap) -> None:
    """Stream a format-0 SMF to the seekable ``fh``: ``events`` in non-decreasing time, one at a
    time (memory does not grow with their number). The track length is patched in at the end."""
    start = fh.tell()
    fh.write(b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big")
             + tmap.ppq.to_bytes(2, "big") + b"MTrk" + bytes(4))
    length = 0
    last_tick = 0

    def put(tick: int, data: bytes) -> None:
        nonlocal length, last_tick
        chunk = vlq(tick - last_tick) + data
        fh.write(chunk)
        length += len(chunk)
        last_tick = tick

    put(0, bytes((_META, _META_TIME_SIGNATURE, 4, 4, 2, 24, 8)))
    metas = iter(tmap.segments)
    seg: _Segment | None = next(metas, None)
    for t, message in events:
        data = track_event_bytes(message)
        if data is None:
            continue
        tick = tmap.tick_of(t)
        while seg is not None and seg.tick <= tick:  # tempo metas first within a tick
            put(seg.tick, bytes((_META, _META_TEMPO, 3)) + seg.us.to_bytes(3, "big"))
            seg = next(metas, None)
        put(tick, data)
    while seg is not None:
        put(seg.tick, bytes((_META, _META_TEMPO, 3)) + seg.us.to_bytes(3, "big"))
        seg = next(metas, None)
    put(last_tick, bytes((_META, _META_END_OF_TRACK, 0)))
    end = fh.tell()
    fh.seek(start + 18)
    fh.write(length.to_bytes(4, "big"))
    fh.seek(end)
