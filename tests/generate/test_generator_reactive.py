"""A reactive generator (harmony at the hop rate): the chord voice follows the chord heard at the
hop it is recognised, not on the next planned 16th, and the bass takes the new root on the next
beat; out of key only when clearly heard."""

from __future__ import annotations

import numpy as np

from kelly_edge.models import spec
from tests.generate.gen_harness import Outputs, Settings, check_invariants, run

C, G, AB = spec.chord_index(0, "maj"), spec.chord_index(7, "maj"), spec.chord_index(8, "maj")
CHANGE_S = 1.03  # between two 16ths of the 0.125 s grid (1.0 and 1.125)
HOP_S = 0.01


def heard_chords(*changes: tuple[float, int], p: float = 0.9) -> object:
    """time -> a distribution naming the chord of the last change at or before it."""

    def at(t: float) -> np.ndarray:
        h = np.full(64, (1.0 - p) / 60, np.float32)
        chord = [c for start, c in changes if start <= t + 1e-9][-1]
        h[chord] = p
        return h

    return at


def test_a_heard_change_is_struck_at_the_hop_it_is_heard_not_on_the_next_16th() -> None:
    s = Settings()
    r = run(s, 32, Outputs.default(chord=C), heard=heard_chords((0.0, C), (CHANGE_S, G)))
    check_invariants(r, s)
    chord = r.notes(s.chord.channel)
    g_on = min(n.start for n in chord if {n.note % 12} <= {7, 11, 2} and n.start > 0.5)
    assert CHANGE_S <= g_on <= CHANGE_S + 2 * HOP_S  # the next 16th would be 1.125 s
    struck = {n.note % 12 for n in chord if abs(n.start - g_on) < 1e-9}
    assert struck == {7, 11, 2}
    # the C chord ends as G starts; nothing of C is struck after the change
    assert not [n for n in chord if n.note % 12 in (0, 4) and n.start < g_on < n.end]
    assert not [n for n in chord if n.start > g_on and n.note % 12 in (0, 4)]
    # the bass keeps the beat: the new root on the next beat (1.5 s), the old one never again
    bass = r.notes(s.bass.channel)
    assert [(n.start, n.note % 12) for n in bass if n.start > 0.9] [:2] == [(1.0, 0), (1.5, 7)]
    assert all(n.note % 12 == 7 for n in bass if n.start > CHANGE_S)
    assert r.gen.current_chord == G


def test_a_bass_note_planned_ahead_for_the_old_chord_takes_the_new_root() -> None:
    s = Settings()
    change = 1.93  # bar 1's downbeat (2.0 s) is planned by then, its bass on the old root
    r = run(s, 48, Outputs.default(chord=C), heard=heard_chords((0.0, C), (change, G)))
    check_invariants(r, s)
    bass = r.notes(s.bass.channel)
    assert [n.note % 12 for n in bass if n.start == 2.0] == [7]


def test_a_chord_held_steady_is_still_struck_on_the_grid() -> None:
    s = Settings()
    r = run(s, 48, Outputs.default(chord=C), heard=heard_chords((0.0, C)))
    check_invariants(r, s)
    starts = sorted({round(n.start, 6) for n in r.notes(s.chord.channel)})
    assert starts[0] == HOP_S  # the first chord as soon as it is heard (the hop after step 0 was planned)
    assert starts[1:] == [2.0, 4.0]  # then held, struck again at every bar start as before


def test_an_out_of_key_chord_is_played_only_while_it_is_clearly_heard() -> None:
    s = Settings()
    weak = np.zeros(64, np.float32)
    weak[AB], weak[C] = 0.4, 0.3  # Ab narrowly ahead in C major: not heard clearly enough
    r = run(s, 32, Outputs.default(chord=C), heard=lambda t: weak)
    assert r.notes(s.chord.channel) and all(n.note % 12 in (0, 4, 7) for n in r.notes(s.chord.channel))
    r = run(s, 32, Outputs.default(chord=C), heard=heard_chords((0.0, C), (CHANGE_S, AB), (2.53, C)))
    chord = r.notes(s.chord.channel)
    ab = [n for n in chord if n.note % 12 == 8]
    assert ab and CHANGE_S <= min(n.start for n in ab) <= CHANGE_S + 3 * HOP_S  # heard: played at once
    assert max(n.end for n in ab) <= 2.53 + 3 * HOP_S  # and left when the player leaves it


def test_a_step_rate_generator_ignores_hop_recognition() -> None:
    s = Settings()
    from kelly_edge.generate.generator import Generator
    from kelly_edge.midi.sinks import RecordingSink

    gen = Generator(s, RecordingSink())
    assert not gen.hear_chord(heard_chords((0.0, G))(0.0), now=0.0, tonic=0, major=True)
    assert gen.current_chord == spec.NO_CHORD
