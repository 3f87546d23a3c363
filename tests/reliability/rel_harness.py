"""Shared pieces of the reliability tests: configs from YAML, models that return whatever a broken
or odd network could, audio segments (tones, noise, silence, extreme samples) and a checker of the
MIDI stream that only looks at what reached the sink."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from kelly_edge.config.loader import parse_config
from kelly_edge.config.schema import Config
from kelly_edge.midi import messages as mm
from kelly_edge.midi.notes import PlayedNote, pair_notes
from kelly_edge.models import spec
from kelly_edge.models.fallbacks import make_fallback
from kelly_edge.models.runner import LoadedModel

OUTPUT_KINDS = ("fallback", "softmax", "onehot", "zeros", "garbage", "huge", "uniform")


def config_yaml(*, channels: tuple[int, int, int], ranges: tuple[tuple[int, int], ...], seed: int = 0,
                bpm: float = 100.0, silence_tail_s: float = 0.5, enabled: tuple[bool, bool, bool] = (True, True, True),
                density: float = 1.0, temperature: float = 0.7) -> Config:
    """A config built the way a user writes one (YAML text through the validating loader)."""
    voices = "\n".join(
        f"  {name}: {{enabled: {str(on).lower()}, channel: {ch}, low: {lo}, high: {hi}}}"
        for name, on, ch, (lo, hi) in zip(("melody", "chord", "bass"), enabled, channels, ranges)
    )
    text = (
        f"tempo: {{bpm: {bpm}}}\n"
        f"audio: {{silence_tail_s: {silence_tail_s}}}\n"
        f"generator:\n  seed: {seed}\n  melody_density: {density}\n  temperature: {temperature}\n{voices}\n"
    )
    return parse_config(text, "<reliability>")


class OddModel:
    """A model call returning outputs of one ``kind`` (drawn from a seeded stream each call):
    proper softmaxes, one-hots, zeros, NaN/inf garbage, huge values, uniform noise."""

    def __init__(self, s: spec.ModelSpec, kind: str, seed: int) -> None:
        self.spec = s
        self.kind = kind
        self.rng = np.random.default_rng(seed)
        self.out = np.zeros(s.n_out, dtype=np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        rng, n, out = self.rng, self.spec.n_out, self.out
        kind = self.kind
        if kind == "softmax":
            logits = rng.normal(0.0, 3.0, n)
            out[:] = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        elif kind == "onehot":
            out[:] = 0.0
            out[rng.integers(0, n)] = 1.0
        elif kind == "zeros":
            out[:] = 0.0
        elif kind == "garbage":
            out[:] = rng.normal(0.0, 5.0, n)
            out[rng.integers(0, n, max(1, n // 8))] = np.nan
            out[rng.integers(0, n)] = np.inf
            out[rng.integers(0, n)] = -np.inf
        elif kind == "huge":
            out[:] = rng.choice(np.array([-3e38, 3e38, 1e9, -1e9, 0.0], dtype=np.float32), n)
        else:
            out[:] = rng.random(n)
        return out


def odd_models(kinds: dict[str, str], seed: int) -> dict[str, LoadedModel]:
    """One model per spec: its heuristic fallback (``"fallback"``) or an :class:`OddModel`."""
    models = {}
    for i, s in enumerate(spec.MODELS):
        kind = kinds.get(s.name, "fallback")
        call = make_fallback(s.name) if kind == "fallback" else OddModel(s, kind, seed + i)
        models[s.name] = LoadedModel(s, call, "trained" if kind != "fallback" else "fallback", kind)
    return models


AUDIO_KINDS = ("tone", "chord", "noise", "silence", "clicks", "dc", "full_scale", "nan", "inf")


def audio_segment(kind: str, n: int, sample_rate: int, rng: np.random.Generator, amp: float = 0.3) -> np.ndarray:
    """``n`` mono float32 samples of one kind of input, including ones no interface should deliver."""
    t = np.arange(n) / sample_rate
    if kind == "tone":
        f = 110.0 * 2 ** (rng.integers(0, 36) / 12)
        x = amp * np.sin(2 * np.pi * f * t) * (0.6 + 0.4 * np.cos(2 * np.pi * 2.0 * t) ** 2)
    elif kind == "chord":
        root = rng.integers(0, 24)
        x = sum(amp / 3 * np.sin(2 * np.pi * 110.0 * 2 ** ((root + k) / 12) * t) for k in (0, 4, 7))
    elif kind == "noise":
        x = amp * rng.standard_normal(n)
    elif kind == "silence":
        x = np.zeros(n)
    elif kind == "clicks":
        x = np.zeros(n)
        x[:: max(1, sample_rate // 4)] = amp * 3
    elif kind == "dc":
        x = np.full(n, amp * 2 - 0.5)
    elif kind == "full_scale":
        x = np.where(np.sin(2 * np.pi * 440.0 * t) >= 0, 1.0, -1.0)
    elif kind == "nan":
        x = amp * np.sin(2 * np.pi * 330.0 * t)
        x[rng.integers(0, n, max(1, n // 10))] = np.nan
    else:  # inf
        x = amp * np.sin(2 * np.pi * 330.0 * t)
        x[rng.integers(0, n, max(1, n // 10))] = rng.choice([np.inf, -np.inf])
    return np.asarray(x, dtype=np.float32)


@dataclass
class StreamCheck:
    """What a MIDI stream must satisfy, and the facts needed to check it."""

    channels: set[int]  # configured wire channels
    ranges: dict[int, list[tuple[int, int]]]  # wire channel -> the [low, high] of the voices on it
    panics: list[float] = field(default_factory=list)  # audio times of panics (incl. the close)


def check_stream(events: Iterable[tuple[float, bytes]], check: StreamCheck) -> list[PlayedNote]:
    """Assert the contract on a ``[(t, message)]`` stream; returns the paired notes."""
    events = list(events)
    notes, problems = pair_notes(events)
    assert problems == [], problems[:5]
    for t, msg in events:
        assert len(msg) == 3 and all(0 <= b <= 127 for b in msg[1:]), msg.hex()
        status = msg[0] & 0xF0
        assert status in (mm.NOTE_ON, mm.NOTE_OFF, mm.CONTROL_CHANGE), msg.hex()
        assert msg[0] & 0x0F in check.channels, f"channel {msg[0] & 0x0F} not configured: {msg.hex()}"
        if mm.is_note_on(msg):
            assert 1 <= msg[2] <= 127
            assert any(lo <= msg[1] <= hi for lo, hi in check.ranges[msg[0] & 0x0F]), msg.hex()
    for n in notes:
        assert 1 <= n.velocity <= 127 and n.end >= n.start
        for t_p in check.panics:
            assert not (n.start < t_p < n.end), f"{n} sounds through the panic at {t_p:.3f} s"
    if check.panics and events:  # the close (last panic) leaves nothing: CC123 on every channel that played
        t_end = check.panics[-1]
        assert all(n.end <= t_end + 1e-9 for n in notes)
        tail = {m for t, m in events if t >= t_end - 1e-9}
        for ch in {n.channel for n in notes}:
            assert mm.all_notes_off(ch) in tail and mm.all_sound_off(ch) in tail
    return notes


def feed(engine: object, samples: np.ndarray, on_hop: Callable[[], None] | None = None) -> None:
    """Push ``samples`` through ``engine.process_hop`` hop by hop (the last hop may be partial)."""
    hop = engine.hop_length  # type: ignore[attr-defined]
    for start in range(0, samples.size, hop):
        engine.process_hop(samples[start : start + hop])  # type: ignore[attr-defined]
        if on_hop is not None:
            on_hop()
