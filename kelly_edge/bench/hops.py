"""Per-hop timing of the real engine on real audio: the whole hop, then each stage.

Two passes over the same audio, each with a fresh :class:`~kelly_edge.engine.engine.Engine`
(default config, shipped models, a recording MIDI sink), with the garbage collector treated as
the offline runner treats it (collect + freeze before the loop):

1. *whole hop*: ``perf_counter_ns`` around each ``Engine.process_hop``, nothing else touched;
2. *stages*: the same, with timing wrappers around the mel extractor's ``push``, the
   ``FeatureContext.update`` that contains it, each model's call (the runner: standardise,
   quantise, invoke, dequantise; the encoder is not included) and the generator's
   ``plan_step`` + ``advance``. The wrappers cost ~0.3 µs each, which is why pass 1 is separate.

Mel, features and generator are per hop; a model's figure is per *call* (the emotion model runs
at its configured rate, the others on 16th steps, beats or bars), so its p50 is the cost of one run.
"""

from __future__ import annotations

import gc
import time
from typing import Any, Callable

import numpy as np

from kelly_edge.bench.stats import summary_us
from kelly_edge.config.schema import default_config
from kelly_edge.engine.engine import Engine
from kelly_edge.midi.sinks import RecordingSink
from kelly_edge.models import spec

BUDGET_NS = 10_000_000


def _engine(sample_rate: int, config: Any | None) -> Engine:
    return Engine(config if config is not None else default_config(), RecordingSink(), sample_rate=sample_rate)


def _loop(engine: Engine, x: np.ndarray, out: np.ndarray, before_hop: Callable[[], None] | None = None) -> None:
    hop = engine.hop_length
    clock = time.perf_counter_ns
    process = engine.process_hop
    gc.collect()
    gc.freeze()
    try:
        for k in range(out.size):
            block = x[k * hop : (k + 1) * hop]
            if before_hop is not None:
                before_hop()
            t0 = clock()
            process(block)
            out[k] = clock() - t0
    finally:
        gc.unfreeze()


def n_hops(x: np.ndarray, hop: int) -> int:
    return -(-x.size // hop)


def whole_hop(x: np.ndarray, sample_rate: int, config: Any | None = None) -> dict[str, Any]:
    """Pass 1: ``{hop_us, deadline_misses, hops, models, notes}`` for ``x`` (n,) float32."""
    engine = _engine(sample_rate, config)
    times = np.zeros(n_hops(x, engine.hop_length), dtype=np.int64)
    _loop(engine, x, times)
    engine.close()
    return {
        # the mean too: work moved between hops (models spread over a step) shows in the median
        # alone; the mean is the total cost per hop
        "hop_us": summary_us(times, ("p50", "p99", "p999", "max", "mean")),
        "deadline_misses": int((times > BUDGET_NS).sum()),
        "hops": int(times.size),
        "models": engine.model_status(),
        "model_runs": {name: slot.runs for name, slot in engine.scheduler.slots.items()},
        "notes": engine.generator.notes_started,
    }


class _Timed:
    """A callable wrapper that appends each call's duration (ns) to ``times``."""

    def __init__(self, fn: Callable[..., Any], times: list[int]) -> None:
        self.fn, self.times = fn, times

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter_ns()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.times.append(time.perf_counter_ns() - t0)


def stages(x: np.ndarray, sample_rate: int, config: Any | None = None) -> dict[str, Any]:
    """Pass 2: ``{stages_us: {mel, emotion, ..., generator, features}}`` each ``{p50, p99}``."""
    engine = _engine(sample_rate, config)
    rec: dict[str, list[int]] = {"mel": [], "features": [], "plan": [], "advance": []}
    mel = engine.ctx._mel  # noqa: SLF001 - the bench times the extractor inside the context
    mel.push = _Timed(mel.push, rec["mel"])  # type: ignore[method-assign]
    engine.ctx.update = _Timed(engine.ctx.update, rec["features"])  # type: ignore[method-assign]
    for name, slot in engine.scheduler.slots.items():
        rec[name] = []
        slot.call = _Timed(slot.call, rec[name])
    gen = engine.generator
    gen.plan_step = _Timed(gen.plan_step, rec["plan"])  # type: ignore[method-assign]
    gen.advance = _Timed(gen.advance, rec["advance"])  # type: ignore[method-assign]
    hops = n_hops(x, engine.hop_length)
    times = np.zeros(hops, dtype=np.int64)
    generator = np.zeros(hops, dtype=np.int64)
    marks = {"plan": 0, "advance": 0, "k": 0}

    def before_hop() -> None:  # attribute the generator calls of the previous hop to it
        k = marks["k"]
        if k > 0:
            generator[k - 1] = sum(rec["plan"][marks["plan"] :]) + sum(rec["advance"][marks["advance"] :])
        marks["plan"], marks["advance"], marks["k"] = len(rec["plan"]), len(rec["advance"]), k + 1

    _loop(engine, x, times, before_hop)
    before_hop()
    engine.close()
    keys = ("p50", "p99")
    out = {"mel": summary_us(rec["mel"], keys)}
    for s in spec.MODELS:
        out[s.name] = summary_us(rec[s.name], keys)
    out["generator"] = summary_us(generator, keys)
    out["features"] = summary_us(rec["features"], keys)
    out["plan_step"] = summary_us(rec["plan"], keys)
    return {"stages_us": out, "instrumented_hop_us": summary_us(times, keys)}
