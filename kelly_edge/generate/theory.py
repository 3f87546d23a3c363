"""Music theory the generator needs: scales, chord tones, voicings, and the chord decision.

Pure functions over pitch classes (0..11, C = 0) and MIDI note numbers. They run when a step is
planned (about ten times a second), not per hop, so small tuples and lists are fine here.
"""

from __future__ import annotations

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
        return sum(abs(x - y) for x, y in zip(sorted(a), sorted(b)))
    return sum(min(abs(x - y) for y in b) for x in a) + sum(min(abs(x - y) for x in a) for y in b)


def choose_voicing(pcs: tuple[int, ...], low: int, high: int, previous: tuple[int, ...]) -> tuple[int, ...]:
    """A voicing of ``pcs`` inside ``[low, high]`` with the least movement from ``previous``.

    With no previous voicing, the close voicing centred nearest the middle of the range. When the
    range is too narrow for a close voicing, each chord tone nearest the middle (duplicates and
    tones with no note in range dropped). ``()`` when nothing fits.
    """
    centre = (low + high) / 2.0
    candidates = close_voicings(pcs, low, high)
    if not candidates:
        notes = {nearest_pitch((pc,), centre, low, high) for pc in pcs}
        return tuple(sorted(p for p in notes if p is not None))

    def centre_distance(v: tuple[int, ...]) -> float:
        return abs(sum(v) / len(v) - centre)

    if not previous:
        return min(candidates, key=lambda v: (centre_distance(v), v))
    return min(candidates, key=lambda v: (voice_leading_cost(previous, v), centre_distance(v), v))


def allowed_chords(probs: np.ndarray, tonic: int, major: bool) -> np.ndarray:
    """(61,) bool: chords the generator may choose: diatonic ones, or probability >= STRONG_PREFERENCE.

    Diatonic: every chord tone in the key's scale (in minor, the harmonic-minor leading tone
    too, so V and V7 are available). A root in the key is not enough: Abm in Ab major has a Cb.
    "No chord" is always allowed. ``probs`` is the (61,) chord distribution (non-negative).
    """
    allowed = np.ones(spec.N_CHORD_CLASSES, dtype=bool)
    allowed[: spec.N_CHORDS] = _DIATONIC[(tonic % 12, bool(major))] | (probs[: spec.N_CHORDS] >= STRONG_PREFERENCE)
    return allowed


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
    allowed = allowed_chords(probs, tonic, major)
    masked = np.where(allowed, probs[: spec.N_CHORD_CLASSES], -1.0)
    best = int(np.argmax(masked))
    if best == current:
        return current
    if not allowed[current]:
        return best
    return best if probs[best] >= probs[current] + margin else current


_DIATONIC = _diatonic_table()
