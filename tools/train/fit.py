"""Standardise, train (fixed seeds, early stopping on held-out *pieces*) and keep the statistics.

The statistics are what the runtime runner applies before quantising (``manifest.json``:
``input_mean``/``input_std``, and ``output_mean``/``output_std`` for linear regression heads).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from kelly_edge.models import spec
from tools.train import nets
from tools.train.data import Dataset, split_by_piece

log = logging.getLogger(__name__)

VAL_FRAC = 0.1


@dataclass
class Trained:
    """A trained float model and everything needed to convert, evaluate and describe it."""

    name: str
    model: Any  # keras.Model
    input_mean: np.ndarray  # (n_in,) float32
    input_std: np.ndarray  # (n_in,) float32, never below what keeps |z| <= ~4
    output_mean: np.ndarray | None  # (n_out,) or None (identity)
    output_std: np.ndarray | None
    epochs: int
    val_loss: float


def input_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and a *robust* std ``(n_in,) float32`` for standardising ``x`` ``(n, n_in)``.

    The INT8 input has one scale for the whole vector, so no feature may dwarf the others after
    standardising: the std is raised to at least a quarter of the 99.9th percentile of
    ``|x - mean|`` (a sparse one-hot would otherwise reach 20+), and constant features get 1.
    """
    mean = x.mean(axis=0).astype(np.float64)
    dev = np.abs(x - mean)
    std = x.std(axis=0).astype(np.float64)
    p = np.percentile(dev, 99.9, axis=0)
    std = np.maximum(std, p / 4.0)
    std[std < 1e-6] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def standardise(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(x - mean) / max(std, 1e-6)`` exactly as the runner does, ``float32``."""
    return ((x - mean) * (1.0 / np.maximum(std, 1e-6))).astype(np.float32)


def output_stats(name: str, y: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Target statistics for linear heads (emotion); None for bounded heads."""
    if spec.BY_NAME[name].name != "emotion":
        return None, None
    mean = y.mean(axis=0)
    std = y.std(axis=0)
    std[std < 1e-6] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def train(ds: Dataset, train_idx: np.ndarray, *, seed: int, epochs: int, batch: int = 256, max_steps: int | None = None) -> Trained:
    """Fit model ``ds.name`` on ``ds.x[train_idx]``; a tenth of those *pieces* is the early-stopping set.

    ``max_steps`` caps the number of batches per epoch (smoke runs).
    """
    import keras

    keras.utils.set_random_seed(seed)
    tr = ds.subset(train_idx)
    fit_i, val_i = split_by_piece(tr.groups, test_frac=VAL_FRAC, seed=seed + 1)
    if len(val_i) == 0 or len(fit_i) == 0:
        fit_i, val_i = np.arange(len(tr)), np.arange(len(tr))
    mean, std = input_stats(tr.x[fit_i])
    y = tr.y
    out_mean, out_std = output_stats(ds.name, y[fit_i]) if y.ndim == 2 else (None, None)
    if out_mean is not None:
        y = ((y - out_mean) / out_std).astype(np.float32)
    xs = standardise(tr.x, mean, std)
    model = nets.build(ds.name, seed=seed)
    callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=4, restore_best_weights=True)]
    steps = None
    if max_steps is not None:
        steps = max(1, min(max_steps, int(np.ceil(len(fit_i) / batch))))
    rng = np.random.default_rng(seed)
    order = rng.permutation(fit_i)
    hist = model.fit(
        xs[order],
        y[order],
        validation_data=(xs[val_i], y[val_i]),
        epochs=epochs,
        batch_size=batch,
        steps_per_epoch=steps,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    val = hist.history.get("val_loss", [float("nan")])
    log.info("%s: trained %d epochs, best val loss %.4f", ds.name, len(val), float(np.nanmin(val)))
    return Trained(ds.name, model, mean, std, out_mean, out_std, len(val), float(np.nanmin(val)))


def predict_float(t: Trained, x_raw: np.ndarray) -> np.ndarray:
    """Float Keras outputs in the *net's* space (before output de-standardisation), ``(n, n_out)``."""
    return np.asarray(t.model.predict(standardise(x_raw, t.input_mean, t.input_std), batch_size=1024, verbose=0), dtype=np.float32)


def destandardise(t: Trained, y_net: np.ndarray) -> np.ndarray:
    """Net-space outputs to spec units (what the runner returns)."""
    if t.output_std is None or t.output_mean is None:
        return y_net
    return y_net * t.output_std + t.output_mean
