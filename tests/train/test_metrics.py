"""Evaluation arithmetic: INT8-vs-float agreement, task metrics and the prior baseline."""

from __future__ import annotations

import numpy as np
import pytest

from tools.train import metrics as M
from tools.train.tflite_eval import agreement, destandardise


def test_agreement_of_identical_and_opposite_outputs() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 8))
    same = agreement(a, a.copy())
    assert same["cosine_mean"] == pytest.approx(1.0) and same["argmax_agreement"] == 1.0
    opposite = agreement(a, -a)
    assert opposite["cosine_mean"] == pytest.approx(-1.0)
    noisy = agreement(a, a + 0.01 * rng.normal(size=a.shape))
    assert 0.99 < noisy["cosine_mean"] < 1.0


def test_destandardise_is_identity_without_stats() -> None:
    y = np.ones((2, 3), np.float32)
    assert np.array_equal(destandardise(y, None, None), y)
    out = destandardise(y, np.array([1, 2, 3], np.float32), np.array([2, 2, 2], np.float32))
    assert np.allclose(out, [[3, 4, 5], [3, 4, 5]])


def test_topk_metrics_count_hits() -> None:
    probs = np.zeros((4, 64), np.float32)
    probs[np.arange(4), [1, 2, 3, 4]] = 0.9
    probs[np.arange(4), [5, 6, 7, 8]] = 0.1
    y = np.array([1, 6, 9, 4])
    m = M.task_metrics("harmony", y, probs)
    assert m["top1"] == pytest.approx(0.5) and m["top3"] == pytest.approx(0.75)


def test_prior_baseline_predicts_training_frequencies() -> None:
    y_train = np.array([3, 3, 3, 5])
    pred = M.baseline_predictions("melody", y_train, 2)
    assert pred.shape == (2, 128) and pred[0, 3] == pytest.approx(0.75) and pred[1, 5] == pytest.approx(0.25)


def test_constant_prediction_has_zero_correlation_and_better_fit_wins() -> None:
    rng = np.random.default_rng(1)
    y = rng.uniform(-1, 1, size=(200, 64)).astype(np.float32)
    const = np.zeros_like(y)
    good = y + 0.1 * rng.normal(size=y.shape).astype(np.float32)
    m_const = M.task_metrics("emotion", y, const)
    m_good = M.task_metrics("emotion", y, good)
    assert m_const["va_r"] == 0.0 and m_good["va_r"] > 0.9
    assert M.beats("emotion", m_good, m_const) and not M.beats("emotion", m_const, m_good)


def test_groove_brier_lower_is_better() -> None:
    y = np.zeros((10, 32), np.float32)
    y[:, [0, 4, 8, 12]] = 1.0
    sharp = y.copy()
    vague = np.full_like(y, 0.5)
    assert M.task_metrics("groove", y, sharp)["brier"] == 0.0
    assert M.beats("groove", M.task_metrics("groove", y, sharp), M.task_metrics("groove", y, vague))
    assert M.task_metrics("groove", y, sharp)["hit_f1"] == pytest.approx(1.0)
