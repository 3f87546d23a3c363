"""A reactive generator playing a learnt loop: a recogniser's flicker shorter than a beat does not
throw the loop away; a contradiction that lasts a beat does.

The recogniser is modelled as the box hears it at the hop rate: the chord the player played
:data:`LAG_S` ago, with a confident distribution. In the third pass of a C-Am-F-G loop (one chord
a bar on a 0.125 s 16th grid) it names E for half a 16th (one planned step sees it) in the middle
of the Am bar (a minor chord heard as the major on its third, as the harmony model does in
arpeggios). Played predictions are given up only after
:data:`~kelly_edge.generate.generator.GIVE_UP_STEPS` steps of contradiction, and the memory
dropping the loop for the flicker's beat costs no trust: given up at the first step, or the trust
reset by the memory's slip (as before), the flicker was struck and the loop's next change fell to
recognition, a lag late."""

from __future__ import annotations

import numpy as np

from kelly_edge.generate.progression import ProgressionMemory
from kelly_edge.models import spec
from tests.generate.gen_harness import Outputs, Settings, check_invariants, run
from tests.generate.test_progression_memory import beats_of

STEP_S = 0.125
BEAT_S = 4 * STEP_S
BAR_S = 4 * BEAT_S
LAG_S = 0.2
LOOP = beats_of(["C", "Am", "F", "G"])  # 16 beats
PASSES = 5
C = spec.chord_index(0, "maj")
E = spec.chord_index(4, "maj")  # G# is the tell: no chord of the loop has it
D_MINOR = spec.chord_index(2, "min")


def heard(played: list[int], wrong: tuple[float, float, int] | None = None):
    """time -> the distribution naming the chord played LAG_S ago (``wrong``: (start, end, chord)
    named instead in that window)."""

    def at(t: float) -> np.ndarray:
        h = np.full(64, 0.1 / 60, np.float32)
        if wrong is not None and wrong[0] <= t < wrong[1]:
            h[wrong[2]] = 0.9
            return h
        beat = int(max(0.0, t - LAG_S) // BEAT_S)
        h[played[min(beat, len(played) - 1)]] = 0.9
        return h

    return at


def play(played: list[int], wrong: tuple[float, float, int] | None = None):
    s = Settings()
    r = run(s, 4 * len(played), Outputs.default(chord=C), step_s=STEP_S, progression=ProgressionMemory(),
            heard=heard(played, wrong))
    check_invariants(r, s)
    return r, s


def first_strike_after(r, s, t0: float, pitch_class: int) -> float:
    return min(n.start for n in r.notes(s.chord.channel) if n.start >= t0 - 1e-9 and n.note % 12 == pitch_class)


def test_a_flicker_shorter_than_a_beat_keeps_the_loop_and_its_next_change_on_the_beat() -> None:
    played = LOOP * PASSES
    third_pass = 2 * 4 * BAR_S
    am_bar = third_pass + BAR_S
    flicker = (am_bar + 2 * BEAT_S, am_bar + 2 * BEAT_S + STEP_S / 2, E)  # seen by one planned step
    r, s = play(played, flicker)
    chord = r.notes(s.chord.channel)
    assert not [n for n in chord if n.note % 12 == 8], "the flicker's E was struck"
    f_bar = am_bar + BAR_S
    # the loop's F comes on the player's beat, as in the pass before, not a recognition lag late
    assert abs(first_strike_after(r, s, f_bar - BEAT_S, 5) - f_bar) < 1e-6
    clean, _ = play(played)  # as without the flicker
    assert abs(first_strike_after(clean, s, f_bar - BEAT_S, 5) - f_bar) < 1e-6


def test_a_contradiction_that_lasts_is_followed_within_a_beat_and_a_lag() -> None:
    played = LOOP * PASSES
    f_bar = 2 * 4 * BAR_S + 2 * BAR_S
    departed = played.copy()
    f_beat = int(round(f_bar / BEAT_S))
    departed[f_beat : f_beat + 4] = [D_MINOR] * 4  # the player plays Dm instead of F, for a bar
    r, s = play(departed)
    d_minor_on = first_strike_after(r, s, f_bar - BEAT_S, 2)  # D: in Dm only
    assert f_bar < d_minor_on <= f_bar + LAG_S + BEAT_S + 2 * STEP_S
    # F (the loop's prediction) stops once the departure is followed
    assert not [n for n in r.notes(s.chord.channel) if n.note % 12 == 5 and n.start < d_minor_on < n.end - 1e-6]
