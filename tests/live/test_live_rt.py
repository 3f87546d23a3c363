"""Real-time hygiene helpers: CPU lists, affinity, thread priority, the frozen garbage collector."""

from __future__ import annotations

import gc
import os
import sys
import threading

import pytest

from kelly_edge.errors import ConfigError
from kelly_edge.live import rt


@pytest.mark.parametrize(("text", "cpus"), [("", set()), ("2,3", {2, 3}), ("0-2", {0, 1, 2}), (" 1, 3-4 ", {1, 3, 4})])
def test_cpu_lists(text: str, cpus: set[int]) -> None:
    assert rt.parse_cpus(text) == cpus


@pytest.mark.parametrize("text", ["a", "3-1", "1,,x", "2-"])
def test_bad_cpu_lists_name_the_key(text: str) -> None:
    with pytest.raises(ConfigError, match="realtime.cpu_affinity"):
        rt.parse_cpus(text)


def test_affinity_to_missing_cpus_is_refused_and_nothing_changes() -> None:
    before = os.sched_getaffinity(0)
    with pytest.raises(ConfigError, match="lacks"):
        rt.set_cpu_affinity(str(max(before) + 64))
    assert rt.set_cpu_affinity("") == set()
    assert os.sched_getaffinity(0) == before


def test_priority_zero_leaves_the_thread_alone_and_a_refusal_is_not_fatal() -> None:
    results: list[object] = []

    def worker() -> None:
        results.append(rt.realtime_thread(0))
        results.append(os.sched_getscheduler(0))
        results.append(rt.realtime_thread(10))  # True as root, False (one warning) otherwise

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert results[0] is False and results[1] == os.SCHED_OTHER
    assert isinstance(results[2], bool)


def test_settling_freezes_the_startup_heap() -> None:
    interval = sys.getswitchinterval()
    try:
        rt.settle_after_startup()
        assert gc.get_freeze_count() > 0
        assert sys.getswitchinterval() == pytest.approx(rt.SWITCH_INTERVAL_S)
    finally:
        gc.unfreeze()
        sys.setswitchinterval(interval)
