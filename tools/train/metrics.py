"""Task metrics per model, and the two comparators every net must beat.

All predictions are in spec units (what the runtime hands the generator), ``(n, n_out) float32``.

- emotion: Pearson r of valence and arousal (primary: their mean), and their RMSE
- melody: next-note top-1 / top-5 accuracy (primary: top-1)
- harmony: chord top-1 / top-3 accuracy (primary: top-1)
- dynamics: mean absolute error of the four measured outputs (velocity, spread, accent, length;
  primary), and of all twelve documented outputs
- groove: Brier score of the 16 hit probabilities (primary, lower is better) and hit F1 at 0.5

The **trivial baseline** is the training prior: class frequencies (melody, harmony), per-output
means (emotion, dynamics) or per-step hit rates (groove). The **fallback** is
``kelly_edge.models.fallbacks.make_fallback(name)`` run on the very same held-out inputs.
"""

from __future__ import annotations

import numpy as np

from kelly_edge.models import spec

PRIMARY = {
    "emotion": ("va_r", True),
    "melody": ("top1", True),
    "harmony": ("top1", True),
    "dynamics": ("mae4", False),
    "groove": ("brier", False),
}
"""Primary task metric per model and whether higher is better."""


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-12 else 0.0  # a constant predictor correlates 0


def _topk(probs: np.ndarray, y: np.ndarray, k: int) -> float:
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float((top == y[:, None]).any(axis=1).mean())


def task_metrics(name: str, y_true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Metrics of ``pred`` ``(n, n_out)`` against ``y_true`` (classes ``(n,)`` or targets ``(n, n_out)``)."""
    pred = np.asarray(pred, np.float64)
    if name == "emotion":
        v, a = spec.Emo.VALENCE, spec.Emo.AROUSAL
        rv = _pearson(pred[:, v], y_true[:, v])
        ra = _pearson(pred[:, a], y_true[:, a])
        return {
            "va_r": 0.5 * (rv + ra),
            "valence_r": rv,
            "arousal_r": ra,
            "valence_rmse": float(np.sqrt(np.mean((pred[:, v] - y_true[:, v]) ** 2))),
            "arousal_rmse": float(np.sqrt(np.mean((pred[:, a] - y_true[:, a]) ** 2))),
        }
    if name == "melody":
        return {"top1": _topk(pred, y_true, 1), "top5": _topk(pred, y_true, 5)}
    if name == "harmony":
        return {"top1": _topk(pred, y_true, 1), "top3": _topk(pred, y_true, 3)}
    if name == "dynamics":
        err = np.abs(pred[:, :12] - y_true[:, :12])
        return {"mae4": float(err[:, :4].mean()), "mae12": float(err.mean())}
    if name == "groove":
        n = spec.N_STEPS
        p, t = pred[:, :n], y_true[:, :n]
        hit = p >= 0.5
        tp = float((hit & (t > 0.5)).sum())
        prec = tp / max(1.0, float(hit.sum()))
        rec = tp / max(1.0, float((t > 0.5).sum()))
        f1 = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
        return {"brier": float(np.mean((p - t) ** 2)), "hit_f1": f1}
    raise ValueError(f"unknown model {name!r}")


def baseline_predictions(name: str, y_train: np.ndarray, n: int) -> np.ndarray:
    """The trivial prior's prediction for ``n`` rows (the same row repeated), ``(n, n_out)``."""
    s = spec.BY_NAME[name]
    if s.output_kind == "softmax":
        counts = np.bincount(y_train, minlength=s.n_out).astype(np.float64)
        prior = counts / counts.sum()
    else:
        prior = np.asarray(y_train, np.float64).mean(axis=0)
    return np.repeat(prior[None, :].astype(np.float32), n, axis=0)


def fallback_predictions(name: str, x: np.ndarray) -> np.ndarray:
    """The runtime's heuristic fallback on each row of ``x`` ``(n, n_in)``."""
    from kelly_edge.models.fallbacks import make_fallback

    fb = make_fallback(name)
    return np.stack([np.array(fb(np.ascontiguousarray(row, np.float32)), copy=True) for row in x]).astype(np.float32)


def beats(name: str, model: dict[str, float], other: dict[str, float]) -> bool:
    """Whether ``model`` is better than ``other`` on the primary metric."""
    key, higher = PRIMARY[name]
    return model[key] > other[key] if higher else model[key] < other[key]
