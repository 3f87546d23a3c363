"""Which notes are sounding, and what it takes to silence them.

:class:`ActiveNotes` is the bookkeeping every sender needs for a clean stop: a stuck note on a
hardware synth is the worst failure a MIDI box can have. It stores flags in preallocated arrays
so tracking a note on the real-time path allocates nothing. :func:`pair_notes` checks a recorded
message stream after the fact (tests, the run report). All channels here are *wire* channels 0..15.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from kelly_edge.midi import messages as mm

N_CHANNELS = 16
N_NOTES = 128


class ActiveNotes:
    """Sounding notes per (wire channel, note), plus the channels that ever played a note."""

    def __init__(self) -> None:
        self._on = np.zeros((N_CHANNELS, N_NOTES), dtype=bool)
        self._used = np.zeros(N_CHANNELS, dtype=bool)
        self.count = 0  # sounding notes

    def on(self, ch: int, note: int) -> None:
        """Mark ``note`` sounding on ``ch`` (already sounding: unchanged)."""
        if not self._on[ch, note]:
            self._on[ch, note] = True
            self.count += 1
        self._used[ch] = True

    def off(self, ch: int, note: int) -> bool:
        """Mark ``note`` released; returns whether it was sounding."""
        if self._on[ch, note]:
            self._on[ch, note] = False
            self.count -= 1
            return True
        return False

    def is_on(self, ch: int, note: int) -> bool:
        return bool(self._on[ch, note])

    def observe(self, message: bytes) -> None:
        """Track a raw message as it is sent: note-ons and note-offs (velocity-0 note-ons too)."""
        if mm.is_note_on(message):
            self.on(message[0] & 0x0F, message[1])
        elif mm.is_note_off(message):
            self.off(message[0] & 0x0F, message[1])

    def sounding(self) -> list[tuple[int, int]]:
        """``[(ch, note)]`` of every sounding note, by channel then note."""
        return [(int(c), int(n)) for c, n in np.argwhere(self._on)]

    @property
    def channels_used(self) -> tuple[int, ...]:
        """Wire channels that played at least one note since creation (or :meth:`reset`)."""
        return tuple(int(c) for c in np.flatnonzero(self._used))

    def clear(self) -> None:
        """Forget the sounding notes (after their note-offs were sent); keeps ``channels_used``."""
        self._on[:] = False
        self.count = 0

    def reset(self) -> None:
        """Forget everything, ``channels_used`` included."""
        self.clear()
        self._used[:] = False

    def panic_messages(self, channels: Iterable[int] = ()) -> list[bytes]:
        """Messages that silence everything: a note-off for every sounding note, then on every channel
        in ``channels`` or ``channels_used`` CC123 (all notes off), CC120 (all sound off) and CC64 0
        (sustain off, so no note stays held). Does not change the state: call :meth:`clear` once sent.
        """
        out = [mm.note_off(ch, note) for ch, note in self.sounding()]
        for ch in sorted(set(channels) | set(self.channels_used)):
            out += (mm.all_notes_off(ch), mm.all_sound_off(ch), mm.sustain_off(ch))
        return out


@dataclass(frozen=True)
class PlayedNote:
    """One paired note of a recorded stream: wire channel, pitch, velocity, start/end seconds."""

    channel: int
    note: int
    velocity: int
    start: float
    end: float


def pair_notes(events: Iterable[tuple[float, bytes]]) -> tuple[list[PlayedNote], list[str]]:
    """Pair each note-on with its note-off in a ``[(t, message)]`` stream, in order of start.

    Returns the notes and a list of problems (empty for a clean stream): time going backwards, a
    note-on of a pitch already sounding on its channel, a note-off with no note sounding, a note
    never released. Unreleased notes are not in the note list.
    """
    problems: list[str] = []
    started: dict[tuple[int, int], tuple[float, int]] = {}
    notes: list[PlayedNote] = []
    last_t = float("-inf")
    for t, msg in events:
        if t < last_t:
            problems.append(f"time goes backwards: {t:.6f} s after {last_t:.6f} s ({bytes(msg).hex()})")
        last_t = max(last_t, t)
        if mm.is_note_on(msg):
            key = (msg[0] & 0x0F, msg[1])
            if key in started:
                problems.append(f"note-on of ch{key[0]} note {key[1]} at {t:.6f} s while it is sounding")
            started[key] = (t, msg[2])
        elif mm.is_note_off(msg):
            key = (msg[0] & 0x0F, msg[1])
            if key not in started:
                problems.append(f"note-off of ch{key[0]} note {key[1]} at {t:.6f} s with no note sounding")
                continue
            t0, vel = started.pop(key)
            notes.append(PlayedNote(key[0], key[1], vel, t0, t))
    for (ch, note), (t0, _) in sorted(started.items()):
        problems.append(f"ch{ch} note {note} started at {t0:.6f} s is never released")
    notes.sort(key=lambda n: (n.start, n.channel, n.note))
    return notes, problems
