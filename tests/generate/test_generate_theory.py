"""Scales, chord tones, voicings and the chord decision."""

from __future__ import annotations

import numpy as np
import pytest

from kelly_edge.generate import theory
from kelly_edge.models import spec


def test_scales() -> None:
    assert theory.scale_pitch_classes(0, True) == (0, 2, 4, 5, 7, 9, 11)  # white keys
    a_minor = theory.scale_pitch_classes(9, False)
    assert set(a_minor) == {9, 11, 0, 2, 4, 5, 7, 8}  # natural minor + G#
    mask = theory.scale_note_mask(2, True, np.zeros(128))
    d_major = {2, 4, 6, 7, 9, 11, 1}
    assert all(mask[p] == (1.0 if p % 12 in d_major else 0.0) for p in range(128))


def test_chord_tones() -> None:
    assert theory.chord_pitch_classes(spec.chord_index(7, "7")) == (7, 11, 2, 5)
    assert theory.chord_pitch_classes(spec.NO_CHORD) == ()
    assert theory.chord_root(spec.chord_index(10, "m7")) == 10
    assert theory.chord_root(spec.NO_CHORD) is None
    assert theory.tonic_triad(9, False) == (9, 0, 4)


def test_pitch_helpers() -> None:
    assert theory.lowest_pitch(0, 28, 52) == 36
    assert theory.lowest_pitch(4, 28, 52) == 28
    assert theory.lowest_pitch(5, 28, 28) is None
    assert theory.nearest_pitch((0, 4, 7), 62, 48, 84) == 60  # 60 and 64 are both 2 away: the lower
    assert theory.nearest_pitch((1,), 60, 62, 70) is None


@pytest.mark.parametrize("index", [spec.chord_index(r, q) for r in (0, 5, 11) for q in spec.CHORD_QUALITIES])
def test_close_voicings_are_complete_and_in_range(index: int) -> None:
    pcs = theory.chord_pitch_classes(index)
    voicings = theory.close_voicings(pcs, 48, 72)
    assert voicings
    for v in voicings:
        assert sorted(p % 12 for p in v) == sorted(pcs)
        assert 48 <= min(v) and max(v) <= 72
        assert max(v) - min(v) < 12
        assert list(v) == sorted(v)


def test_choose_voicing_moves_little_and_starts_mid_range() -> None:
    c = theory.chord_pitch_classes(spec.chord_index(0, "maj"))
    f = theory.chord_pitch_classes(spec.chord_index(5, "maj"))
    first = theory.choose_voicing(c, 48, 72, ())
    assert abs(np.mean(first) - 60) <= 3
    nxt = theory.choose_voicing(f, 48, 72, first)
    assert theory.voice_leading_cost(first, nxt) <= 3
    # brute force over every voicing with one note per pitch class in range: none moves less
    import itertools

    best = min(
        theory.voice_leading_cost(first, tuple(sorted(combo)))
        for combo in itertools.product(*[[p for p in range(48, 73) if p % 12 == pc] for pc in f])
    )
    assert theory.voice_leading_cost(first, nxt) == best


def test_choose_voicing_in_a_narrow_range_keeps_what_fits() -> None:
    c = theory.chord_pitch_classes(spec.chord_index(0, "maj"))
    v = theory.choose_voicing(c, 60, 65, ())
    assert set(v) == {60, 64}
    assert theory.choose_voicing(c, 61, 62, ()) == ()


def probs(weights: dict[int, float]) -> np.ndarray:
    p = np.zeros(spec.N_CHORD_CLASSES)
    for index, w in weights.items():
        p[index] = w
    return p


def test_choose_chord_hysteresis() -> None:
    C, G = spec.chord_index(0, "maj"), spec.chord_index(7, "maj")
    assert theory.choose_chord(probs({C: 0.9}), current=spec.NO_CHORD, tonic=0, major=True) == C
    assert theory.choose_chord(probs({C: 0.45, G: 0.5}), current=C, tonic=0, major=True) == C
    assert theory.choose_chord(probs({C: 0.3, G: 0.5}), current=C, tonic=0, major=True) == G


def test_choose_chord_key_filter() -> None:
    C, Ab = spec.chord_index(0, "maj"), spec.chord_index(8, "maj")
    assert theory.choose_chord(probs({Ab: 0.45, C: 0.2}), current=spec.NO_CHORD, tonic=0, major=True) == C
    assert theory.choose_chord(probs({Ab: 0.55, C: 0.2}), current=spec.NO_CHORD, tonic=0, major=True) == Ab
    # E major is V of A minor: its root is in the key
    E = spec.chord_index(4, "maj")
    assert theory.choose_chord(probs({E: 0.3}), current=spec.NO_CHORD, tonic=9, major=False) == E
    # a current chord the key moved away from is left at once, even for a weaker in-key chord
    Db = spec.chord_index(1, "maj")
    assert theory.choose_chord(probs({Db: 0.35, C: 0.3}), current=Db, tonic=0, major=True) == C


def test_choose_chord_no_chord() -> None:
    C = spec.chord_index(0, "maj")
    p = np.zeros(spec.N_CHORD_CLASSES)
    p[spec.NO_CHORD] = 0.9
    p[C] = 0.05
    assert theory.choose_chord(p, current=C, tonic=0, major=True) == spec.NO_CHORD
    assert theory.choose_chord(np.zeros(spec.N_CHORD_CLASSES), current=spec.NO_CHORD, tonic=0, major=True) == spec.NO_CHORD


def test_only_diatonic_chords_unless_strongly_preferred() -> None:
    import numpy as np

    from kelly_edge.generate.theory import STRONG_PREFERENCE, allowed_chords
    from kelly_edge.models.spec import chord_index

    flat = np.full(61, 1.0 / 61)
    ab = allowed_chords(flat, 8, True)  # Ab major
    assert ab[chord_index(8, "maj")] and ab[chord_index(5, "min")] and ab[chord_index(3, "7")]
    assert not ab[chord_index(8, "min")]  # Abm has a Cb: root in key is not enough
    am = allowed_chords(flat, 9, False)  # A minor: V7 = E7 with the leading tone G#
    assert am[chord_index(4, "7")] and am[chord_index(2, "min")] and not am[chord_index(2, "maj")]
    strong = flat.copy()
    strong[chord_index(8, "min")] = STRONG_PREFERENCE
    assert allowed_chords(strong, 8, True)[chord_index(8, "min")]
