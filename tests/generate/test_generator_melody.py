"""The melody as music, measured by tests/generate/melody_metrics.py on what reached the sink:
chord tones on beats, phrases with breaths, the range used, no two-note loop longer than a bar,
and fewer notes when the player is busy. The model outputs include the one that made the old
melody wobble: a distribution stuck on two neighbouring notes."""

from __future__ import annotations

import numpy as np
import pytest

from kelly_edge.generate import theory
from kelly_edge.models import spec
from tests.generate.gen_harness import HIT, Outputs, Settings, check_invariants, run
from tests.generate.melody_metrics import melody_metrics

STEP_S = 0.125
N_BARS = 32
PROGRESSION = [spec.chord_index(r, q) for r, q in ((0, "maj"), (9, "min"), (5, "maj"), (7, "7"))]


def song(melody_kind: str, seed: int = 0, onset_rate: float = 0.0):
    """A 4-bar loop of C Am F G7 with a melody model of the given kind; returns (run, settings)."""
    rng = np.random.default_rng(seed)
    s = Settings(seed=seed)
    base = Outputs.default()
    base.groove[HIT] = 0.6
    cache: dict[int, Outputs] = {}

    def outputs(k: int) -> Outputs:
        if k not in cache:
            h = np.zeros(64, np.float32)
            h[PROGRESSION[(k // 16) % 4]] = 0.9
            m = np.full(128, 1e-4, np.float32)
            if melody_kind == "stuck":  # the wobble: all mass on two neighbours
                m[[72, 74]] = (0.6, 0.4)
            elif melody_kind == "uniform":
                m[:] = 1.0 / 128
            else:  # a peaked, wandering model
                centre = 60 + 24 * rng.random()
                m[:] = np.exp(-0.5 * ((np.arange(128) - centre) / 2.0) ** 2)
            cache[k] = base.copy(harmony=h, melody=m / m.sum(), player_onset_rate=onset_rate)
        return cache[k]

    r = run(s, 16 * N_BARS, outputs)
    check_invariants(r, s)
    return r, s


def metrics(r, s):
    beats = [i * 4 * STEP_S for i in range(4 * N_BARS + 1)]
    return melody_metrics(r.events, beats, melody_channel=s.melody.channel, chord_channel=s.chord.channel,
                          low=s.melody.low, high=s.melody.high)


@pytest.mark.parametrize("kind", ["stuck", "uniform", "peaked"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_melody_is_phrased_on_chord_tones_without_two_note_loops(kind: str, seed: int) -> None:
    m = metrics(*song(kind, seed))
    assert m.melody_notes >= 4 * N_BARS  # it still plays: about 4 notes a bar at least
    assert m.longest_two_pitch_bars <= 1.0
    assert m.strong_chord_tone_share >= 0.9
    assert m.rests_per_phrase >= 0.9 and m.phrases >= N_BARS // 2  # a breath every 1-2 bars
    assert m.range_share >= (0.3 if kind == "stuck" else 0.6)


def test_the_model_still_chooses_the_notes() -> None:
    """Shaping leans on the model; it does not replace it: a stuck model's two notes stay its most
    played ones, and a peaked model's notes follow its peak."""
    r, s = song("stuck")
    notes = [n.note for n in r.notes(s.melody.channel)]
    counts = sorted(((notes.count(p), p) for p in set(notes)), reverse=True)
    assert {p for _, p in counts[:2]} == {72, 74}
    assert (counts[0][0] + counts[1][0]) / len(notes) >= 0.4


def test_phrases_move_step_wise_with_leaps_resolved() -> None:
    r, s = song("uniform")
    notes = [n.note for n in r.notes(s.melody.channel)]
    steps = np.abs(np.diff(notes))
    assert np.mean(steps <= 4) >= 0.7  # mostly steps and small skips
    leaps = [i for i in range(1, len(notes) - 1) if abs(notes[i] - notes[i - 1]) >= theory.LEAP]
    resolved = [np.sign(notes[i + 1] - notes[i]) == -np.sign(notes[i] - notes[i - 1]) for i in leaps]
    assert np.mean(resolved) >= 0.7


def test_a_busy_player_gets_room() -> None:
    quiet = metrics(*song("uniform", onset_rate=1.0))
    busy = metrics(*song("uniform", onset_rate=9.0))
    assert busy.notes_per_s <= 0.6 * quiet.notes_per_s
    assert busy.melody_notes >= N_BARS  # thinner, not silent


def test_loop_guard_cases() -> None:
    g = theory.loop_guard
    assert g([60, 62, 60], [0, 2, 4], 6) == ((60, 62), False)  # a 4th note of a wobble
    assert g([60, 62], [0, 2], 4) == ((), False)  # A B A quickly is a neighbour figure
    assert g([60, 62], [0, 9], 16)[0] == (62, 60)  # A B A ending past a bar
    assert g([60, 60], [0, 8], 17) == ((60,), True)  # every next note would be a loop: rest
    assert g([60, 62, 60], [0, 2, 40], 44) == ((), False)  # a bar's silence ends the stretch
    assert g([60, 60], [0, 2], 4) == ((60,), False)  # no third repeat


def test_between_the_beats_a_non_chord_tone_comes_by_step() -> None:
    """A passing or neighbour tone is reached by step; one reached by a leap sounds like a wrong
    note. Before this rule, half of the melody's non-chord tones between the beats were leapt to
    (the peaked model: two thirds)."""
    by_step = by_leap = 0
    for kind in ("uniform", "peaked"):
        for seed in (0, 1, 2):
            r, s = song(kind, seed)
            prev = None
            for n in r.notes(s.melody.channel):
                step = int(round(n.start / STEP_S))
                tones = theory.chord_pitch_classes(PROGRESSION[(step // 16) % 4])
                if prev is not None and step % 4 != 0 and n.note % 12 not in tones:
                    if abs(n.note - prev) <= 2:
                        by_step += 1
                    else:
                        by_leap += 1
                prev = n.note
    assert by_step >= 200  # passing tones are still played
    assert by_leap <= 0.25 * (by_step + by_leap), (by_step, by_leap)
