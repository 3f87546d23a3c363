"""Test harness for the generator: small config objects, model outputs, an engine-like driver and
an invariant checker that only looks at what reached the sink."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from kelly_edge.generate.generator import Generator
from kelly_edge.generate.phrasing import PhrasePlanner
from kelly_edge.generate.progression import ProgressionMemory
from kelly_edge.midi import messages as mm
from kelly_edge.midi.notes import PlayedNote, pair_notes
from kelly_edge.midi.sinks import RecordingSink
from kelly_edge.models import spec


@dataclass(frozen=True)
class Voice:
    enabled: bool
    channel: int
    low: int
    high: int


@dataclass(frozen=True)
class Settings:
    seed: int = 0
    melody_density: float = 1.0
    temperature: float = 0.7
    melody: Voice = Voice(True, 1, 60, 84)
    chord: Voice = Voice(True, 2, 48, 72)
    bass: Voice = Voice(True, 3, 28, 52)


DYN = spec.DYNAMICS
D_VELOCITY = DYN.output_slice("velocity").start
D_SPREAD = DYN.output_slice("velocity_spread").start
D_ACCENT = DYN.output_slice("accent").start
D_LENGTH = DYN.output_slice("length").start
D_CC1 = DYN.output_slice("cc1").start
D_CC11 = DYN.output_slice("cc11").start
D_CC74 = DYN.output_slice("cc74").start
D_BALANCE = DYN.output_slice("voice_balance")
D_HUMANIZE = DYN.output_slice("humanize").start
HIT = spec.GROOVE.output_slice("hit_prob")
MICRO = spec.GROOVE.output_slice("micro_timing")

MAJOR = (0, 2, 4, 5, 7, 9, 11)
HARMONIC_MINOR_ALLOWED = (0, 2, 3, 5, 7, 8, 10, 11)


def in_key(pitch: int, tonic: int, major: bool) -> bool:
    """Written independently of the generator: the key's scale, minor with the raised 7th."""
    return (pitch - tonic) % 12 in (MAJOR if major else HARMONIC_MINOR_ALLOWED)


@dataclass
class Outputs:
    """What the engine passes to plan_step for one step."""

    melody: np.ndarray
    harmony: np.ndarray
    dynamics: np.ndarray
    groove: np.ndarray
    emotion: np.ndarray = field(default_factory=lambda: np.zeros(64, np.float32))
    tonic: int = 0
    major: bool = True
    gate_open: bool = True
    player_onset_rate: float = 0.0

    @classmethod
    def default(cls, *, chord: int | None = None, tonic: int = 0, major: bool = True) -> Outputs:
        """Uniform melody, one clear chord (the tonic triad), medium dynamics with no randomness."""
        melody = np.full(128, 1.0 / 128, np.float32)
        harmony = np.zeros(64, np.float32)
        if chord is None:
            chord = spec.chord_index(tonic, "maj" if major else "min")
        harmony[chord] = 0.9
        harmony[spec.NO_CHORD] = 0.02
        dyn = np.zeros(16, np.float32)
        dyn[D_VELOCITY] = 0.6
        dyn[D_LENGTH] = 0.8
        dyn[[D_CC1, D_CC11, D_CC74]] = 0.5
        dyn[D_BALANCE] = 2.0 / 3.0  # x 1.5 = a velocity scale of 1
        groove = np.zeros(32, np.float32)
        groove[HIT] = 0.5
        return cls(melody, harmony, dyn, groove, tonic=tonic, major=major)

    def copy(self, **changes: object) -> Outputs:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in fields.items()}
        fields.update(changes)
        return Outputs(**fields)  # type: ignore[arg-type]


@dataclass(frozen=True)
class StepInfo:
    index: int
    t: float
    tonic: int
    major: bool
    gate_open: bool


@dataclass
class Run:
    gen: Generator
    sink: RecordingSink
    step_s: float
    steps: list[StepInfo]
    end_t: float

    @property
    def events(self) -> list[tuple[float, bytes]]:
        return self.sink.events

    def paired(self) -> tuple[list[PlayedNote], list[str]]:
        return pair_notes(self.sink.events)

    def notes(self, channel: int | None = None) -> list[PlayedNote]:
        """Paired notes, optionally of one *config* channel (1..16)."""
        notes, _ = pair_notes(self.sink.events)
        if channel is None:
            return notes
        return [n for n in notes if n.channel == channel - 1]

    def ons(self, channel: int | None = None) -> list[tuple[float, int, int]]:
        """(t, note, velocity) of every note-on, optionally of one config channel."""
        out = []
        for t, m in self.sink.events:
            if mm.is_note_on(m) and (channel is None or m[0] & 0x0F == channel - 1):
                out.append((t, m[1], m[2]))
        return out

    def ccs(self, channel: int) -> list[tuple[float, int, int]]:
        """(t, control, value) of every control change on a config channel."""
        return [(t, m[1], m[2]) for t, m in self.sink.events if m[0] == 0xB0 | (channel - 1)]


def phrase_steps(settings: Settings, n_steps: int) -> set[int]:
    """The steps (0..n_steps-1) outside the melody's breaths, for a run whose gate stays open and
    whose player is not busy: the generator's phrases come from a PhrasePlanner on its seed."""
    planner = PhrasePlanner(settings.seed, settings.melody.low, settings.melody.high)
    return {k for k in range(n_steps) if planner.target(k, busy=False) is not None}


OutputsFn = Callable[[int], Outputs]
Action = Callable[[Generator, float], None]


def run(
    settings: Settings,
    n_steps: int,
    outputs: Outputs | OutputsFn,
    *,
    step_s: float = 0.125,
    hop: float = 0.01,
    actions: list[tuple[float, Action]] | None = None,
    close: bool = True,
    tail_s: float = 0.5,
    progression: ProgressionMemory | None = None,
    heard: Callable[[float], np.ndarray] | None = None,
) -> Run:
    """Drive a Generator the way the engine does: every hop, plan each step whose grid time is
    less than a step ahead, then advance to the hop's time. ``actions`` (time, fn(gen, now)) run
    at the start of the first hop at or after their time (footswitches, panic...). ``heard``
    (time -> (64,) chord distribution): a reactive generator (harmony at the hop rate) that is
    told the chord heard at every hop while the gate is open, before the hop's planning."""
    sink = RecordingSink()
    gen = Generator(settings, sink, progression, reactive=heard is not None)
    pending = sorted(actions or [], key=lambda a: a[0])
    steps: list[StepInfo] = []
    next_step = 0
    end_t = n_steps * step_s + tail_s
    hop_i = 0
    now = 0.0
    while now <= end_t:
        while pending and pending[0][0] <= now:
            pending.pop(0)[1](gen, now)
        if heard is not None and next_step:
            last = outputs(next_step - 1) if callable(outputs) else outputs
            if last.gate_open:
                gen.hear_chord(heard(now), now=now, tonic=last.tonic, major=last.major)
        while next_step < n_steps and next_step * step_s < now + step_s:
            out = outputs(next_step) if callable(outputs) else outputs
            t_step = next_step * step_s
            gen.plan_step(
                step_index=next_step, t_step=t_step, step_s=step_s, tonic=out.tonic, major=out.major,
                emotion=out.emotion, melody=out.melody, harmony=out.harmony, dynamics=out.dynamics,
                groove=out.groove, gate_open=out.gate_open, player_onset_rate=out.player_onset_rate,
            )
            steps.append(StepInfo(next_step, t_step, out.tonic, out.major, out.gate_open))
            next_step += 1
        gen.advance(now)
        hop_i += 1
        now = hop_i * hop
    if close:
        gen.close(now)
    return Run(gen, sink, step_s, steps, now)


def check_invariants(r: Run, settings: Settings, *, closed: bool = True) -> None:
    """Assert the generator's contract on everything the sink received."""
    notes, problems = r.paired()
    if closed:
        assert problems == [], problems[:5]
    else:
        assert [p for p in problems if "never released" not in p] == [], problems[:5]
    times = [t for t, _ in r.events]
    assert times == sorted(times), "event times must be non-decreasing"
    assert all(t >= 0.0 for t in times)
    voices = (settings.melody, settings.chord, settings.bass)
    channels = {v.channel - 1 for v in voices}
    for t, m in r.events:
        ch = m[0] & 0x0F
        assert m[0] >= 0x80 and ch in channels, f"message {m.hex()} at {t} on an unconfigured channel"
        if mm.is_note_on(m):
            assert 1 <= m[2] <= 127
            ranges = [(v.low, v.high) for v in voices if v.channel - 1 == ch]
            assert any(lo <= m[1] <= hi for lo, hi in ranges), f"note {m[1]} out of range on ch{ch}"
    if closed:
        assert r.events == [] or r.events[-1][0] <= r.end_t
