"""The beat tracker's per-hop path allocates no arrays (it runs inside the 10 ms hop)."""

from __future__ import annotations

import tracemalloc

import numpy as np

from kelly_edge.tempo.beat import BeatTracker

HOP_S = 220 / 22050


def test_updates_allocate_no_arrays_including_tempo_updates_and_predictions() -> None:
    """Peak traced memory per update stays under 3 KiB over 20 s of clicks at 120 BPM, which
    covers 80 tempo updates and ~40 beat predictions: a temporary array of the 150 tempo states
    (1.3 KiB) on top of numpy's iterator state would exceed it. The clicks are in the mel frame
    (the tracker scores the frame's flux); on that input the tracker as first written peaked at
    2.3 KiB too (numpy scalars and reduction state, no array of its sizes), 1.7 KiB on noise."""
    tracker = BeatTracker(hop_s=HOP_S, bpm=100.0)
    rng = np.random.default_rng(3)
    mel = np.zeros(128, dtype=np.float32)
    period = round(0.5 / HOP_S)

    def feed(i: int) -> bool:  # the tracker scores the frame's flux: a click is a 30 dB rise
        click = i % period == 0
        mel[:] = rng.uniform(-60.0, -50.0, 128) + (30.0 if click else 0.0)
        return tracker.update(6.0 if click else 0.1, mel, False)

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
    assert max(peaks) < 3072, max(peaks)  # numpy reductions and scalars keep ~2 KiB of state
