"""The beat tracker's per-hop path allocates no arrays (it runs inside the 10 ms hop)."""

from __future__ import annotations

import tracemalloc

import numpy as np

from kelly_edge.tempo.beat import BeatTracker

HOP_S = 220 / 22050


def test_updates_allocate_no_arrays_including_tempo_updates_and_predictions() -> None:
    """Peak traced memory per update stays under 2 KiB over 20 s of clicks at 120 BPM, which
    covers 80 tempo updates and ~40 beat predictions: any temporary array of the tracker's
    sizes (the 150 tempo states, a beat's ~50 hops of score) would exceed it."""
    tracker = BeatTracker(hop_s=HOP_S, bpm=100.0)
    rng = np.random.default_rng(3)
    mel = np.zeros(128, dtype=np.float32)
    period = round(0.5 / HOP_S)

    def feed(i: int) -> bool:
        mel[:] = rng.uniform(-60.0, -20.0, 128)
        return tracker.update(6.0 if i % period == 0 else 0.1, mel, False)

    for i in range(800):  # warm up: a tempo known, predictions started
        feed(i)
    assert tracker.known
    tracemalloc.start()
    try:
        peaks, predictions = [], 0
        for i in range(800, 2800):
            tracemalloc.reset_peak()
            base, _ = tracemalloc.get_traced_memory()
            predictions += feed(i)
            _, peak = tracemalloc.get_traced_memory()
            peaks.append(peak - base)
    finally:
        tracemalloc.stop()
    assert predictions >= 30
    assert max(peaks) < 2048, max(peaks)  # numpy reductions keep ~1 KiB of iterator state
