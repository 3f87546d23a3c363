"""The dynamics model sees in training the emotion input it is given on stage.

On stage the engine hands the DynamicsEngine the trained EmotionRecognizer's VADI, run every 16th,
smoothed over 1 s and leaned toward the intent (:class:`kelly_edge.emotion.follow.EmotionFollower`).
The training rows (:func:`tools.train.build_audio.features_from_audio`) must carry the same vector
for the same audio, as ``run --input`` would compute it; they once carried the raw emotion
fallback's estimate instead (0.2-0.9 away on this audio, in the largest of the four).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kelly_edge.config.loader import parse_config
from kelly_edge.engine.engine import Engine
from kelly_edge.midi.sinks import RecordingSink
from kelly_edge.models import spec
from kelly_edge.models.fallbacks import make_fallback
from tools.train.build_audio import emotion_sha256, features_from_audio

SR = 22050
BPM = 120.0
BUNDLED = Path(__file__).resolve().parents[2] / "models_tflite"
SAME_TOL = 1e-5


def _playing(seconds: float = 14.0) -> np.ndarray:
    """Eighth-note chords of harmonic tones that get louder, faster and darker (C major, then C minor)."""
    rng = np.random.default_rng(3)
    t = np.arange(int(seconds * SR)) / SR
    out = np.zeros_like(t)
    eighth = 30.0 / BPM
    for i in range(int(seconds / eighth)):
        t0 = i * eighth
        minor = t0 > seconds / 2
        chord = (60, 63, 67) if minor else (60, 64, 67)
        amp = 0.05 + 0.25 * t0 / seconds
        seg = (t >= t0) & (t < t0 + eighth * (0.5 if minor else 0.9))
        tt = t[seg] - t0
        for p in chord:
            f = 440.0 * 2 ** ((p - 69 + 12 * int(rng.integers(0, 2))) / 12)
            out[seg] += amp * np.exp(-tt * 3.0) * sum(np.sin(2 * np.pi * f * h * tt) / h for h in (1, 2, 3))
    return (out / max(1.0, np.abs(out).max())).astype(np.float32)


def _stage(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(hop end times, emotion_vadi after each hop)`` of the real engine with the shipped models."""
    config = parse_config(f"tempo: {{bpm: {BPM}, source: config}}\nscheduler: {{budget_ms: 100}}")
    engine = Engine(config, RecordingSink(), sample_rate=SR)
    assert engine.models["emotion"].status == "trained"
    h = engine.hop_length
    times, vadi = [], []
    for i in range(samples.size // h):
        engine.process_hop(samples[i * h : (i + 1) * h])
        times.append(engine.time_s)
        vadi.append(engine.emotion_vadi.copy())
    engine.close()
    return np.array(times), np.array(vadi)


@pytest.fixture(scope="module")
def both() -> tuple[list, np.ndarray, np.ndarray]:
    samples = _playing()
    rows = features_from_audio(samples, SR, tempo_bpm=BPM, warmup_s=5.0, every_s=0.5, models_dir=BUNDLED)
    times, vadi = _stage(samples)
    return rows, times, vadi


def _row_times(n: int) -> np.ndarray:
    return 5.0 + 0.5 * np.arange(n)


def test_training_rows_carry_the_emotion_the_engine_follows(both: tuple[list, np.ndarray, np.ndarray]) -> None:
    rows, times, vadi = both
    assert len(rows) >= 15
    worst = 0.0
    for (_, _, followed), t in zip(rows, _row_times(len(rows))):
        j = int(np.searchsorted(times, t - 1e-9))  # the hop whose end the row was taken at
        worst = max(worst, float(np.abs(followed - vadi[j]).max()))
    assert worst <= SAME_TOL, f"training and stage emotion inputs differ by up to {worst:.3f}"


def test_the_check_tells_the_old_raw_fallback_input_apart(both: tuple[list, np.ndarray, np.ndarray]) -> None:
    """The raw fallback estimate (what training used to feed the dynamics rows) is far from the
    engine's followed emotion on this audio, so the test above would catch that path."""
    rows, times, vadi = both
    fallback = make_fallback("emotion")
    gaps = []
    for (x_e, _, _), t in zip(rows, _row_times(len(rows))):
        j = int(np.searchsorted(times, t - 1e-9))
        gaps.append(float(np.abs(fallback(x_e)[spec.Emo.VADI] - vadi[j]).max()))
    assert min(gaps) > 0.05, min(gaps)  # measured 0.2 at least


def test_the_dynamics_rows_name_the_emotion_model_they_were_made_with(tmp_path: Path) -> None:
    """The sha256 recorded with the rows is the shipped file's; an empty folder means the fallback."""
    from kelly_edge.models.runner import sha256_of

    assert emotion_sha256(BUNDLED) == sha256_of(BUNDLED / spec.EMOTION.filename)
    assert emotion_sha256(tmp_path) == "fallback"
