"""The floor: the work no implementation can skip — mel extraction plus the five interpreter invokes.

Per hop: one ``MelExtractor.push`` and one ``invoke()`` of each of the five INT8 interpreters on
an input set once beforehand (an INT8 fully connected net costs the same whatever the values).
Everything the real hop does beyond this (the other features, encoders, standardising and
quantising, scheduling, the generator) is overhead, reported as ``hop p50 / floor p50``. The
floor runs *all five* models every hop, which the real hop does not (most hops run only the
emotion model), so a hop below the floor is possible.

``tflite-runtime`` (the older standalone interpreter), when installed, is timed the same way.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kelly_edge.bench.stats import summary_us
from kelly_edge.features.mel import MelExtractor
from kelly_edge.models import spec


def _interpreters(cls: Any, models_dir: Path) -> list[Any]:
    out = []
    for s in spec.MODELS:
        it = cls(model_path=str(models_dir / s.filename), num_threads=1)
        it.allocate_tensors()
        it.invoke()
        out.append(it)
    return out


def _time_hops(x: np.ndarray, sample_rate: int, invokes: list[Callable[[], None]], with_mel: bool = True) -> np.ndarray:
    mel = MelExtractor(sample_rate=sample_rate)
    h = mel.hop_length
    n = x.size // h
    times = np.zeros(n, dtype=np.int64)
    clock = time.perf_counter_ns
    push = mel.push
    for k in range(n):
        block = x[k * h : (k + 1) * h]
        t0 = clock()
        if with_mel:
            push(block)
        for inv in invokes:
            inv()
        times[k] = clock() - t0
    return times


def floor(x: np.ndarray, sample_rate: int, models_dir: Path) -> dict[str, Any]:
    """``{floor_us {p50, p99}, floor_parts_us {mel, invokes}}`` with the runner's interpreter."""
    from kelly_edge.models.runner import _interpreter_class

    its = _interpreters(_interpreter_class(), models_dir)
    invokes = [it.invoke for it in its]
    total = _time_hops(x, sample_rate, invokes)
    mel_only = _time_hops(x, sample_rate, [])
    inv_only = _time_hops(x, sample_rate, invokes, with_mel=False)
    return {
        "floor_us": summary_us(total, ("p50", "p99")),
        "floor_parts_us": {"mel": summary_us(mel_only, ("p50",))["p50"], "invokes": summary_us(inv_only, ("p50",))["p50"]},
    }


def tflite_runtime(x: np.ndarray, sample_rate: int, models_dir: Path) -> tuple[dict[str, float] | None, str]:
    """The five invokes per hop under ``tflite_runtime``: (``{p50}`` µs, note) or (None, why not)."""
    try:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[import-not-found]
    except ImportError:
        return None, "tflite-runtime not installed (no wheel for Python 3.11 + numpy 2 on this machine)"
    try:
        its = _interpreters(Interpreter, models_dir)
    except Exception as err:  # an old runtime may refuse the files
        return None, f"tflite-runtime could not load the models: {err}"
    times = _time_hops(x, sample_rate, [it.invoke for it in its], with_mel=False)
    return summary_us(times, ("p50",)), "five invokes per hop"
