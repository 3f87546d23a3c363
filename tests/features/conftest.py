"""Shared fixtures for the feature tests: rendered audio (cached per session) and a hop feeder."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from kelly_edge.features.context import FeatureContext
from tools.render import load_wav_mono, render_score

RENDER_TEMPO_BPM = 100.0  # fixed, so "the first N seconds" is a known number of quarter notes


@pytest.fixture(scope="session")
def render_tempo_bpm() -> float:
    """The fixed tempo every :func:`render_cache` rendering plays at."""
    return RENDER_TEMPO_BPM


@pytest.fixture(scope="session")
def render_cache(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., tuple[np.ndarray, int]]:
    """``render(piece, *, transpose=0, sample_rate=22050, seconds=15.0)`` -> ``(mono float32, sr)``.

    Each distinct rendering is made once per session with FluidSynth (piano, fixed tempo).
    """
    folder: Path = tmp_path_factory.mktemp("renders")
    cache: dict[tuple[str, int, int, float], tuple[np.ndarray, int]] = {}

    def render(piece: str, *, transpose: int = 0, sample_rate: int = 22050, seconds: float = 15.0) -> tuple[np.ndarray, int]:
        key = (piece, transpose, sample_rate, seconds)
        if key not in cache:
            name = f"{piece.replace('/', '_')}_{transpose:+d}_{sample_rate}_{seconds:g}.wav"
            wav = render_score(
                piece,
                folder / name,
                sample_rate=sample_rate,
                transpose=transpose,
                tempo_bpm=RENDER_TEMPO_BPM,
                max_seconds=seconds,
            )
            cache[key] = load_wav_mono(wav)
        return cache[key]

    return render


def step_at(hop_index: int, hop_length: int, sample_rate: int, bpm: float) -> int:
    """16th step 0..15 holding a hop's newest sample, for a 4/4 bar at ``bpm`` from sample 0.

    The newest sample decides: an attack inside the hop belongs to the step it was played in.
    """
    sixteenth_s = 60.0 / bpm / 4.0
    newest = (hop_index + 1) * hop_length - 1
    return int((newest / sample_rate) / sixteenth_s) % 16


@pytest.fixture()
def feed() -> Callable[..., FeatureContext]:
    """``feed(ctx, x, *, bpm=120.0, each=None)``: push all whole hops of ``x`` into ``ctx``.

    ``each(ctx, hop_index)`` is called after every update (to record per-hop attributes).
    """

    def run(
        ctx: FeatureContext,
        x: np.ndarray,
        *,
        bpm: float = 120.0,
        each: Callable[[FeatureContext, int], None] | None = None,
    ) -> FeatureContext:
        h = ctx.hop_length
        x = np.asarray(x, dtype=np.float32)
        for i in range(x.size // h):
            ctx.update(x[i * h : (i + 1) * h], step=step_at(i, h, ctx.sample_rate, bpm))
            if each is not None:
                each(ctx, i)
        return ctx

    return run


def click_track(
    sample_rate: int, *, bpm: float = 120.0, per_beat: int = 2, seconds: float = 12.0, level: float = 0.5
) -> np.ndarray:
    """Decaying 1.5 kHz blips (5 ms decay) on every ``1/per_beat`` beat, ``(n,) float32``."""
    x = np.zeros(int(sample_rate * seconds), dtype=np.float32)
    period = 60.0 / bpm / per_beat
    t = np.arange(int(0.03 * sample_rate)) / sample_rate
    blip = (level * np.sin(2 * np.pi * 1500.0 * t) * np.exp(-t / 0.005)).astype(np.float32)
    for k in range(int(seconds / period)):
        i = int(round(k * period * sample_rate))
        n = min(blip.size, x.size - i)
        x[i : i + n] += blip[:n]
    return x


@pytest.fixture()
def make_clicks() -> Callable[..., np.ndarray]:
    """The :func:`click_track` generator, as a fixture."""
    return click_track
