"""The scores, each as a musician would judge the box, computed with mir_eval where it has one.

Every score ignores the first :data:`WARM_UP_S` seconds (the box has to hear something before it
can follow), except the key, which is one label per piece.

- ``beat_f``: mir_eval's beat F-measure (70 ms window) of the box's beats against the reference.
- ``downbeat_f``: the same F-measure of the box's bar lines against the reference's (where it
  knows them: the rendered pieces); a grid on the beats but a beat off the bar scores 0.
- ``tempo_ok``: share of reference beats at which the box's tempo is within :data:`TEMPO_TOL` of
  the local reference tempo (60 / median of the 4 beat intervals around the beat); a double or half
  tempo is a miss. A piece counts as "tempo right" when this is at least :data:`TEMPO_PIECE_SHARE`.
- ``key``: mir_eval's MIREX weighted key score (1 right, 0.5 a fifth, 0.3 relative, 0.2 parallel).
- ``chords_majmin``: mir_eval's majmin chord recognition of the box's chords, by duration.
- ``tone_<voice>``: share of the voice's note-ons whose pitch class is in the reference chord
  sounding then; notes in the first :data:`GRACE_S` after a chord change and during N.C. are not
  counted (a player needs a moment to hear a change), nor notes struck on a change a hair early
  (up to :data:`ON_BEAT_S` before it: they belong to the chord starting there, not the one ending).
- ``on_beat``: share of the chord and bass voices' note-ons within :data:`ON_BEAT_S` of a reference
  beat (the melody plays between beats on purpose, so it is not counted here).
- ``loop_*`` (pieces that repeat a 2-8 bar progression, :func:`loop_follow`): per chord change of
  the reference, the offset of the box's change to the same chord (box - player, seconds), in the
  loop's first pass and from its second pass on: the median offset, and the share within
  :data:`LOOP_WINDOW_S` (a change the box never makes is outside); ``departure_beat``: where the
  player leaves the loop, whether the box was on the departing chord within a beat of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

WARM_UP_S = 4.0
TEMPO_TOL = 0.04
TEMPO_PIECE_SHARE = 0.9
GRACE_S = 0.5
ON_BEAT_S = 0.07
VOICES = ("melody", "chord", "bass")
LOOP_WINDOW_S = 0.06


@dataclass(frozen=True)
class Reference:
    """Ground truth of one piece or recording; ``None`` fields are unknown (not scored)."""

    name: str
    duration: float
    beats: np.ndarray | None = None
    downbeats: np.ndarray | None = None
    key: str | None = None  # mir_eval key, e.g. "E minor"
    chords: Sequence[tuple[float, float, str]] | None = None  # (start, end, mir_eval label)
    loop_pass: Sequence[int] | None = None  # per chord: its pass of a repeated loop (0 first), -1 a departure


@dataclass
class Performance:
    """What one system played over a piece: note-ons per voice (``(t, pitch)``) and, where the
    system has them, its beats, tempo path ``[(t, bpm)]``, key and chord changes ``[(t, label)]``."""

    notes: dict[str, list[tuple[float, int]]]
    beats: np.ndarray | None = None
    downbeats: np.ndarray | None = None
    tempo: list[tuple[float, float]] | None = None
    key: str | None = None
    chords: list[tuple[float, str]] | None = None


def beat_f(ref: np.ndarray, est: np.ndarray) -> float:
    import mir_eval

    r = mir_eval.beat.trim_beats(np.asarray(ref, float), min_beat_time=WARM_UP_S)
    e = mir_eval.beat.trim_beats(np.asarray(est, float), min_beat_time=WARM_UP_S)
    return float(mir_eval.beat.f_measure(r, e)) if r.size and e.size else 0.0


def tempo_share(ref_beats: np.ndarray, tempo: Sequence[tuple[float, float]]) -> float:
    """Share of reference beats after the warm-up where the box's tempo is within TEMPO_TOL."""
    beats = np.asarray(ref_beats, float)
    if beats.size < 3 or not tempo:
        return 0.0
    intervals = np.diff(beats)
    t_change = np.array([t for t, _ in tempo])
    bpm = np.array([b for _, b in tempo])
    hits = total = 0
    for i in range(beats.size - 1):
        if beats[i] < WARM_UP_S:
            continue
        local = 60.0 / float(np.median(intervals[max(0, i - 2) : i + 2]))
        j = int(np.searchsorted(t_change, beats[i], side="right")) - 1
        est = bpm[max(j, 0)]
        total += 1
        hits += abs(est / local - 1.0) <= TEMPO_TOL
    return hits / total if total else 0.0


def key_score(ref: str, est: str) -> float:
    import mir_eval

    return float(mir_eval.key.weighted_score(ref, est))


def _intervals(changes: Sequence[tuple[float, str]], end: float) -> tuple[np.ndarray, list[str]]:
    marks = sorted((t, lab) for t, lab in changes if t < end)
    starts = [t for t, _ in marks]
    ends = starts[1:] + [end]
    keep = [i for i in range(len(marks)) if ends[i] > starts[i]]
    return np.array([[starts[i], ends[i]] for i in keep], float).reshape(-1, 2), [marks[i][1] for i in keep]


def chords_majmin(ref: Sequence[tuple[float, float, str]], est: Sequence[tuple[float, str]], duration: float,
                  *, warm_up_s: float = WARM_UP_S) -> float:
    """mir_eval majmin recognition of ``est`` changes against ``ref`` segments, after the warm-up."""
    import mir_eval

    ref_int = np.array([[max(s, warm_up_s), e] for s, e, _ in ref if e > warm_up_s], float).reshape(-1, 2)
    ref_lab = [lab for s, e, lab in ref if e > warm_up_s]
    if not ref_lab:
        return float("nan")
    end = float(ref_int[:, 1].max())
    est_int, est_lab = _intervals(list(est) or [(0.0, "N")], end)
    if not est_lab:
        est_int, est_lab = np.array([[0.0, end]]), ["N"]
    est_int, est_lab = mir_eval.util.adjust_intervals(est_int, est_lab, float(ref_int[:, 0].min()), end, "N", "N")
    ref_adj, ref_lab = mir_eval.util.adjust_intervals(ref_int, ref_lab, float(ref_int[:, 0].min()), end, "N", "N")
    intervals, r, e = mir_eval.util.merge_labeled_intervals(ref_adj, ref_lab, est_int, est_lab)
    durations = mir_eval.util.intervals_to_durations(intervals)
    comparison = mir_eval.chord.majmin(r, e)
    return float(mir_eval.chord.weighted_accuracy(comparison, durations))


def label_pcs(label: str) -> frozenset[int]:
    """Pitch classes of a mir_eval chord label (empty for N / X)."""
    import mir_eval

    root, bitmap, _ = mir_eval.chord.encode(label)
    if root < 0:
        return frozenset()
    return frozenset((root + int(i)) % 12 for i in np.flatnonzero(bitmap))


def chord_tone_counts(onsets: Sequence[tuple[float, int]], ref: Sequence[tuple[float, float, str]],
                      *, warm_up_s: float = WARM_UP_S) -> tuple[int, int]:
    """``(chord tones, counted)`` of note-ons against the reference chords (grace after changes)."""
    starts = np.array([s for s, _, _ in ref], float)
    pcs = [label_pcs(lab) for _, _, lab in ref]
    hits = total = 0
    for t, pitch in onsets:
        if t < warm_up_s:
            continue
        i = int(np.searchsorted(starts, t, side="right")) - 1
        if i < 0 or t >= ref[i][1] or not pcs[i] or t - starts[i] < GRACE_S:
            continue
        if i + 1 < len(starts) and starts[i + 1] - t <= ON_BEAT_S:  # on the next change, a hair early
            continue
        total += 1
        hits += (pitch % 12) in pcs[i]
    return hits, total


def on_beat_counts(onsets: Sequence[float], ref_beats: np.ndarray) -> tuple[int, int]:
    """``(on a beat, counted)`` of note-on times against the reference beats."""
    beats = np.sort(np.asarray(ref_beats, float))
    times = np.array([t for t in onsets if t >= WARM_UP_S], float)
    if not times.size or not beats.size:
        return 0, int(times.size)
    j = np.clip(np.searchsorted(beats, times), 1, beats.size - 1)
    nearest = np.minimum(np.abs(times - beats[j - 1]), np.abs(times - beats[j]))
    return int(np.count_nonzero(nearest <= ON_BEAT_S)), int(times.size)


def chord_family(label: str) -> tuple[int, tuple[int, ...]]:
    """Root and triad of a mir_eval label (``G:7`` is ``G:maj``'s): a change is matched by family."""
    import mir_eval

    root, bitmap, _ = mir_eval.chord.encode(label)
    return int(root), tuple(int(b) for b in bitmap[:8])


def loop_follow(ref: Sequence[tuple[float, float, str]], loop_pass: Sequence[int], beats: np.ndarray,
                est: Sequence[tuple[float, str]]) -> dict[str, tuple[int, int] | float | None]:
    """How the box's chord changes line up with the player's on a repeated progression.

    For each reference change after the warm-up (a chord of another family than the one before),
    the box's matching change is its last change to that chord's family before the last quarter
    of the chord, if the box was on that family by then (else it is missed); its offset is that change's time minus the
    player's (negative: early, e.g. from a wrong guess it kept). Changes are split by ``loop_pass``
    (0: the first pass, >= 1: later passes); ``loop_first_ok``/``loop_later_ok`` are ``(within
    LOOP_WINDOW_S, changes)``, ``loop_first_s``/``loop_later_s`` the median offsets (None: no change).
    ``departure_beat``: ``(followed, departures)``; a departure (the first chord of a ``-1`` run) is
    followed when the box is on its family within a beat of it (the beat: the reference beat
    interval there), whatever it played before.
    """
    beat_times = np.asarray(beats, float)
    fam = [chord_family(lab) for _, _, lab in ref]
    marks = sorted((t, chord_family(lab)) for t, lab in est)
    times = np.array([t for t, _ in marks], float)
    offsets: dict[int, list[float]] = {0: [], 1: []}
    missed = {0: 0, 1: 0}
    followed = departures = 0
    for i in range(1, len(ref)):
        start, end, _ = ref[i]
        if start < WARM_UP_S or fam[i] == fam[i - 1] or fam[i][0] < 0:
            continue
        # the box's changes from a quarter of the chord before into the last quarter of this one
        # (later ones belong to the next change), and the chord sounding before them
        lo = int(np.searchsorted(times, start - 0.25 * (start - ref[i - 1][0])))
        hi = int(np.searchsorted(times, end - 0.25 * (end - start)))
        span = marks[max(lo - 1, 0):hi]
        on_it = [t for t, f in span if f == fam[i]]
        right_at_end = bool(span) and span[-1][1] == fam[i]
        if loop_pass[i] >= 0:
            group = min(loop_pass[i], 1)
            if right_at_end:
                offsets[group].append(on_it[-1] - start)
            else:
                missed[group] += 1
        elif loop_pass[i - 1] >= 0:  # the player leaves the loop here
            j = int(np.clip(np.searchsorted(beat_times, start), 1, beat_times.size - 1))
            beat_s = float(beat_times[j] - beat_times[j - 1])
            departures += 1
            k = int(np.searchsorted(times, start + beat_s, side="right")) - 1
            followed += k >= 0 and marks[k][1] == fam[i]
    out: dict[str, tuple[int, int] | float | None] = {}
    for group, name in ((0, "first"), (1, "later")):
        found = np.array(offsets[group], float)
        out[f"loop_{name}_ok"] = (int(np.count_nonzero(np.abs(found) <= LOOP_WINDOW_S)), found.size + missed[group])
        out[f"loop_{name}_s"] = float(np.median(found)) if found.size else None
    out["departure_beat"] = (followed, departures) if departures else None
    return out


def score(ref: Reference, perf: Performance) -> dict[str, float | tuple[int, int] | None]:
    """Every score the reference and the performance allow; counts are kept as ``(hits, total)``
    so a set's ratio is pooled over its notes, not averaged over pieces."""
    out: dict[str, float | tuple[int, int] | None] = {}
    if ref.beats is not None and perf.beats is not None:
        out["beat_f"] = beat_f(ref.beats, perf.beats)
    if ref.downbeats is not None and perf.downbeats is not None:
        out["downbeat_f"] = beat_f(ref.downbeats, perf.downbeats)
    if ref.beats is not None and perf.tempo is not None:
        share = tempo_share(ref.beats, perf.tempo)
        out["tempo_share"] = share
        out["tempo_ok"] = float(share >= TEMPO_PIECE_SHARE)
    if ref.key is not None and perf.key is not None:
        out["key"] = key_score(ref.key, perf.key)
    if ref.chords is not None and perf.chords is not None:
        out["chords_majmin"] = chords_majmin(ref.chords, perf.chords, ref.duration)
    if ref.chords is not None:
        all_notes: list[tuple[float, int]] = []
        for voice, notes in perf.notes.items():
            out[f"tone_{voice}"] = chord_tone_counts(notes, ref.chords)
            all_notes += notes
        out["tone_all"] = chord_tone_counts(all_notes, ref.chords)
    if ref.chords is not None and ref.loop_pass is not None and ref.beats is not None and perf.chords is not None:
        out.update(loop_follow(ref.chords, ref.loop_pass, ref.beats, perf.chords))
    if ref.beats is not None:
        rhythm = [t for v in ("chord", "bass", "all") for t, _ in perf.notes.get(v, [])]
        out["on_beat"] = on_beat_counts(rhythm, ref.beats)
    return out
