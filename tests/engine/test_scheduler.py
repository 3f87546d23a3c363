"""The scheduler keeps hops inside the budget by deferring models that would overrun."""

from __future__ import annotations

import numpy as np

from kelly_edge.engine.scheduler import Scheduler


class FakeClock:
    """A clock that only moves when a fake model 'works': deterministic budget arithmetic."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _model(clock: FakeClock, cost_s: float, value: float):
    def run(x: np.ndarray) -> np.ndarray:
        clock.t += cost_s
        return np.full(4, value + x[0], dtype=np.float32)

    return run


def test_slow_model_is_deferred_and_its_last_output_reused() -> None:
    clock = FakeClock()
    s = Scheduler(budget_s=0.010, clock=clock)
    s.add("fast", _model(clock, 0.001, 1.0), 4)
    s.add("slow", _model(clock, 0.015, 2.0), 4)  # never fits a 10 ms hop
    x = np.zeros(4, np.float32)
    probed: list[int] = []  # the hops in which the slow model ran
    for hop in range(200):
        s.begin_hop()
        x[0] = hop
        s.mark_due("fast")
        s.mark_due("slow")
        assert s.try_run("fast", x)
        if s.try_run("slow", x):
            probed.append(hop)
        s.end_hop()
    fast, slow = s.slots["fast"], s.slots["slow"]
    assert fast.runs == 200 and fast.deferrals == 0
    assert slow.deferrals > 150  # mostly deferred...
    assert 1 <= slow.runs == len(probed) < 20  # ...but probed now and then as its estimate decays
    assert s.deadline_misses == slow.runs  # only the hops where it was probed overran
    # while deferred, its output is the one it computed when it last ran, not a fresh one
    assert probed[-1] < 199
    assert s.output("slow")[0] == 2.0 + probed[-1]
    assert s.output("fast")[0] == 1.0 + 199


def test_deferred_model_runs_when_budget_allows() -> None:
    clock = FakeClock()
    s = Scheduler(budget_s=0.010, clock=clock)
    s.add("a", _model(clock, 0.006, 0.0), 4)
    s.add("b", _model(clock, 0.006, 0.0), 4)
    x = np.zeros(4, np.float32)
    s.begin_hop()
    s.mark_due("a"), s.mark_due("b")
    assert s.try_run("a", x) and s.try_run("b", x)  # first run: costs unknown, both run
    s.end_hop()
    assert s.deadline_misses == 1
    s.begin_hop()
    s.mark_due("a"), s.mark_due("b")
    assert s.try_run("a", x)
    assert not s.try_run("b", x)  # 6 ms left would be exceeded: deferred, still pending
    assert s.slots["b"].pending
    s.end_hop()
    s.begin_hop()
    assert s.try_run("b", x)  # next hop it gets its turn before anything else is due
    s.end_hop()
    assert s.deadline_misses == 1


def test_failing_model_keeps_last_output_and_reports() -> None:
    clock = FakeClock()
    s = Scheduler(budget_s=0.010, clock=clock)
    calls = {"n": 0}

    def flaky(x: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("boom")
        return np.ones(4, np.float32)

    seen: list[str] = []
    s.add("m", flaky, 4)
    s.on_failure(lambda name, err: seen.append(f"{name}:{err}"))
    x = np.zeros(4, np.float32)
    for _ in range(3):
        s.begin_hop()
        s.mark_due("m")
        s.try_run("m", x)
        s.end_hop()
    assert seen == ["m:boom", "m:boom"]
    np.testing.assert_array_equal(s.output("m"), np.ones(4))


def test_disabled_model_never_runs() -> None:
    clock = FakeClock()
    s = Scheduler(budget_s=0.010, clock=clock)
    s.add("m", _model(clock, 0.001, 1.0), 4)
    s.set_enabled("m", False)
    s.begin_hop()
    s.mark_due("m")
    assert not s.try_run("m", np.zeros(4, np.float32))
    assert s.slots["m"].runs == 0
