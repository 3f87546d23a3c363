"""Progression memory: learn the loop the player repeats, and say which chord comes on the next beat.

Recognition follows the player: a chord change is heard only once it has sounded, so the box's
change lands a beat after the player's. A repeated progression (a verse or chorus loop of 2-8
bars) is the common case in real playing, and once it has been heard the box can play each change
on the beat it happens. :class:`ProgressionMemory` is fed, once per beat, the chord recognised on
that beat (an index of the chord vocabulary in :mod:`kelly_edge.models.spec`) and its confidence;
it compares every beat with the beat one candidate period earlier, locks onto the period that
keeps matching, and predicts the chord of an upcoming beat from the last pass. A confident beat
that contradicts the prediction drops the lock at once, so a player who leaves the loop is
followed by recognition again from the next beat; when the beat after it matches the loop again,
it was a slip (of the player or the recogniser): the lock is back and the slip forgotten.

A departure of a bar or two that returns to the loop is remembered as one. Across it a loop of
twice the period matches from the return on as long as the loop itself does, and wins (a longer
period wins ties, for a figure repeated inside a longer loop), so a pass later it would have
predicted the departure's chords again. It predicts the loop's there instead, once the departure
is known not to be part of the longer loop: the beat a longer period before it was heard as
something else.

Matching is tolerant in two ways: beats recognised with low confidence (or as "no chord") neither
confirm nor contradict, and chords count as the same when they share a root and a third (``C`` and
``C7``, ``Am`` and ``Am7``: recognisers confuse the seventh far more often than the triad).

Cost: one observation is a loop over the 7 candidate periods with integer compares (a few
microseconds); a prediction is a lookup. Nothing is allocated per call.
"""

from __future__ import annotations

import math

from kelly_edge.models import spec

BEATS_PER_BAR = 4
MIN_BARS, MAX_BARS = 2, 8
MIN_CONFIDENCE = 0.4
"""Recognitions below this confidence are treated as not heard (no evidence either way)."""
LOCK_BEATS = 4
"""Beats (a bar) that must match one period earlier before the memory predicts anything."""
MAX_AWAY_BEATS = 8
"""A departure from a locked loop that returns to it within this many beats (two bars) is a
one-off: its beats are remembered as such (see :meth:`ProgressionMemory._expected`). A longer one
is new material, learnt like any other."""
UNKNOWN = -1

_QUALITY = {q: i for i, q in enumerate(spec.CHORD_QUALITIES)}
_TRIAD = {"maj": "maj", "7": "maj", "min": "min", "m7": "min", "dim": "dim"}


def _family(index: int) -> int:
    """The chord's (root, triad) as one number: chords of one family match each other."""
    chord = spec.chord_of_index(index)
    if chord is None:
        return UNKNOWN
    root, quality = chord
    return root * len(_QUALITY) + _QUALITY[_TRIAD[quality]]


_FAMILY = [_family(i) for i in range(spec.N_CHORD_CLASSES)]


def same_family(a: int, b: int) -> bool:
    """Whether chord classes ``a`` and ``b`` share a root and a triad (``C`` and ``C7`` do);
    "no chord" (and anything outside the vocabulary) is of no family, not even its own."""
    fa = _FAMILY[a] if 0 <= a < spec.N_CHORD_CLASSES else UNKNOWN
    return fa != UNKNOWN and fa == (_FAMILY[b] if 0 <= b < spec.N_CHORD_CLASSES else UNKNOWN)


class ProgressionMemory:
    """Detects a repeating chord loop in a per-beat chord stream and predicts its next beats.

    Beats are absolute indices (beat ``b`` is 16th step ``4 b``), increasing; a beat that is never
    observed counts as not heard. Only the chord class indices ``0 .. spec.N_CHORD_CLASSES - 1`` are
    meaningful; ``spec.NO_CHORD`` is not heard.
    """

    def __init__(self, *, min_bars: int = MIN_BARS, max_bars: int = MAX_BARS,
                 min_confidence: float = MIN_CONFIDENCE) -> None:
        if not 1 <= min_bars <= max_bars:
            raise ValueError(f"ProgressionMemory: bars {min_bars}..{max_bars} is not a range of periods")
        self._periods = tuple(b * BEATS_PER_BAR for b in range(min_bars, max_bars + 1))
        self._min_confidence = float(min_confidence)
        self._size = 2 * self._periods[-1] + BEATS_PER_BAR  # two passes of the longest loop and a bar
        self._chords = [UNKNOWN] * self._size  # the chord heard on each beat, ring by beat index
        self._last = -1  # the last beat observed
        self._last_heard = UNKNOWN  # the family of the last beat heard
        self._run = {p: 0 for p in self._periods}  # beats heard in a row that matched p beats earlier
        self._changes = {p: 0 for p in self._periods}  # chord changes among those beats
        self._period = 0  # the locked period in beats, 0 = none
        self._broken = (0, 0, 0, 0)  # (period, run, changes, beat) of a lock the last heard beat broke
        self._away_from = [0] * self._size  # per beat: the period of the loop a one-off departure left, 0 none
        self._away = 0  # the loop the player is away from now (a departure under way), 0 none
        self._away_start = 0

    # --- public API -------------------------------------------------------------------------
    @property
    def period_beats(self) -> int:
        """The locked loop's length in beats, 0 when the memory predicts nothing."""
        return self._period

    def reset(self) -> None:
        """Forget everything (a new song, a panic)."""
        self._chords[:] = [UNKNOWN] * self._size
        self._last = -1
        self._last_heard = UNKNOWN
        for p in self._periods:
            self._run[p] = self._changes[p] = 0
        self._period = 0
        self._broken = (0, 0, 0, 0)
        self._away_from[:] = [0] * self._size
        self._away = 0

    def observe(self, beat: int, chord: int, confidence: float) -> None:
        """The chord recognised on ``beat`` with ``confidence`` 0..1 (a beat at or before the last
        observed one is ignored: the stream only moves forward)."""
        beat = int(beat)
        if beat <= self._last:
            return
        size = self._size
        for b in range(max(self._last + 1, beat - size + 1), beat + 1):  # beats skipped: not heard
            self._chords[b % size] = UNKNOWN
            self._away_from[b % size] = 0
        self._last = beat
        heard = 0 <= chord < spec.N_CHORD_CLASSES and confidence >= self._min_confidence
        c = chord if heard and chord != spec.NO_CHORD else UNKNOWN
        self._chords[beat % size] = c
        if c == UNKNOWN:
            return
        broken, self._broken = self._broken, (0, 0, 0, 0)
        if self._away:
            self._follow_departure(beat, c)
        if self._period:
            expected = self._expected(beat)
            if expected != UNKNOWN and _FAMILY[expected] != _FAMILY[c]:
                # the player left the loop (or the recogniser slipped): follow recognition at once
                p = self._period
                self._broken = (p, self._run[p], self._changes[p], beat)
                self._period = 0
                self._run[p] = self._changes[p] = 0
                self._away, self._away_start = p, beat
                self._away_from[beat % size] = p
        changed = self._last_heard != UNKNOWN and self._last_heard != _FAMILY[c]
        self._last_heard = _FAMILY[c]
        for p in self._periods:
            ref = self._reference(beat, p) if beat >= p else UNKNOWN
            if ref == UNKNOWN:
                continue
            if _FAMILY[ref] == _FAMILY[c]:
                self._run[p] += 1
                self._changes[p] += changed
            else:
                self._run[p] = self._changes[p] = 0
        p, run, changes, at = broken
        if p and self._run[p] == 1 and beat - at <= BEATS_PER_BAR:
            # the beat after a break matches the loop again: one slip, not a departure; the slip
            # is forgotten, so the next pass predicts from the pass before
            self._run[p], self._changes[p] = run + 1, changes
            self._chords[at % size] = UNKNOWN
            self._away_from[at % size] = 0
            self._away = 0
            self._period = p
        if not self._period:
            self._period = self._best_period()

    def predict(self, beat: int) -> tuple[int, float]:
        """``(chord, confidence)`` expected on ``beat`` (after the last observed one, within a
        period of it); ``(spec.NO_CHORD, 0.0)`` when no loop is locked or that beat of the last pass
        was not heard. The chord is the one heard a period earlier (two periods when one was not)."""
        p = self._period
        if not p or not 0 < beat - self._last <= p:
            return spec.NO_CHORD, 0.0
        c = self._expected(beat)
        if c == UNKNOWN:
            return spec.NO_CHORD, 0.0
        return c, min(1.0, 0.6 + 0.4 * self._run[p] / p)

    # --- internals --------------------------------------------------------------------------
    def _follow_departure(self, beat: int, c: int) -> None:
        """A heard beat while the player is away from the loop of period ``_away``: back on it
        (the chord the loop has there, a period earlier or two), or one more beat of the
        departure; one that lasts over :data:`MAX_AWAY_BEATS` was no one-off and is forgotten as
        a departure."""
        q, size = self._away, self._size
        ref = self._chords[(beat - q) % size] if self._away_from[(beat - q) % size] == 0 else UNKNOWN
        if ref == UNKNOWN and beat - 2 * q > self._last - size:
            ref = self._chords[(beat - 2 * q) % size]
        if ref != UNKNOWN and _FAMILY[ref] == _FAMILY[c]:
            self._away = 0
            return
        if beat - self._away_start >= MAX_AWAY_BEATS:
            for b in range(self._away_start, beat):
                self._away_from[b % size] = 0
            self._away = 0
            return
        self._away_from[beat % size] = q

    def _expected(self, beat: int) -> int:
        """What the locked loop says for ``beat`` (within a period after the last observed beat,
        or the last one itself)."""
        return self._reference(beat, self._period)

    def _reference(self, beat: int, p: int) -> int:
        """What a loop of period ``p`` says for ``beat`` (at most ``p`` after the last observed
        beat): the chord a period earlier, or two when that beat was not heard.

        When that beat was a one-off departure from a loop of a period ``q`` that divides ``p``,
        and the beat a period before it was heard as another chord (so the departure is not part of
        a loop of period ``p``), the chord is the loop's: the one ``q`` beats before ``beat``."""
        size = self._size
        src = beat - p
        c = self._chords[src % size]
        q = self._away_from[src % size]
        if q and q < p and p % q == 0 and src - p > self._last - size and beat - q <= self._last:
            before = self._chords[(src - p) % size]
            if before != UNKNOWN and c != UNKNOWN and _FAMILY[before] != _FAMILY[c]:
                return self._chords[(beat - q) % size] if self._away_from[(beat - q) % size] == 0 else UNKNOWN
        if c == UNKNOWN and beat - 2 * p > self._last - size:
            c = self._chords[(beat - 2 * p) % size]
        return c

    def _best_period(self) -> int:
        """The period with the longest matching run, if it is long enough to trust. A true loop of
        p beats also matches at its multiples, but from one pass later, so its run is the longer;
        equal runs mean the shorter period broke where the longer did not start yet (a figure
        repeated inside a longer loop): the longer one wins ties. A run with no chord change in it
        must cover half the period: a held chord matches every period and says nothing."""
        best, best_run = 0, 0
        for p in self._periods:
            run = self._run[p]
            if run >= best_run and run >= LOCK_BEATS and (self._changes[p] >= 1 or 2 * run >= p):
                best, best_run = p, run
        return best


class RecognitionLag:
    """How long recognition takes to hear a chord change, learnt from where in the beat the heard
    changes fall.

    Players change chord on a beat, so a change recognised ``d`` 16th steps after it shows up
    ``d mod 4`` steps into a beat. The circular mean of those phases (recent changes weigh most)
    gives the lag modulo a beat; the whole beats are taken so that the lag lies in
    ``[min_s, min_s + a beat)`` (recognition needs at least ``min_s``; a lag of a beat or more
    past that would leave the box a beat behind anyway). Until ``MIN_CHANGES`` changes have been
    heard it is ``initial_s``. Cost: a few float operations per heard change.
    """

    MIN_CHANGES = 3

    def __init__(self, *, initial_s: float = 0.4, min_s: float = 0.1, decay: float = 0.8) -> None:
        self._initial_s, self._min_s, self._decay = float(initial_s), float(min_s), float(decay)
        self._c = self._s = 0.0
        self._n = 0

    def heard_change(self, phase: float) -> None:
        """A change was recognised ``phase`` (0..1) of a beat after the beat's start."""
        a = 2.0 * math.pi * phase
        self._c = self._decay * self._c + math.cos(a)
        self._s = self._decay * self._s + math.sin(a)
        self._n += 1

    @property
    def known(self) -> bool:
        """Whether enough changes were heard to say (before that, :meth:`seconds` is the guess)."""
        return self._n >= self.MIN_CHANGES

    def seconds(self, beat_s: float) -> float:
        """The lag in seconds at a beat of ``beat_s`` seconds."""
        if not self.known or not (self._c or self._s):
            return self._initial_s
        phase_s = (math.atan2(self._s, self._c) / (2.0 * math.pi)) % 1.0 * beat_s
        return self._min_s + (phase_s - self._min_s) % beat_s
