"""The training-set container, piece-wise splits and the on-disk cache.

Every row carries the id of the piece it came from (``groups``; for rows made from the corpus, the
id of its *tune*, several files holding one chorale tune: ``build_symbolic.tune_ids``); held-out
data is chosen by group, never by frame or note, so a test row never shares a tune (or a
transposition or render of one) with training.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kelly_edge.fileio import write_atomic

log = logging.getLogger(__name__)


@dataclass
class Dataset:
    """One model's rows. ``x`` ``(n, n_in) float32`` raw spec inputs (encoder output, not standardised);
    ``y`` ``(n,) int64`` class for softmax models or ``(n, n_out) float32`` targets otherwise;
    ``groups`` ``(n,) int64`` piece id; ``info`` a JSON-able description (sources, counts, skips)."""

    name: str
    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, idx: np.ndarray) -> "Dataset":
        return Dataset(self.name, self.x[idx], self.y[idx], self.groups[idx], self.info)


def split_by_piece(groups: np.ndarray, *, test_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, test)``: a seeded random ``test_frac`` of the *pieces* is held out."""
    pieces = np.unique(groups)
    rng = np.random.default_rng(seed)
    rng.shuffle(pieces)
    n_test = max(1, int(round(test_frac * len(pieces)))) if len(pieces) > 1 else 0
    test_set = set(pieces[:n_test].tolist())
    is_test = np.array([g in test_set for g in groups.tolist()], dtype=bool)
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def save(ds: Dataset, folder: Path) -> Path:
    """Write ``<folder>/<name>.npz`` atomically (info stored as JSON inside)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{ds.name}.npz"
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, x=ds.x, y=ds.y, groups=ds.groups, info=np.array(json.dumps(ds.info)))
    write_atomic(path, buf.getvalue())
    log.info("wrote %s (%d rows)", path, len(ds))
    return path


def load(name: str, folder: Path) -> Dataset:
    """Read a cached dataset; FileNotFoundError naming the build command when absent."""
    path = folder / f"{name}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `python -m tools.train build --models {name}` first")
    with np.load(path, allow_pickle=False) as z:
        return Dataset(name, z["x"], z["y"], z["groups"], json.loads(str(z["info"])))


def default_cache() -> Path:
    """Cache folder: $KELLY_TRAIN_CACHE or ``build/train_cache`` in the working directory."""
    return Path(os.environ.get("KELLY_TRAIN_CACHE", "build/train_cache"))
