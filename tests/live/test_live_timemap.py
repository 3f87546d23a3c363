"""TimeMap: audio time -> wall time from late-only callback stamps."""

from __future__ import annotations

import numpy as np
import pytest

from kelly_edge.live.timemap import TimeMap


def test_offset_converges_to_the_punctual_callbacks() -> None:
    rng = np.random.default_rng(1)
    true_offset = 1000.0
    tm = TimeMap(0.0)
    for k in range(1, 1000):
        t = k * 0.01
        lateness = rng.exponential(0.002)  # callbacks are sometimes late, never early
        tm.observe(t, t + true_offset + lateness)
    assert abs(tm.offset - true_offset) < 0.001
    assert abs(tm.to_wall(5.0) - (5.0 + tm.offset)) < 1e-12
    assert abs(tm.to_audio(tm.to_wall(3.0)) - 3.0) < 1e-9


def test_the_offset_moves_by_at_most_the_slew_per_observation() -> None:
    tm = TimeMap(0.0, slew_s=0.001, window_s=0.05, jump_s=1.0)
    tm.observe(0.0, 10.0)  # first observation after a (re)base sets the offset outright
    assert tm.offset == 10.0
    before = tm.offset
    for k in range(1, 20):
        tm.observe(k * 0.01, k * 0.01 + 10.5)  # the clock jumped 0.5 s later (drift, burst...)
        assert abs(tm.offset - before) <= 0.001 + 1e-12
        before = tm.offset
    assert tm.offset > 10.0


def test_rebase_jumps_to_the_new_session() -> None:
    tm = TimeMap(0.0)
    for k in range(100):
        tm.observe(k * 0.01, k * 0.01 + 5.0)
    tm.rebase()
    tm.observe(1.0, 1.0 + 7.0)
    assert tm.offset == 7.0


def test_lost_audio_makes_the_offset_jump_instead_of_leaving_the_output_late() -> None:
    tm = TimeMap(0.0)
    for k in range(200):
        tm.observe(k * 0.01, k * 0.01 + 5.0)
    # 130 ms of audio never arrived: from now on audio time is 0.13 s behind the wall clock
    for k in range(200, 230):
        tm.observe(k * 0.01, k * 0.01 + 5.13)
    assert tm.offset == pytest.approx(5.13, abs=1e-9)
    assert tm.jumps == 1


def test_a_few_late_callbacks_are_not_a_jump() -> None:
    tm = TimeMap(0.0)
    for k in range(300):
        late = 0.05 if k % 50 < 5 else 0.0  # bursts of five late callbacks
        tm.observe(k * 0.01, k * 0.01 + 5.0 + late)
    assert tm.offset == pytest.approx(5.0, abs=1e-9)
    assert tm.jumps == 0
