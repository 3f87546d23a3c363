"""Hop times in bounded memory: exact recent window, whole-run percentiles within a bin."""

import numpy as np
import pytest

from kelly_edge.engine.timing import HopTimes


def test_recent_window_wraps_exactly() -> None:
    t = HopTimes(recent=100)
    values = np.arange(1, 251) * 1e-5
    for v in values:
        t.add(float(v))
    assert len(t) == 250
    np.testing.assert_array_equal(t.recent(30), values[-30:])
    np.testing.assert_array_equal(t.recent(1000), values[-100:])  # never more than the window


def test_whole_run_percentiles_from_the_histogram() -> None:
    rng = np.random.default_rng(0)
    values = rng.lognormal(mean=np.log(150e-6), sigma=0.5, size=200_000)
    values[::997] = 4e-3  # rare spikes: the tail must survive the histogram
    t = HopTimes(recent=1000)
    for v in values:
        t.add(float(v))
    for q in (50, 99, 99.9):
        assert t.percentile(q) == pytest.approx(np.percentile(values, q), rel=0.02)
    assert t.max_s == values.max()


def test_short_runs_are_exact() -> None:
    t = HopTimes(recent=1000)
    values = [3e-4, 1e-4, 2e-4]
    for v in values:
        t.add(v)
    assert t.percentile(50) == pytest.approx(2e-4)
