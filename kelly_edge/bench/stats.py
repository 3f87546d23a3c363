"""Percentile summaries of timing samples, in microseconds."""

from __future__ import annotations

from typing import Iterable

import numpy as np


def summary_us(ns: Iterable[int] | np.ndarray, keys: tuple[str, ...] = ("p50", "p99", "p999", "max")) -> dict[str, float]:
    """``{p50, p99, p999, max}`` (any subset of those, p90 and mean, by ``keys``) of timings given in
    nanoseconds, as µs.

    Empty input gives zeros (a stage that never ran, e.g. a disabled model).
    """
    a = np.asarray(list(ns) if not isinstance(ns, np.ndarray) else ns, dtype=np.float64) / 1000.0
    q = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}
    out: dict[str, float] = {}
    for k in keys:
        if a.size == 0:
            out[k] = 0.0
        elif k == "max":
            out[k] = round(float(a.max()), 2)
        elif k == "mean":
            out[k] = round(float(a.mean()), 2)
        else:
            out[k] = round(float(np.percentile(a, q[k])), 2)
    return out
