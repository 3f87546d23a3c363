"""The generator's contract under arbitrary model outputs, gate toggles, voice toggles and panics.

Everything is checked on what reached the sink: paired notes, ranges, channels, velocities,
time order, silence after close/panic/voice-off, no note-ons while the gate is closed, key, and
repeatability for a seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from kelly_edge.generate.generator import VOICES, Generator
from kelly_edge.midi import messages as mm
from kelly_edge.models import spec
from tests.generate.gen_harness import (
    D_BALANCE,
    HIT,
    MICRO,
    Outputs,
    Run,
    Settings,
    Voice,
    check_invariants,
    in_key,
    run,
)


def random_outputs(rng: np.random.Generator, n_steps: int, tonic: int, major: bool, gates: list[bool]) -> list[Outputs]:
    """Per-step model outputs of every kind a broken or odd model could produce."""
    out = []
    melody = harmony = dynamics = groove = None
    for k in range(n_steps):
        if k % 4 == 0 or melody is None:
            kind = rng.integers(0, 5)
            if kind == 0:  # a proper softmax
                logits = rng.normal(0, 3, 128)
                melody = np.exp(logits - logits.max())
                melody /= melody.sum()
            elif kind == 1:  # one hot, anywhere (often out of range or key)
                melody = np.zeros(128)
                melody[rng.integers(0, 128)] = 1.0
            elif kind == 2:
                melody = np.zeros(128)
            elif kind == 3:  # garbage: negatives, NaN, inf
                melody = rng.normal(0, 1, 128)
                melody[rng.integers(0, 128, 5)] = np.nan
                melody[rng.integers(0, 128)] = np.inf
            else:
                melody = rng.random(128)
            hkind = rng.integers(0, 6)
            if hkind >= 4:  # a confident model: one chord well ahead, changing every beat or so
                harmony = rng.dirichlet(np.full(64, 0.3)) * 0.2
                harmony[rng.integers(0, 61)] += rng.uniform(0.6, 0.8)
            elif hkind == 0:
                harmony = rng.dirichlet(np.full(64, 0.3))
            elif hkind == 1:
                harmony = np.zeros(64)
                harmony[rng.integers(0, 61)] = rng.uniform(0.2, 1.0)
            elif hkind == 2:
                harmony = rng.normal(0, 1, 64)
                harmony[rng.integers(0, 64)] = np.nan
            else:
                harmony = np.zeros(64)
            dynamics = rng.uniform(-0.3, 1.3, 16)
            if rng.random() < 0.2:
                dynamics[rng.integers(0, 16)] = np.nan
            groove = np.concatenate([rng.uniform(-0.2, 1.2, 16), rng.uniform(-0.8, 0.8, 16)])
            if rng.random() < 0.1:
                groove[rng.integers(0, 32)] = np.nan
        out.append(
            Outputs(
                melody.astype(np.float32), harmony.astype(np.float32), dynamics.astype(np.float32),
                groove.astype(np.float32), tonic=tonic, major=major, gate_open=gates[k // 4],
            )
        )
    return out


@dataclass(frozen=True)
class Scenario:
    settings: Settings
    n_steps: int
    step_s: float
    tonic: int
    major: bool
    gates: list[bool]
    toggles: list[tuple[float, str, bool]]
    panics: list[float]
    output_seed: int
    shared_channel: bool


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    n_bars = draw(st.integers(1, 4))
    n_steps = n_bars * 16
    step_s = draw(st.floats(0.08, 0.2))
    duration = n_steps * step_s
    shared = draw(st.booleans())

    def voice(i: int) -> Voice:
        low = draw(st.integers(20, 90))
        width = draw(st.sampled_from([0, 3, 7, 11, 12, 18, 24, 36]))
        enabled = draw(st.booleans()) if draw(st.integers(0, 4)) == 0 else True
        return Voice(enabled, 1 if shared else i + 1, low, min(127, low + width))

    settings = Settings(
        seed=draw(st.integers(0, 2**32 - 1)),
        melody_density=draw(st.floats(0.0, 2.0)),
        temperature=draw(st.floats(0.05, 2.0)),
        melody=voice(0), chord=voice(1), bass=voice(2),
    )
    return Scenario(
        settings=settings,
        n_steps=n_steps,
        step_s=step_s,
        tonic=draw(st.integers(0, 11)),
        major=draw(st.booleans()),
        gates=draw(st.lists(st.booleans() | st.just(True), min_size=n_bars * 4, max_size=n_bars * 4)),
        toggles=draw(st.lists(st.tuples(st.floats(0, duration), st.sampled_from(VOICES), st.booleans()), max_size=6)),
        panics=draw(st.lists(st.floats(0, duration), max_size=2)),
        output_seed=draw(st.integers(0, 2**32 - 1)),
        shared_channel=shared,
    )


def play(sc: Scenario) -> tuple[Run, list[tuple[float, str, bool]], list[float]]:
    outputs = random_outputs(np.random.default_rng(sc.output_seed), sc.n_steps, sc.tonic, sc.major, sc.gates)
    toggle_log: list[tuple[float, str, bool]] = []
    panic_log: list[float] = []

    def toggle(voice: str, enabled: bool):
        def act(gen: Generator, now: float) -> None:
            gen.set_voice_enabled(voice, enabled, now)
            toggle_log.append((now, voice, enabled))

        return act

    def panic(gen: Generator, now: float) -> None:
        gen.panic(now)
        panic_log.append(now)

    actions = [(t, toggle(v, e)) for t, v, e in sc.toggles] + [(t, panic) for t in sc.panics]
    r = run(sc.settings, sc.n_steps, lambda k: outputs[k], step_s=sc.step_s, actions=actions)
    return r, toggle_log, panic_log


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_generator_contract_holds_for_any_model_output(sc: Scenario) -> None:
    r, toggle_log, panic_log = play(sc)
    s = sc.settings
    check_invariants(r, s)
    notes = r.notes()

    # nothing sounds after close, and nothing is sent after it
    assert r.gen.closed
    assert all(n.end <= r.end_t for n in notes)
    # no blips: a note that would be cut the instant it starts (panic, voice off) is not sent at all
    assert all(n.end > n.start for n in notes), [n for n in notes if n.end <= n.start][:3]

    # no note-on unless a nearby step had the gate open (melody may move half a step + humanise)
    open_times = np.array([st_.t for st_ in r.steps if st_.gate_open])
    for t, _, _ in r.ons():
        assert open_times.size and np.min(np.abs(open_times - t)) <= 0.6 * sc.step_s + 1e-9, f"note-on at {t} with gate closed"

    # panic: at its instant nothing is left sounding
    for a in panic_log:
        assert all(n.end <= a for n in notes if n.start < a), f"a note outlives the panic at {a}"

    if not sc.shared_channel:
        # melody always in key
        for n in r.notes(s.melody.channel):
            assert in_key(n.note, sc.tonic, sc.major), f"melody note {n.note} not in key {sc.tonic} {sc.major}"
        # a disabled voice: released at once, silent until re-enabled
        for v, vs in zip(VOICES, (s.melody, s.chord, s.bass)):
            enabled = vs.enabled
            t_off = None if enabled else 0.0
            intervals = []
            for t, voice, on in toggle_log:
                if voice != v:
                    continue
                if enabled and not on:
                    t_off = t
                elif not enabled and on:
                    intervals.append((t_off, t))
                enabled = on
            if not enabled:
                intervals.append((t_off, math.inf))
            vnotes = r.notes(vs.channel)
            for a, b in intervals:
                assert all(not a <= n.start < b for n in vnotes), f"{v} played while disabled in [{a}, {b})"
                assert all(n.end <= a for n in vnotes if n.start < a), f"{v} note kept sounding after disable at {a}"


@hsettings(max_examples=25, deadline=None)
@given(scenarios())
def test_output_is_repeatable_for_a_seed(sc: Scenario) -> None:
    first, _, _ = play(sc)
    second, _, _ = play(sc)
    assert first.events == second.events


def test_voices_sharing_a_channel_never_double_strike() -> None:
    """All three voices on one channel with overlapping ranges: pitches collide constantly."""
    s = Settings(melody=Voice(True, 1, 48, 60), chord=Voice(True, 1, 48, 60), bass=Voice(True, 1, 48, 60))
    base = Outputs.default()
    base.groove[HIT] = 1.0
    r = run(s, 64, base)
    check_invariants(r, s)
    assert len(r.ons()) >= 60  # a melody note on every step outside the breaths (48), chords and bass


def test_tiny_ranges_and_extreme_outputs_still_hold() -> None:
    s = Settings(melody=Voice(True, 1, 61, 61), chord=Voice(True, 2, 60, 62), bass=Voice(True, 3, 0, 0))
    base = Outputs.default()
    base.groove[HIT] = 1.0
    base.groove[MICRO] = 0.5
    base.dynamics[:] = 1.0
    r = run(s, 48, base)
    check_invariants(r, s)
    # C# is not in C major: the melody has nothing it may play
    assert r.ons(1) == []


def test_close_silences_everything_and_stops_planning() -> None:
    s = Settings()
    base = Outputs.default()
    base.groove[HIT] = 1.0
    r = run(s, 16, base, close=False, tail_s=-0.2)  # stop inside the bar: the chord is still held
    _, problems = r.paired()
    assert any("never released" in p for p in problems), "the scenario should leave notes sounding"
    close_t = r.end_t
    n_before = len(r.events)
    r.gen.close(close_t)
    tail = r.events[n_before:]
    assert all(t == close_t for t, _ in tail)
    for ch in (0, 1, 2):
        for m in (mm.all_notes_off(ch), mm.all_sound_off(ch), mm.sustain_off(ch)):
            assert m in [m_ for _, m_ in tail]
    _, problems = r.paired()
    assert problems == []
    # after close: nothing planned, nothing sent, the sink stays open
    r.gen.plan_step(step_index=16, t_step=close_t + 0.1, step_s=0.125, tonic=0, major=True, emotion=base.emotion,
                    melody=base.melody, harmony=base.harmony, dynamics=base.dynamics, groove=base.groove, gate_open=True)
    r.gen.advance(close_t + 5.0)
    r.gen.close(close_t + 5.0)
    assert len(r.events) == n_before + len(tail)
    assert not r.sink.closed


def test_close_drops_queued_note_ons() -> None:
    s = Settings()
    base = Outputs.default()
    base.groove[HIT] = 1.0
    sinkless = run(s, 8, base, close=False, tail_s=-0.5)  # stops while steps are planned but not yet due
    gen = sinkless.gen
    last_t = sinkless.end_t
    gen.close(last_t)
    assert all(t <= last_t for t, _ in sinkless.events)
    assert sinkless.paired()[1] == []


def test_advance_with_nothing_due_does_not_allocate() -> None:
    import sys

    s = Settings()
    base = Outputs.default()
    r = run(s, 16, base, close=False, tail_s=0.0)
    gen = r.gen
    gen.advance(100.0)  # flush everything
    times = [100.0 + i * 0.01 for i in range(2000)]
    gen.advance(times[0])
    before = sys.getallocatedblocks()
    for t in times:
        gen.advance(t)
    after = sys.getallocatedblocks()
    assert after - before < 5


def test_prev_hits_has_the_right_shape_and_values() -> None:
    r = run(Settings(), 32, Outputs.default())
    hits = r.gen.prev_hits
    assert hits.shape == (spec.N_STEPS,) and hits.dtype == np.float32
    assert set(np.unique(hits)) <= {0.0, 1.0}


def test_settings_are_validated() -> None:
    import pytest

    from kelly_edge.midi.sinks import RecordingSink

    with pytest.raises(ValueError, match="1..16, got 17"):
        Generator(Settings(melody=Voice(True, 17, 60, 72)), RecordingSink())
    with pytest.raises(ValueError, match="low 72 > high 60"):
        Generator(Settings(chord=Voice(True, 2, 72, 60)), RecordingSink())
    with pytest.raises(ValueError, match="high .*128"):
        Generator(Settings(bass=Voice(True, 3, 20, 128)), RecordingSink())
    gen = Generator(Settings(), RecordingSink())
    with pytest.raises(ValueError, match="unknown voice 'drums'"):
        gen.set_voice_enabled("drums", False, 0.0)


def test_balance_zero_still_gives_valid_velocities() -> None:
    base = Outputs.default()
    base.dynamics[D_BALANCE] = 0.0
    base.groove[HIT] = 1.0
    r = run(Settings(), 16, base)
    assert r.ons() and all(v == 1 for _, _, v in r.ons())
