"""Run the models inside a per-hop time budget; defer what would overrun.

Capture must never wait for inference. Each hop the engine asks ``try_run`` for the models that
are due, in priority order. A model whose expected cost (a running estimate of its recent run
times) exceeds what is left of the hop's budget is *deferred*: it stays pending, its last output is
reused, and it gets its chance on a later hop. A deferred model's estimate decays a little each
time, so a model that was slow once (a cache miss, a GC pause elsewhere) is retried soon, while a
model that is always too slow is only probed occasionally.

Hops whose total processing time exceeded the budget are counted as deadline misses. A model
whose own run took longer than the whole budget :data:`Scheduler.MAX_OVERRUNS` times in a row can
never fit: it is reported to the failure handler (the engine then runs its heuristic fallback).

Offline runs (``run --input`` without ``--realtime``) call :meth:`Scheduler.measure_only`: the hop
times, costs and deadline misses are still measured and reported, but nothing is deferred or taken
away on wall time, so a file gives the same notes on a fast, slow or loaded machine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

Clock = Callable[[], float]


@dataclass
class ModelSlot:
    """Scheduler state for one model."""

    name: str
    call: Callable[[np.ndarray], np.ndarray]
    output: np.ndarray  # the last output, reused while deferred; (n_out,) float32
    enabled: bool = True
    pending: bool = False  # due but not yet run
    estimate_s: float = 0.0  # expected cost
    runs: int = 0
    deferrals: int = 0
    failures: int = 0
    overruns: int = 0  # consecutive runs that alone took more than the whole hop budget
    last_s: float = 0.0
    costs_s: np.ndarray = field(default_factory=lambda: np.zeros(8192))  # ring of recent run times, s


class Scheduler:
    """Budgeted model execution.

    ``budget_s``: processing time allowed per hop (10 ms by default: one hop of audio).
    ``decay``: factor applied to a deferred model's estimate each time it is deferred, so it is
    retried after a while (0.97: a model that never fits is probed about every 25 hops).
    ``clock``: injectable for tests; ``time.perf_counter`` by default.
    ``enforce``: defer and time out models on the clock (live); False measures only (offline).
    """

    ALPHA = 0.2  # weight of the newest run time in the estimate
    MARGIN = 1.25  # safety factor on the estimate when checking the budget
    MAX_OVERRUNS = 3  # runs in a row over the whole budget before the failure handler takes the model

    def __init__(self, *, budget_s: float = 0.010, decay: float = 0.97, clock: Clock = time.perf_counter,
                 enforce: bool = True) -> None:
        self.budget_s = budget_s
        self.enforce = enforce
        self.decay = decay
        self.clock = clock
        self.slots: dict[str, ModelSlot] = {}
        self.hops = 0
        self.deadline_misses = 0
        self._hop_start = 0.0
        self._on_failure: Callable[[str, BaseException], None] | None = None

    def add(self, name: str, call: Callable[[np.ndarray], np.ndarray], n_out: int, initial: np.ndarray | None = None) -> ModelSlot:
        out = np.zeros(n_out, dtype=np.float32) if initial is None else np.array(initial, dtype=np.float32)
        slot = ModelSlot(name, call, out)
        self.slots[name] = slot
        return slot

    def on_failure(self, handler: Callable[[str, BaseException], None]) -> None:
        """``handler(name, error)`` is called when a model raises; its last output stays in use."""
        self._on_failure = handler

    def replace(self, name: str, call: Callable[[np.ndarray], np.ndarray]) -> None:
        """Swap a model's implementation (e.g. trained -> fallback) keeping its last output."""
        slot = self.slots[name]
        slot.call = call
        slot.estimate_s = 0.0

    def measure_only(self) -> None:
        """Stop governing by wall time (offline runs): every due model runs when asked, none is
        timed out; hop times and misses are still counted for the report."""
        self.enforce = False

    def begin_hop(self) -> None:
        self._hop_start = self.clock()

    def end_hop(self) -> float:
        """Close the hop; returns its processing time in seconds and counts a miss if over budget."""
        elapsed = self.clock() - self._hop_start
        self.hops += 1
        if elapsed > self.budget_s:
            self.deadline_misses += 1
        return elapsed

    def remaining_s(self) -> float:
        return self.budget_s - (self.clock() - self._hop_start)

    def mark_due(self, name: str) -> None:
        slot = self.slots[name]
        if slot.enabled:
            slot.pending = True

    def try_run(self, name: str, x: np.ndarray) -> bool:
        """Run ``name`` on ``x`` if it is pending and fits the rest of the budget.

        Returns True when the output was refreshed. On deferral the model stays pending.
        """
        slot = self.slots[name]
        if not (slot.enabled and slot.pending):
            return False
        if self.enforce and slot.estimate_s * self.MARGIN > self.remaining_s():
            slot.deferrals += 1
            slot.estimate_s *= self.decay
            return False
        start = self.clock()
        try:
            result = slot.call(x)
        except Exception as err:  # a model must never take the loop down: keep the last output
            slot.failures += 1
            slot.pending = False
            if self._on_failure is not None:
                self._on_failure(name, err)
            return False
        cost = self.clock() - start
        np.copyto(slot.output, result)
        slot.pending = False
        slot.overruns = slot.overruns + 1 if cost > self.budget_s else 0
        if self.enforce and slot.overruns >= self.MAX_OVERRUNS and self._on_failure is not None:
            # it can never fit a hop: every probe is a missed deadline. Hand it to the failure
            # handler (the engine swaps in the heuristic fallback) instead of probing forever.
            slot.overruns = 0
            self._on_failure(name, TimeoutError(
                f"{cost * 1000:.1f} ms per run, over the whole {self.budget_s * 1000:.1f} ms hop budget "
                f"{self.MAX_OVERRUNS} runs in a row"))
        slot.last_s = cost
        # peak-hold, slow release: a spike is believed at once, a fast run only gradually
        slot.estimate_s = cost if cost > slot.estimate_s else (1 - self.ALPHA) * slot.estimate_s + self.ALPHA * cost
        slot.costs_s[slot.runs % len(slot.costs_s)] = cost
        slot.runs += 1
        return True

    def output(self, name: str) -> np.ndarray:
        return self.slots[name].output

    def set_enabled(self, name: str, enabled: bool) -> None:
        slot = self.slots[name]
        slot.enabled = enabled
        if not enabled:
            slot.pending = False
