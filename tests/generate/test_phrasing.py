"""PhrasePlanner: phrases of 1-2 bars from bar lines, a breath of 1-2 beats at the end (2 when the
player is busy), a contour inside the range whose register moves from phrase to phrase."""

from __future__ import annotations

import numpy as np

from kelly_edge.generate.phrasing import MIN_CENTRE_MOVE, PhrasePlanner


def phrases(planner: PhrasePlanner, n_steps: int, busy: bool = False) -> list[tuple[int, int, list[float]]]:
    """(start step, breath length in steps, targets) of each phrase found in ``n_steps``."""
    out: list[tuple[int, int, list[float]]] = []
    start, targets, rest = 0, [], 0
    for k in range(n_steps):
        t = planner.target(k, busy)
        if t is not None and rest:  # a new phrase after a breath
            out.append((start, rest, targets))
            start, targets, rest = k, [], 0
        if t is None:
            rest += 1
        else:
            targets.append(t)
    return out


def test_phrases_start_on_bar_lines_and_end_in_a_breath() -> None:
    found = phrases(PhrasePlanner(3, 60, 84), 16 * 64)
    assert len(found) >= 40
    for start, rest, targets in found:
        assert start % 16 == 0
        assert rest in (4, 8)
        assert len(targets) + rest in (16, 32)
    lengths = [len(t) + r for _, r, t in found]
    assert 0.3 < np.mean([n == 32 for n in lengths]) < 0.9  # both one- and two-bar phrases


def test_a_busy_player_gets_two_beat_breaths() -> None:
    found = phrases(PhrasePlanner(3, 60, 84), 16 * 32, busy=True)
    assert {rest for _, rest, _ in found} == {8}


def test_contours_stay_in_range_move_register_and_mostly_arch() -> None:
    found = phrases(PhrasePlanner(5, 60, 84), 16 * 128)
    centres = []
    arches = 0
    for _, _, targets in found:
        assert all(60 <= t <= 84 for t in targets)
        mid = targets[len(targets) // 2]
        if mid > targets[0] + 1 and mid > targets[-1] + 1:
            arches += 1
        centres.append((max(targets) + min(targets)) / 2)
    assert arches / len(found) >= 0.4
    moves = np.abs(np.diff(centres))
    assert np.mean(moves >= MIN_CENTRE_MOVE - 1.5) >= 0.8  # the register moves between phrases
    assert max(centres) - min(centres) >= 10  # and covers the range over time


def test_skipped_steps_start_a_new_phrase_at_the_current_bar() -> None:
    p = PhrasePlanner(0, 60, 84)
    p.target(0, False)
    assert p.target(16 * 10 + 5, False) is not None  # a gate closed for 10 bars: a phrase is under way
    assert p.rest_at > 16 * 10 + 5 and (p.rest_at % 16) in (8, 12)
