"""The same work done the obvious other ways: librosa's mel per frame, numpy float32 nets.

- ``librosa``: ``librosa.feature.melspectrogram`` of one analysis window (``center=False``, so one
  frame) + ``power_to_db`` — what a straightforward port would call every hop. librosa is a test
  extra: when it is missing the figure is None and the note says so. Its frame is also compared
  with ours (max |dB difference|), so the comparison is of equal work.
- ``numpy``: the five networks in float32 numpy (:mod:`kelly_edge.bench.numpy_nets`, weights
  dequantised from the shipped files) against our five runner calls (standardise, quantise,
  invoke, dequantise) on the same encoded inputs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from kelly_edge.bench.numpy_nets import NumpyNet, agreement
from kelly_edge.bench.stats import summary_us
from kelly_edge.features.mel import MelExtractor
from kelly_edge.models import spec
from kelly_edge.models.runner import load_all


def librosa_mel(x: np.ndarray, sample_rate: int, frames: int = 400) -> tuple[dict[str, float] | None, float | None, str]:
    """(``{p50}`` µs per frame, max |dB diff| vs ours, note) — or (None, None, why not)."""
    try:
        import librosa
    except ImportError:
        return None, None, "librosa not installed (a test extra: pip install .[test])"
    ours = MelExtractor(sample_rate=sample_rate)
    n, h = ours.n_fft, ours.hop_length
    kwargs: dict[str, Any] = dict(sr=sample_rate, n_fft=n, hop_length=h, center=False, power=2.0,
                                  n_mels=ours.n_mels, fmax=min(8000.0, sample_rate / 2.0), window="hann")
    starts = np.linspace(0, max(0, x.size - n), num=min(frames, max(1, (x.size - n) // h)), dtype=np.int64)
    times = np.zeros(starts.size, dtype=np.int64)
    worst = 0.0
    for i, s in enumerate(starts):
        window = np.ascontiguousarray(x[s : s + n], dtype=np.float32)
        t0 = time.perf_counter_ns()
        m = librosa.feature.melspectrogram(y=window, **kwargs)
        db = librosa.power_to_db(m, ref=1.0, amin=1e-10, top_db=80.0)
        times[i] = time.perf_counter_ns() - t0
        if i % 40 == 0:  # equal work: our extractor on the same window
            fresh = MelExtractor(sample_rate=sample_rate)
            m = -(-n // h)
            buf = np.zeros(m * h, dtype=np.float32)
            tail = x[max(0, s + n - m * h) : s + n]
            buf[buf.size - tail.size :] = tail
            for k in range(m):
                fresh.push(buf[k * h : (k + 1) * h])
            worst = max(worst, float(np.max(np.abs(fresh.frame - db[:, 0]))))
    return summary_us(times, ("p50",)), round(worst, 4), f"librosa {librosa.__version__}, one frame per call"


def numpy_models(models_dir: Path, calls: int = 2000) -> dict[str, Any]:
    """``{numpy_models_us {p50}, our_models_us {p50}, agreement_min}``: all five nets per call."""
    rng = np.random.default_rng(0)
    loaded = load_all(models_dir)
    nets = [NumpyNet(models_dir / s.filename) for s in spec.MODELS]
    cos = [agreement(net, models_dir / s.filename, rng.normal(size=(16, s.n_in)).astype(np.float32))
           for net, s in zip(nets, spec.MODELS)]
    xs = [rng.normal(size=s.n_in).astype(np.float32) for s in spec.MODELS]
    ours = [loaded[s.name].call for s in spec.MODELS]
    t_np = np.zeros(calls, dtype=np.int64)
    t_ours = np.zeros(calls, dtype=np.int64)
    clock = time.perf_counter_ns
    for i in range(calls):  # interleaved, so machine noise hits both alike
        t0 = clock()
        for net, xv in zip(nets, xs):
            net(xv)
        t1 = clock()
        for call, xv in zip(ours, xs):
            call(xv)
        t2 = clock()
        t_np[i], t_ours[i] = t1 - t0, t2 - t1
    return {
        "numpy_models_us": summary_us(t_np, ("p50",)),
        "our_models_us": summary_us(t_ours, ("p50",)),
        "numpy_agreement_min_cosine": round(min(cos), 4),
        "all_trained": all(loaded[s.name].status == "trained" for s in spec.MODELS),
    }
