"""The engine end to end on audio: slow models deferred, the silence gate, intent, notes in key."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kelly_edge.audio.wav import WavReader
from kelly_edge.config.loader import parse_config
from kelly_edge.engine.engine import PRERUN_HOPS, Engine
from kelly_edge.engine.scheduler import Scheduler
from kelly_edge.midi.messages import is_note_on
from kelly_edge.midi.notes import pair_notes
from kelly_edge.midi.sinks import RecordingSink
from kelly_edge.models import spec
from kelly_edge.models.fallbacks import make_fallback
from kelly_edge.models.runner import LoadedModel
from tests.engine.test_scheduler import FakeClock

DEMO = Path(__file__).resolve().parents[2] / "kelly_edge" / "data" / "demo.wav"


def demo_audio(seconds: float = 20.0) -> tuple[np.ndarray, int]:
    with WavReader(DEMO) as r:
        return r.read(int(r.sample_rate * seconds)), r.sample_rate


def fallbacks() -> dict[str, LoadedModel]:
    return {s.name: LoadedModel(s, make_fallback(s.name), "fallback", "test") for s in spec.MODELS}


def run(engine: Engine, x: np.ndarray) -> None:
    h = engine.hop_length
    for i in range(0, len(x), h):
        engine.process_hop(x[i : i + h])
    engine.close()


def test_a_slow_model_is_deferred_and_the_hop_stays_in_budget() -> None:
    x, sr = demo_audio(20.0)
    clock = FakeClock()  # only a model's "work" moves it: the budget arithmetic is exact
    models = fallbacks()
    melody = make_fallback("melody")
    probes: list[float] = []

    def slow_melody(v: np.ndarray) -> np.ndarray:
        probes.append(clock.t)
        clock.t += 0.015  # longer than a whole hop's budget
        return melody(v)

    models["melody"] = LoadedModel(spec.MELODY, slow_melody, "trained", "test: artificially slow")
    engine = Engine(parse_config("models: {emotion: {rate: hop}}"), RecordingSink(), sample_rate=sr, models=models,
                    clock=clock)
    run(engine, x)
    states, sched = engine.model_states, engine.scheduler
    # probed, deferred while its estimate decays, probed again...; never fitting, it is handed
    # to its fallback after MAX_OVERRUNS probes
    assert len(probes) == Scheduler.MAX_OVERRUNS
    assert states.info("melody").deferrals > 10 * (len(probes) - 1)
    assert states.info("melody").status == "fallback" and "budget" in states.info("melody").why
    # only the hops that probed it overran; every other hop stayed in budget
    times = engine.recent_hop_times(sched.hops)
    assert sched.deadline_misses == len(probes) == int(np.count_nonzero(times > sched.budget_s))
    assert states.info("emotion").runs == sched.hops  # the capture-rate model was never starved
    assert states.info("melody").runs > 50  # the fallback plays every step since
    assert engine.generator.notes_started > 0  # still playing, on the melody's last output


def test_silence_gate_stops_new_notes_after_the_tail_and_playing_resumes() -> None:
    x, sr = demo_audio(6.0)
    gap = np.zeros(int(sr * 5.0), dtype=np.float32)
    audio = np.concatenate([gap[: sr], x, gap, x])  # 1 s of silence first
    sink = RecordingSink()
    engine = Engine(parse_config("audio: {silence_tail_s: 2.0}"), sink, sample_rate=sr, models=fallbacks())
    run(engine, audio)
    onsets = [t for t, m in sink.events if is_note_on(m)]
    silence_start, silence_end = 7.0, 12.0
    # a few notes may start within the tail (and the step planned ahead), none after it
    assert not [t for t in onsets if silence_start + 2.0 + 0.3 < t < silence_end]
    assert [t for t in onsets if silence_start < t < silence_start + 2.0]
    assert [t for t in onsets if t > silence_end + 0.5]  # playing again resumes the notes
    assert not [t for t in onsets if t < 1.0]  # nothing before the first sound


def test_every_note_is_paired_and_in_key_on_real_music() -> None:
    x, sr = demo_audio(20.0)
    sink = RecordingSink()
    engine = Engine(parse_config(""), sink, sample_rate=sr)
    run(engine, x)
    played, problems = pair_notes(sink.events)
    assert not problems and len(played) > 30
    assert engine.ctx.key_name == "Ab major"
    ab_major = {(8 + i) % 12 for i in (0, 2, 4, 5, 7, 9, 11)} | {7 % 12}  # + leading tone G (already in)
    melody = [n for n in played if n.channel == 0]
    in_key = sum(n.note % 12 in ab_major for n in melody)
    assert in_key / len(melody) > 0.9  # key may still be settling in the first seconds


def test_intent_pulls_the_emotion() -> None:
    x, sr = demo_audio(8.0)
    results = {}
    for intent in ("grief", "ecstasy"):
        engine = Engine(parse_config(f"emotion: {{intent: {intent}, intent_amount: 0.8}}"), RecordingSink(), sample_rate=sr)
        run(engine, x)
        results[intent] = engine.emotion_vadi.copy()
    assert results["ecstasy"][0] > results["grief"][0] + 0.5  # valence
    assert results["ecstasy"][1] > results["grief"][1]  # arousal


def test_restart_bar_puts_a_downbeat_at_the_current_time() -> None:
    x, sr = demo_audio(3.0)
    engine = Engine(parse_config("tempo: {bpm: 120}"), RecordingSink(), sample_rate=sr, models=fallbacks())
    h = engine.hop_length
    for i in range(0, int(sr * 1.37) // h * h, h):  # stop mid-bar
        engine.process_hop(x[i : i + h])
    t = engine.time_s
    engine.restart_bar()
    assert engine.grid.step_in_bar(t) == 0 and engine.grid.step_in_bar(t + engine.grid.step_s * 0.5) == 0
    assert abs(engine.grid.time_of(engine._next_step) - t) < 1e-9
    for i in range(int(sr * 1.37) // h * h, len(x), h):  # it keeps running, notes stay paired
        engine.process_hop(x[i : i + h])
    engine.close()
    assert not pair_notes(engine.sink.events)[1]


STEP_HARMONY = "models: {harmony: {rate: step}}"
"""The spreading tests are about the step-bound models: harmony at the step rate is one of them
(at its default hop rate it runs every hop, see test_harmony_at_the_hop_rate_...)."""


def _runs(engine: Engine) -> dict[str, int]:
    return {name: slot.runs for name, slot in engine.scheduler.slots.items()}


def test_a_steps_models_run_one_per_hop_before_it_is_planned() -> None:
    """Spreading: no hop runs the two to five models a step needs; each still runs once per step
    that needs it, in time for the generator (the trained models, as on stage)."""
    x, sr = demo_audio(8.0)
    engine = Engine(parse_config(f"tempo: {{bpm: 120}}\n{STEP_HARMONY}"), RecordingSink(), sample_rate=sr)
    h = engine.hop_length
    per_hop, planned = [], []
    for i in range(0, len(x), h):
        before, step_before = _runs(engine), engine._next_step
        engine.process_hop(x[i : i + h])
        after = _runs(engine)
        per_hop.append(sum(after[n] - before[n] for n in after))
        planned.append(range(step_before, engine._next_step))
    engine.close()
    assert per_hop[0] == 8  # the first hop plans steps 0 (5 models) and 1 (3) with no hop before them
    assert max(per_hop[1:]) == 1
    planning = [i for i, steps in enumerate(planned) if i > 0 and len(steps)]
    assert len(planning) >= 60
    for i in planning:
        k = planned[i][0]
        due = 3 + (k % 4 == 0) + (k % 16 == 0)  # emotion, harmony, melody; + dynamics; + groove
        window = per_hop[i - PRERUN_HOPS : i]
        assert per_hop[i] == 0 and sum(window) == due, (k, window, per_hop[i])
    _assert_each_step_got_its_models(engine)


def _assert_each_step_got_its_models(engine: Engine) -> None:
    steps = engine._next_step
    runs = _runs(engine)
    for name, every in (("emotion", 1), ("melody", 1), ("harmony", 1), ("dynamics", 4), ("groove", 16)):
        needed = -(-steps // every)  # once per planned step that needs it ...
        assert needed <= runs[name] <= needed + (steps % every == 0), name  # ... + the next step's, if begun


def test_at_a_tempo_too_fast_for_the_window_the_rest_runs_in_the_planning_hop() -> None:
    x, sr = demo_audio(4.0)
    engine = Engine(parse_config(f"tempo: {{bpm: 300}}\n{STEP_HARMONY}"), RecordingSink(), sample_rate=sr, models=fallbacks())
    run(engine, x)
    _assert_each_step_got_its_models(engine)
    assert not pair_notes(engine.sink.events)[1]
