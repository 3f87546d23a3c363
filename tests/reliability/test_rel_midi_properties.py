"""Property tests of Engine + generator + MIDI as the box runs them: any model outputs (proper,
garbage, NaN/inf, huge), any audio (tones, silences, noise, DC, full scale, NaN/inf samples), model
and voice toggles through the footswitch controls, tempo changes and panics, in any order.

Checked on the MIDI stream only: every note-on has its note-off, notes and velocities stay in
0..127 (velocity >= 1 for a note-on), every message is on a configured channel and inside its
voice's range, no note sounds through a panic, a voice switched off is silent until switched on,
and after the close nothing sounds. The same stream written as a .mid is read back with mido.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st, target

from kelly_edge.control.box import EngineControls
from kelly_edge.engine.engine import Engine
from kelly_edge.midi import messages as mm
from kelly_edge.midi.sinks import FileSink, RecordingSink
from kelly_edge.models import spec
from tests.reliability.rel_harness import (
    AUDIO_KINDS,
    OUTPUT_KINDS,
    StreamCheck,
    audio_segment,
    check_stream,
    config_yaml,
    feed,
    odd_models,
)

SAMPLE_RATES = (16000, 22050, 48000)
ACTIONS = ("none", "tempo", "toggle_model", "toggle_model", "panic")


@dataclass(frozen=True)
class Segment:
    audio: str
    hops: int
    amp: float
    action: str
    arg: str | float | bool | None


@dataclass(frozen=True)
class Scenario:
    sample_rate: int
    channels: tuple[int, int, int]
    ranges: tuple[tuple[int, int], ...]
    enabled: tuple[bool, bool, bool]
    seed: int
    bpm: float
    tail_s: float
    kinds: dict[str, str]
    segments: tuple[Segment, ...]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    shared = draw(st.integers(0, 3)) == 0
    channels = (1, 1, 1) if shared else tuple(draw(st.lists(st.integers(1, 16), min_size=3, max_size=3, unique=True)))
    ranges = []
    for _ in range(3):
        lo = draw(st.integers(0, 126))  # the config wants low < high
        ranges.append((lo, min(127, lo + draw(st.sampled_from([1, 2, 7, 12, 24, 60])))))
    enabled = tuple(draw(st.booleans()) if draw(st.integers(0, 5)) == 0 else True for _ in range(3))
    kinds = {s.name: draw(st.sampled_from(OUTPUT_KINDS)) for s in spec.MODELS}
    segments = []
    for _ in range(draw(st.integers(3, 10))):
        action = draw(st.sampled_from(ACTIONS))
        arg: str | float | bool | None = None
        if action == "tempo":
            arg = draw(st.floats(40.0, 240.0))
        elif action == "toggle_model":
            arg = draw(st.sampled_from(spec.MODEL_NAMES))
        segments.append(Segment(
            audio=draw(st.sampled_from(AUDIO_KINDS)), hops=draw(st.integers(5, 120)),
            amp=draw(st.sampled_from([0.001, 0.05, 0.3, 0.9])), action=action, arg=arg,
        ))
    return Scenario(
        sample_rate=draw(st.sampled_from(SAMPLE_RATES)), channels=channels, ranges=tuple(ranges), enabled=enabled,
        seed=draw(st.integers(0, 2**31 - 1)), bpm=draw(st.floats(40.0, 240.0)), tail_s=draw(st.sampled_from([0.2, 0.5, 2.0])),
        kinds=kinds, segments=tuple(segments),
    )


@dataclass
class Played:
    engine: Engine
    check: StreamCheck
    voice_off: dict[int, list[tuple[float, float]]]  # wire channel -> intervals its (only) voice was off


def _voice_channels(model: str, wire: list[int]) -> list[int]:
    """The wire channels of the voices a model's footswitch mutes (melody: melody; harmony: chord, bass)."""
    return [wire[0]] if model == "melody" else [wire[1], wire[2]]


def play(sc: Scenario, sink: object) -> Played:
    """Run the scenario through a real Engine with the footswitch controls, then close it."""
    config = config_yaml(channels=sc.channels, ranges=sc.ranges, seed=sc.seed, bpm=round(sc.bpm, 3),
                         silence_tail_s=sc.tail_s, enabled=sc.enabled)
    engine = Engine(config, sink, sample_rate=sc.sample_rate, models=odd_models(sc.kinds, sc.seed))  # type: ignore[arg-type]
    controls = EngineControls(engine, config)
    rng = np.random.default_rng(sc.seed)
    wire = [c - 1 for c in sc.channels]
    ranges: dict[int, list[tuple[int, int]]] = {}
    for ch, r in zip(wire, sc.ranges):
        ranges.setdefault(ch, []).append(r)
    check = StreamCheck(channels=set(wire), ranges=ranges)
    # wire channel -> intervals its voice was off (switched by a footswitch); off in the config: always
    voice_off: dict[int, list[tuple[float, float]]] = {}
    off_since: dict[str, float] = {}
    for seg in sc.segments:
        if seg.action == "tempo":
            engine.set_tempo(float(seg.arg))  # type: ignore[arg-type]
        elif seg.action == "toggle_model":
            model = str(seg.arg)
            controls.toggle_model(model)
            if model in ("melody", "harmony"):
                if not controls.state.active[model]:
                    off_since[model] = engine.time_s
                elif model in off_since:
                    for ch in _voice_channels(model, wire):
                        voice_off.setdefault(ch, []).append((off_since[model], engine.time_s))
                    del off_since[model]
        elif seg.action == "panic":
            controls.panic()
            check.panics.append(engine.time_s)
        feed(engine, audio_segment(seg.audio, seg.hops * engine.hop_length, sc.sample_rate, rng, seg.amp))
    for model, t0 in off_since.items():
        for ch in _voice_channels(model, wire):
            voice_off.setdefault(ch, []).append((t0, float("inf")))
    for i, on in enumerate(sc.enabled):
        if not on:
            voice_off.setdefault(wire[i], []).append((-1.0, float("inf")))
    engine.close()
    check.panics.append(engine.time_s)
    sink.close()  # type: ignore[attr-defined]
    # a toggle only says something about a channel no other voice plays on
    voice_off = {ch: iv for ch, iv in voice_off.items() if wire.count(ch) == 1}
    return Played(engine, check, voice_off)


@hsettings(max_examples=int(os.environ.get("KELLY_REL_EXAMPLES", "40")), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenarios())
def test_the_midi_stream_holds_its_contract_whatever_happens(sc: Scenario) -> None:
    sink = RecordingSink()
    played = play(sc, sink)
    notes = check_stream(sink.events, played.check)
    target(float(len(notes)), label="notes")  # steer toward busy streams, where bugs live
    assert played.engine.generator.notes_started == sum(mm.is_note_on(m) for _, m in sink.events)
    for ch, intervals in played.voice_off.items():
        for t0, t1 in intervals:
            for n in notes:
                if n.channel == ch:
                    assert not (n.start < t0 < n.end), f"{n} sounds through its voice's switch-off at {t0:.3f}"
                    assert not (t0 < n.start < t1), f"{n} starts while its voice is off ({t0:.3f}-{t1:.3f})"
    # tempo changes reach the sink in time order, each one the tempo that was set
    times = [t for t, _ in sink.tempos]
    assert times == sorted(times)
    assert all(40.0 <= bpm <= 240.0 for _, bpm in sink.tempos)


def _mido_state(path: Path) -> tuple[int, set[tuple[int, int]], list[str]]:
    """Note-ons, what still sounds at the end of the file, and problems (a note-on of a sounding note)."""
    sounding: set[tuple[int, int]] = set()
    problems: list[str] = []
    n_on = 0
    for msg in mido.MidiFile(str(path)):
        if msg.type == "note_on" and msg.velocity > 0:
            n_on += 1
            if (msg.channel, msg.note) in sounding:
                problems.append(f"note-on of sounding {(msg.channel, msg.note)}")
            sounding.add((msg.channel, msg.note))
        elif msg.type == "note_off" or (msg.type == "note_on" and msg.velocity == 0):
            sounding.discard((msg.channel, msg.note))
    return n_on, sounding, problems


@hsettings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenarios())
def test_the_midi_file_reads_back_complete_and_paired(sc: Scenario) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "out.mid"
        sink = FileSink(path, bpm=round(sc.bpm, 3))
        played = play(sc, sink)
        n_on, sounding, problems = _mido_state(path)
    assert problems == [] and sounding == set()
    assert n_on == played.engine.generator.notes_started
