"""Music theory the generator needs: scales, chord tones, voicings, and the chord decision.

Pure functions over pitch classes (0..11, C = 0) and MIDI note numbers. :func:`choose_chord` and
:func:`choose_voicing` run while a step is planned, inside the real-time audio hop, so they avoid
repeated work and allocations: voicing candidates are tabled per chord and range, and the chord
decision only builds the allowed-chord mask when the most probable chord is not allowed outright.
"""

from __future__ import annotations

import functools
import operator

import numpy as np

from kelly_edge.models import spec

MAJOR_STEPS = (0, 2, 4, 5, 7, 9, 11)
MINOR_STEPS = (0, 2, 3, 5, 7, 8, 10, 11)
"""Natural minor plus the raised 7th (the harmonic-minor leading tone), relative to the tonic."""

HYSTERESIS = 0.1
"""A new chord must beat the current chord's probability by this much to replace it, so a
distribution hovering between two chords does not flip every beat."""

STRONG_PREFERENCE = 0.5
"""A chord whose root is outside the key is only taken when the harmony distribution gives it at
least this probability (a majority): borrowed chords (bVII, bVI) when the model is sure of them,
never as noise."""


def scale_pitch_classes(tonic: int, major: bool) -> tuple[int, ...]:
    """Absolute pitch classes of the key, sorted; minor includes the harmonic-minor leading tone."""
    steps = MAJOR_STEPS if major else MINOR_STEPS
    return tuple(sorted((tonic + s) % 12 for s in steps))


def scale_note_mask(tonic: int, major: bool, out: np.ndarray) -> np.ndarray:
    """Fill ``out`` (128,) with 1.0 on MIDI notes in the key, 0.0 elsewhere; returns ``out``."""
    pcs = np.zeros(12, dtype=out.dtype)
    pcs[list(scale_pitch_classes(tonic, major))] = 1.0
    out[:] = np.resize(pcs, out.shape[0])
    return out


def chord_pitch_classes(index: int) -> tuple[int, ...]:
    """Absolute pitch classes of a chord class index, root first; ``()`` for no chord."""
    chord = spec.chord_of_index(index)
    if chord is None:
        return ()
    root, quality = chord
    return tuple((root + i) % 12 for i in spec.CHORD_INTERVALS[quality])


def chord_root(index: int) -> int | None:
    """Root pitch class of a chord class index, None for no chord."""
    chord = spec.chord_of_index(index)
    return None if chord is None else chord[0]


def tonic_triad(tonic: int, major: bool) -> tuple[int, ...]:
    """Pitch classes of the tonic triad (always in the key)."""
    return (tonic % 12, (tonic + (4 if major else 3)) % 12, (tonic + 7) % 12)


def lowest_pitch(pc: int, low: int, high: int) -> int | None:
    """The lowest MIDI note of pitch class ``pc`` in ``[low, high]``, or None."""
    pitch = low + (pc - low) % 12
    return pitch if pitch <= high else None


def nearest_pitch(pcs: tuple[int, ...], ref: float, low: int, high: int) -> int | None:
    """The note in ``[low, high]`` with a pitch class in ``pcs`` nearest ``ref`` (ties: lower), or None."""
    best: int | None = None
    for p in range(low, high + 1):
        if p % 12 in pcs and (best is None or abs(p - ref) < abs(best - ref)):
            best = p
    return best


def close_voicings(pcs: tuple[int, ...], low: int, high: int) -> list[tuple[int, ...]]:
    """Every close-position voicing (each inversion, each octave) of ``pcs`` inside ``[low, high]``.

    A close voicing stacks the chord tones upward from its bottom note, each the next chord tone
    above the last, so it spans less than an octave.
    """
    if not pcs:
        return []
    n = len(pcs)
    out = []
    for bottom in range(low, high + 1):
        pc = bottom % 12
        if pc not in pcs:
            continue
        i = pcs.index(pc)
        notes = [bottom]
        for k in range(1, n):
            nxt = pcs[(i + k) % n]
            notes.append(notes[-1] + (nxt - notes[-1]) % 12)
        if notes[-1] <= high:
            out.append(tuple(notes))
    return out


def voice_leading_cost(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """Total movement in semitones from voicing ``a`` to voicing ``b``.

    Same size: voices paired bottom to top. Otherwise each note's distance to the nearest note of
    the other voicing, summed both ways (a voice may split or merge).
    """
    if len(a) == len(b):
        return sum(map(abs, map(operator.sub, sorted(a), sorted(b))))
    if not a or not b:
        raise ValueError("voice_leading_cost: an empty voicing has no nearest notes")
    return _nearest_distances(a, b) + _nearest_distances(b, a)


def _nearest_distances(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """Sum over the notes of ``a`` of the distance to the nearest note of ``b`` (non-empty).

    Plain loops: a chord change can need this inside the audio hop, several times, and nested
    generator expressions cost about three times as much.
    """
    total = 0
    for x in a:
        nearest = abs(x - b[0])
        for y in b:
            d = abs(x - y)
            if d < nearest:
                nearest = d
        total += nearest
    return total


VOICING_TABLE_SIZE = 1024
"""Chord/range candidate tables :func:`choose_voicing` keeps. A generator uses one chord range, so
61 at most are in use; the bound only keeps a process whose ranges change from growing it forever."""


def choose_voicing(pcs: tuple[int, ...], low: int, high: int, previous: tuple[int, ...]) -> tuple[int, ...]:
    """A voicing of ``pcs`` inside ``[low, high]`` with the least movement from ``previous``.

    With no previous voicing, the close voicing centred nearest the middle of the range. When the
    range is too narrow for a close voicing, each chord tone nearest the middle (duplicates and
    tones with no note in range dropped). ``()`` when nothing fits.

    The choice is the least ``(voice_leading_cost(previous, v), distance of v's mean from the
    middle, v)`` over :func:`close_voicings` (without a previous voicing, the cost is left out).
    It can run inside the audio hop, so the candidates and their distances are tabled per chord
    and range.
    """
    candidates = _centred_voicings(tuple(map(int, pcs)), int(low), int(high))
    if not candidates:
        centre = (low + high) / 2.0
        notes = {nearest_pitch((pc,), centre, low, high) for pc in pcs}
        return tuple(sorted(p for p in notes if p is not None))
    if not previous:
        return min(candidates)[1]
    if len(previous) == len(pcs):
        # a close voicing is sorted already (each note at or above the last), so voice_leading_cost's
        # bottom-to-top pairing only needs ``previous`` sorted, once
        prev = sorted(previous)
        return min([(sum(map(abs, map(operator.sub, prev, v))), d, v) for d, v in candidates])[2]
    return min([(voice_leading_cost(previous, v), d, v) for d, v in candidates])[2]


@functools.lru_cache(maxsize=VOICING_TABLE_SIZE)
def _centred_voicings(pcs: tuple[int, ...], low: int, high: int) -> tuple[tuple[float, tuple[int, ...]], ...]:
    """``(distance of the mean from the range's middle, voicing)`` of each close voicing."""
    centre = (low + high) / 2.0
    return tuple((abs(sum(v) / len(v) - centre), v) for v in close_voicings(pcs, low, high))


def allowed_chords(probs: np.ndarray, tonic: int, major: bool) -> np.ndarray:
    """(61,) bool: chords the generator may choose: diatonic ones, or probability >= STRONG_PREFERENCE.

    Diatonic: every chord tone in the key's scale (in minor, the harmonic-minor leading tone
    too, so V and V7 are available). A root in the key is not enough: Abm in Ab major has a Cb.
    "No chord" is always allowed. ``probs`` is the (61,) chord distribution (non-negative).
    """
    allowed = np.ones(spec.N_CHORD_CLASSES, dtype=bool)
    allowed[: spec.N_CHORDS] = _DIATONIC[(tonic % 12, bool(major))] | (probs[: spec.N_CHORDS] >= STRONG_PREFERENCE)
    return allowed


def diatonic_chords(tonic: int, major: bool) -> np.ndarray:
    """(60,) bool, read-only: the chords whose tones are all in the key's scale (see :func:`allowed_chords`)."""
    return _DIATONIC[(tonic % 12, bool(major))]


def _diatonic_table() -> dict[tuple[int, bool], np.ndarray]:
    table = {}
    for tonic in range(12):
        for major in (True, False):
            pcs = set(scale_pitch_classes(tonic, major))  # minor: with the leading tone
            table[(tonic, major)] = np.array(
                [set(chord_pitch_classes(i)) <= pcs for i in range(spec.N_CHORDS)], dtype=bool
            )
    return table


def choose_chord(
    probs: np.ndarray,
    *,
    current: int,
    tonic: int,
    major: bool,
    margin: float = HYSTERESIS,
) -> int:
    """The chord class to play from a (61,) non-negative chord distribution, with hysteresis.

    The candidate is the most probable allowed chord (:func:`allowed_chords`; ties: lowest index).
    It replaces ``current`` only if its probability beats the current chord's by ``margin``; a
    current chord that is no longer allowed (the key moved away from it) is replaced at once.
    """
    # Same answer as the argmax of ``np.where(allowed_chords(...), probs, -1.0)``, without building
    # the mask in the usual cases (this runs inside the audio hop).
    key = (tonic % 12, bool(major))
    in_key = _IN_KEY[key]
    p = probs[: spec.N_CHORD_CLASSES]
    best = int(p.argmax())
    top = p[best]
    if not (top >= STRONG_PREFERENCE or (in_key[best] and top > -1.0)):
        # The first maximum is not allowed. If it is below STRONG_PREFERENCE (so not NaN, and no
        # chord is strongly preferred), the allowed chords are the key's: take their first maximum,
        # unless it is at or below the mask's -1. Otherwise (NaN, or that case) build the mask.
        values = p.tolist()
        best = max(_KEY_CHORDS[key], key=values.__getitem__)
        if not (top < STRONG_PREFERENCE and values[best] > -1.0):
            best = int(np.where(allowed_chords(probs, tonic, major), p, -1.0).argmax())
    if best == current:
        return current
    if not (in_key[current] or probs[current] >= STRONG_PREFERENCE):
        return best
    return best if probs[best] >= probs[current] + margin else current


_DIATONIC = _diatonic_table()
for _mask in _DIATONIC.values():
    _mask.flags.writeable = False
_IN_KEY = {key: (*diatonic.tolist(), True) for key, diatonic in _DIATONIC.items()}
"""Per key, a tuple over the 61 chord classes: diatonic, or "no chord" (always allowed)."""
_KEY_CHORDS = {key: tuple(i for i, ok in enumerate(in_key) if ok) for key, in_key in _IN_KEY.items()}
"""Per key, the chord classes of :data:`_IN_KEY`, ascending (so ``max`` breaks ties by the lowest)."""
