"""A minimal Standard MIDI File reader: ``.mid`` -> ``[(t seconds, raw message bytes)]``.

The counterpart of :mod:`kelly_edge.midi.smf` for the plot command (the piano roll), written here
so that nothing at run time needs a MIDI library (mido stays test-only). It reads formats 0 and 1
with ticks-per-quarter division: every track's events are merged onto one timeline and converted
to seconds under the tempo map (format 1 keeps its tempo events in the first track, but any track
may carry them; all are honoured). Running status is understood; meta events other than tempo and
sysex are skipped. SMPTE division (rare) is read as frames x ticks per second.

Malformed files raise :class:`~kelly_edge.errors.KellyEdgeError` naming the file and the problem.
"""

from __future__ import annotations

import bisect
from pathlib import Path

from kelly_edge.errors import KellyEdgeError

_CHANNEL_DATA_BYTES = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
_DEFAULT_TEMPO_US = 500_000  # 120 BPM until a tempo event says otherwise


class MidiFileError(KellyEdgeError, ValueError):
    """A MIDI file is missing, truncated or not a Standard MIDI File."""


def _vlq(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = 0
    for _ in range(4):
        if pos >= end:
            raise IndexError("variable-length quantity runs past the track end")
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, pos
    raise ValueError("variable-length quantity longer than 4 bytes")


def _read_track(data: bytes, pos: int, end: int, order: int) -> tuple[list[tuple[int, int, int, bytes]], list[tuple[int, int]]]:
    """Events ``(tick, order, seq, message)`` and tempo changes ``(tick, us per quarter)`` of one track."""
    events: list[tuple[int, int, int, bytes]] = []
    tempos: list[tuple[int, int]] = []
    tick = 0
    running = 0
    seq = 0
    while pos < end:
        delta, pos = _vlq(data, pos, end)
        tick += delta
        if pos >= end:
            raise IndexError("event runs past the track end")
        status = data[pos]
        if status == 0xFF:  # meta: FF type len data
            kind = data[pos + 1]
            length, pos = _vlq(data, pos + 2, end)
            body = data[pos : pos + length]
            if len(body) < length:
                raise IndexError("meta event runs past the track end")
            pos += length
            if kind == 0x51 and length == 3:
                tempos.append((tick, int.from_bytes(body, "big") or _DEFAULT_TEMPO_US))
            elif kind == 0x2F:
                break
            continue
        if status in (0xF0, 0xF7):  # sysex / escape: F0 len data
            length, pos = _vlq(data, pos + 1, end)
            pos += length
            running = 0
            continue
        if status & 0x80:
            running = status
            pos += 1
        elif not running:
            raise ValueError(f"data byte 0x{status:02x} without a running status")
        n = _CHANNEL_DATA_BYTES.get(running & 0xF0)
        if n is None:
            raise ValueError(f"unexpected status byte 0x{running:02x} in a track")
        body = data[pos : pos + n]
        if len(body) < n:
            raise IndexError("channel message runs past the track end")
        pos += n
        events.append((tick, order, seq, bytes((running,)) + body))
        seq += 1
    return events, tempos


def _seconds(ticks: list[int], tempos: list[tuple[int, int]], ppq: int) -> list[float]:
    """Seconds of each tick (sorted or not) under a tick-ordered tempo map."""
    tempos = sorted(tempos, key=lambda e: e[0])
    seg_ticks = [0]
    seg_s = [0.0]
    seg_us = [_DEFAULT_TEMPO_US]
    for tick, us in tempos:
        if tick == seg_ticks[-1]:
            seg_us[-1] = us
            continue
        seg_s.append(seg_s[-1] + (tick - seg_ticks[-1]) * seg_us[-1] / (1e6 * ppq))
        seg_ticks.append(tick)
        seg_us.append(us)
    out = []
    for tick in ticks:
        k = bisect.bisect_right(seg_ticks, tick) - 1
        out.append(seg_s[k] + (tick - seg_ticks[k]) * seg_us[k] / (1e6 * ppq))
    return out


def read_smf(path: str | Path) -> list[tuple[float, bytes]]:
    """All channel messages of a format-0/1 SMF as ``(t seconds, message bytes)`` in time order.

    Messages at the same time keep their file order (track by track for format 1).
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError as err:
        raise MidiFileError(f"{p}: file not found (check the path)") from err
    except OSError as err:
        raise MidiFileError(f"{p}: cannot read ({err.strerror or err})") from err
    if len(data) < 14 or data[:4] != b"MThd":
        raise MidiFileError(f"{p}: not a Standard MIDI File (no MThd header)")
    hlen = int.from_bytes(data[4:8], "big")
    fmt = int.from_bytes(data[8:10], "big")
    ntracks = int.from_bytes(data[10:12], "big")
    division = int.from_bytes(data[12:14], "big")
    if fmt not in (0, 1):
        raise MidiFileError(f"{p}: SMF format {fmt} is not supported (use format 0 or 1)")
    if division & 0x8000:  # SMPTE: -frames per second (signed high byte) x ticks per frame
        fps = 256 - (division >> 8)
        ppq = fps * (division & 0xFF)
        tempo_free = True
    else:
        ppq = division
        tempo_free = False
    if ppq <= 0:
        raise MidiFileError(f"{p}: header division is 0")
    pos = 8 + hlen
    events: list[tuple[int, int, int, bytes]] = []
    tempos: list[tuple[int, int]] = []
    for k in range(ntracks):
        if pos + 8 > len(data):
            raise MidiFileError(f"{p}: truncated (header promises {ntracks} tracks, found {k})")
        cid, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "big")
        start, end = pos + 8, min(len(data), pos + 8 + size)
        pos = pos + 8 + size
        if cid != b"MTrk":
            continue  # unknown chunks are skipped, as the standard asks
        try:
            track_events, track_tempos = _read_track(data, start, end, k)
        except (IndexError, ValueError) as err:
            raise MidiFileError(f"{p}: track {k + 1} is malformed ({err})") from err
        events.extend(track_events)
        tempos.extend(track_tempos)
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    if tempo_free:  # SMPTE ticks are seconds-based: one "quarter" per second
        tempos = [(0, 1_000_000)]
    times = _seconds([e[0] for e in events], tempos, ppq)
    return [(t, e[3]) for t, e in zip(times, events)]
