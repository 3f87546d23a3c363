"""The benchmark's audio: a real recording (the bundled demo by default) looped to length.

Real audio matters: silence skips the spectral descriptors and chroma, so a synthetic or silent
input would flatter the feature path. The demo is 20 s of a rendered piano rag; looping it keeps
the bench free of rendering tools (music21/fluidsynth) and of generated files in the repo. Long
files for the process measurements are written to a temporary folder and deleted afterwards.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from kelly_edge.audio.wav import WavReader

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo.wav"


def load_looped(seconds: float, wav: str | Path | None = None) -> tuple[np.ndarray, int, str]:
    """``(samples (n,) float32 mono, sample_rate, description)`` of ``wav`` (default the demo)
    repeated until at least ``seconds`` long (cut to exactly that many samples)."""
    path = Path(wav) if wav is not None else DEMO
    with WavReader(path) as reader:
        sr = reader.sample_rate
        x = reader.read(reader.info.frames)
    if x.size == 0:
        raise ValueError(f"{path}: no audio")
    n = max(1, int(round(seconds * sr)))
    reps = -(-n // x.size)
    looped = np.tile(x, reps)[:n].astype(np.float32, copy=False)
    desc = f"{path.name} ({x.size / sr:.1f} s) looped to {n / sr:.1f} s at {sr} Hz"
    return looped, sr, desc


def write_wav16(path: str | Path, x: np.ndarray, sample_rate: int) -> None:
    """Write mono float samples (-1..1) as a 16-bit PCM WAV."""
    pcm = np.clip(np.rint(np.asarray(x, np.float64) * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())
