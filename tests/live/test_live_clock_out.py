"""MIDI clock out: 24 PPQN, locked to the 16th grid, never backwards across tempo changes."""

from __future__ import annotations

import numpy as np
import pytest

from kelly_edge.engine.clock import TempoGrid
from kelly_edge.midi.clock_out import CLOCK, START, STOP, ClockOut
from kelly_edge.midi.sinks import RecordingSink


def _run(grid: TempoGrid, clock: ClockOut, *, until: float, hop: float = 0.01, ahead: float = 0.03,
         t0: float = 0.0, tempo_at: tuple[float, float] | None = None) -> None:
    t = t0
    while t < until:
        t += hop
        if tempo_at is not None and t >= tempo_at[0] and grid.bpm != tempo_at[1]:
            grid.set_bpm(tempo_at[1], t)
        clock.advance(t, t + ahead)


def _tick_times(sink: RecordingSink) -> np.ndarray:
    return np.array([t for t, m in sink.events if m == CLOCK])


def test_ticks_are_24_per_quarter_and_on_the_grid() -> None:
    grid, sink = TempoGrid(120.0), RecordingSink()
    clock = ClockOut(sink, grid)
    clock.start(0.0)
    _run(grid, clock, until=2.0)
    assert sink.events[0] == (0.0, START)
    ticks = _tick_times(sink)
    np.testing.assert_allclose(np.diff(ticks), 60.0 / (120.0 * 24), rtol=1e-9)
    # every 6th tick falls on a 16th step of the grid
    np.testing.assert_allclose(ticks[::6], [grid.time_of(k) for k in range(len(ticks[::6]))], atol=1e-9)


def test_a_tempo_change_moves_the_following_ticks_and_never_goes_back() -> None:
    grid, sink = TempoGrid(100.0), RecordingSink()
    clock = ClockOut(sink, grid)
    clock.start(0.0)
    _run(grid, clock, until=3.0, tempo_at=(1.5, 150.0))
    ticks = _tick_times(sink)
    gaps = np.diff(ticks)
    assert np.all(gaps >= 0.0)
    assert gaps[:20] == pytest.approx(60.0 / (100 * 24))
    assert gaps[-20:] == pytest.approx(60.0 / (150 * 24))


def test_after_a_stall_the_clock_skips_ahead_instead_of_bursting() -> None:
    grid, sink = TempoGrid(120.0), RecordingSink()
    clock = ClockOut(sink, grid)
    clock.start(0.0)
    clock.advance(0.01, 0.04)
    n = len(_tick_times(sink))
    clock.advance(1.0, 1.03)  # a second went by without an advance
    late = _tick_times(sink)[n:]
    assert late.size <= 2 and np.all(late >= 1.0 - 60.0 / (120 * 24))


def test_stop_ends_the_ticks() -> None:
    grid, sink = TempoGrid(120.0), RecordingSink()
    clock = ClockOut(sink, grid)
    clock.start(0.0)
    assert clock.stop() == STOP
    clock.advance(0.5, 0.6)
    assert _tick_times(sink).size == 0
