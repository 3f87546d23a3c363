"""The key-aware chord decoder: steady through blips, quick on a clear change, strict outside the key."""

from __future__ import annotations

import numpy as np

from kelly_edge.generate.chord_decoder import ChordDecoder
from kelly_edge.models import spec

C, F, G, AM, AB = (spec.chord_index(r, q) for r, q in ((0, "maj"), (5, "maj"), (7, "maj"), (9, "min"), (8, "maj")))


def heard(*pairs: tuple[int, float]) -> np.ndarray:
    p = np.full(64, 0.002, np.float32)
    for c, v in pairs:
        p[c] = v
    return p


def decode(frames: list[np.ndarray], tonic: int = 0, major: bool = True) -> list[int]:
    d = ChordDecoder()
    return [int(d.update(f, tonic, major).argmax()) for f in frames]


def test_a_clear_change_is_followed_within_two_steps() -> None:
    path = decode([heard((C, 0.9))] * 8 + [heard((F, 0.9))] * 4)
    assert path[7] == C and F in path[8:10] and path[-1] == F


def test_a_one_step_blip_does_not_move_it() -> None:
    path = decode([heard((C, 0.8))] * 8 + [heard((G, 0.5), (C, 0.3))] + [heard((C, 0.8))] * 3)
    assert set(path) == {C}


def test_an_ambiguous_out_of_key_reading_stays_in_the_key() -> None:
    """Ab narrowly ahead of C (0.4 vs 0.3) for a whole bar in C major: still C."""
    assert decode([heard((AB, 0.4), (C, 0.3))] * 16)[-1] == C


def test_an_out_of_key_chord_clearly_heard_is_taken_within_two_beats() -> None:
    path = decode([heard((C, 0.9))] * 8 + [heard((AB, 0.85), (C, 0.08))] * 8)
    assert path[8] == C and path[-1] == AB


def test_the_key_decides_between_readings_the_model_cannot_separate() -> None:
    """C-E heard as C or Am equally: Am in A minor... and C in C major (both diatonic: the first
    reading heard wins, the key does not flip it)."""
    frames = [heard((AM, 0.45), (C, 0.45))] * 8
    assert decode(frames, tonic=9, major=False)[-1] in (AM, C)
    d = ChordDecoder()
    for f in frames:
        post = d.update(f, 9, False)
    assert abs(post[AM] - post[C]) < 1e-6


def test_the_posterior_is_a_distribution_whatever_the_input() -> None:
    d = ChordDecoder()
    for f in (np.zeros(64), np.full(64, np.float32(1e-30)), heard((C, 1.0))):
        post = d.update(f, 0, True)
        assert np.isfinite(post).all() and abs(float(post.sum()) - 1.0) < 1e-9
