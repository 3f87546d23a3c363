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


# --- melody shaping -----------------------------------------------------------------------------
# Tables over a signed interval d (semitones) stored at index d + INTERVAL_OFFSET, so the weights
# of a voice's whole range relative to one pitch are a slice: no per-step allocation.
INTERVAL_OFFSET = 127
LEAP = 5
"""An interval of at least this many semitones is a leap; the next note should resolve it by step."""
REPEAT_WEIGHT = 0.3
"""Weight of repeating the last pitch (a held line is fine now and then, a drone is not)."""


def interval_weights(after_leap: int = 0) -> np.ndarray:
    """(255,) weights of the melodic interval from the last note: steps first, leaps rare.

    ``after_leap`` +1 (the last interval leapt up) or -1 (down): a step back the other way is
    preferred and anything else is rare (a leap is resolved by step in the opposite direction).
    """
    w = np.empty(2 * INTERVAL_OFFSET + 1)
    for i in range(w.size):
        d = abs(i - INTERVAL_OFFSET)
        w[i] = (REPEAT_WEIGHT if d == 0 else 1.0 if d <= 2 else 0.6 if d <= 4 else 0.25 if d <= 7
                else 0.08 if d <= 12 else 0.01)
    if after_leap:
        for i in range(w.size):
            d = i - INTERVAL_OFFSET
            if not (1 <= -d * after_leap <= 2):
                w[i] *= 0.1
    return w


def contour_weights(sigma: float, floor: float = 0.05) -> np.ndarray:
    """(255,) a bell over the distance from the contour's target pitch, never below ``floor``."""
    d = np.arange(2 * INTERVAL_OFFSET + 1) - INTERVAL_OFFSET
    return np.maximum(np.exp(-0.5 * (d / float(sigma)) ** 2), floor)


def chord_tone_weights(index: int, low: int, high: int, other: float) -> np.ndarray:
    """(high - low + 1,) 1.0 on the chord's tones in ``[low, high]``, ``other`` elsewhere (all 1.0 for no chord)."""
    pcs = chord_pitch_classes(index)
    return np.array([1.0 if not pcs or p % 12 in pcs else other for p in range(low, high + 1)])


LOOP_MAX_STEPS = 15
"""16ths: the longest stretch of three or more melody notes on at most two pitches, first onset
to last release: a bar less a 16th. A melody note ends by the next beat, so its release is known
ahead on the grid; what a listener hears also moves by the micro-timing and humanising (up to half
a 16th early) and the grid that follows the player bending its rate, and a stretch allowed the
whole bar on the grid measured 0.98 bar played (bwv4.8): the 16th is that slack, so "no two-note
loop for more than a bar" holds as played, not only as planned."""
SLOW_REPEAT_STEPS = 8
"""16ths: a repeat of the last pitch further apart than this leaves no room for a third note
inside :data:`LOOP_MAX_STEPS`, so it is avoided."""
LOOP_BREAK_STEPS = 24
"""16ths between two onsets that certainly leave a bar of silence between the notes (a note lasts
at most a beat, so 20 would do on a fixed grid; the grid that follows the player bends its rate by
up to ~6 % a beat, so a bar of 16ths can be shorter than the bar a listener hears): a line picked
up after that is not a loop."""


def loop_guard(pitches: list[int], steps: list[int], now: int) -> tuple[tuple[int, ...], bool]:
    """What a next melody note at step ``now`` must avoid to make no two-note loop.

    Returns ``(pitches to avoid, rest)``. ``pitches``/``steps``: the last melody notes and their
    onset steps (absolute 16ths), oldest first. A loop is a stretch of 3 or more consecutive notes
    (no onset gap of :data:`LOOP_BREAK_STEPS`) on at most two pitches lasting longer than
    :data:`LOOP_MAX_STEPS`, or of 4 or more notes however short (a wobble). A next note on the
    last pitch or the one before it in the stretch extends the whole stretch; any other pitch
    extends only the run of repeats of the last pitch. When both would be a loop, ``rest`` is
    True: no note now is the only way out. To keep out of that corner a third repeat of a pitch,
    or a second one more than :data:`SLOW_REPEAT_STEPS` later, is avoided too.
    """
    n = len(pitches)
    if n < 2 or now - steps[-1] >= LOOP_BREAK_STEPS:
        return (), False
    last = pitches[-1]
    i = n - 1
    while i > 0 and pitches[i - 1] == last and steps[i] - steps[i - 1] < LOOP_BREAK_STEPS:
        i -= 1
    i_run = i  # the run of repeats of the last pitch starts here
    other: int | None = None
    while i > 0 and steps[i] - steps[i - 1] < LOOP_BREAK_STEPS:
        q = pitches[i - 1]
        if q != last and other is None:
            other = q
        elif q != last and q != other:
            break
        i -= 1
    release = now - now % 4 + 4  # the next note ends by the next beat

    def loop(start: int) -> bool:
        count = n - start + 1  # with the next note
        return count >= 4 or (count >= 3 and release - steps[start] > LOOP_MAX_STEPS)

    if loop(i):
        avoid = (last,) if other is None else (last, other)
        return avoid, loop(i_run)
    repeats = n - i_run + 1  # of the last pitch, with the next note
    if repeats >= 3 or (repeats == 2 and now - steps[i_run] > SLOW_REPEAT_STEPS):
        return (last,), False  # a repeat now would leave no next note that is not a loop
    return (), False
