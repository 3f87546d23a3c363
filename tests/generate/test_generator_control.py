"""Run-time control: voice on/off, panic, close, and what the engine reads between steps."""

from __future__ import annotations

import pytest

from kelly_edge.generate.generator import Generator
from kelly_edge.midi import messages as mm
from tests.generate.gen_harness import HIT, Outputs, Settings, check_invariants, run

STEP_S = 0.125


def loud_groove() -> Outputs:
    out = Outputs.default()
    out.groove[HIT] = 1.0
    return out


def test_disabling_a_voice_releases_it_at_once_and_reenabling_resumes_on_a_beat() -> None:
    s = Settings()
    t_off, t_on = 0.53, 1.31
    log: dict[str, float] = {}

    def off(gen: Generator, now: float) -> None:
        gen.set_voice_enabled("chord", False, now)
        log["off"] = now

    def on(gen: Generator, now: float) -> None:
        gen.set_voice_enabled("chord", True, now)
        log["on"] = now

    r = run(s, 48, loud_groove(), actions=[(t_off, off), (t_on, on)])
    check_invariants(r, s)
    chord = r.notes(s.chord.channel)
    # the bar-1 chord is cut at the switch, not at its planned end
    assert [n.end for n in chord if n.start == 0.0] == [pytest.approx(log["off"])] * 3
    assert not [n for n in chord if log["off"] <= n.start <= log["on"]]
    resumed = min(n.start for n in chord if n.start > log["on"])
    assert round(resumed / STEP_S) % 4 == 0, "resumes on a beat"
    assert resumed - log["on"] <= 4 * STEP_S + STEP_S  # the next beat that is planned after the switch
    # other voices are untouched
    assert [n for n in r.notes(s.melody.channel) if log["off"] <= n.start <= log["on"]]


def test_disabling_the_melody_drops_its_queued_notes_without_orphan_offs() -> None:
    s = Settings()
    # switch off right after the engine has planned notes that are not yet due
    r = run(s, 32, loud_groove(), actions=[(0.3, lambda g, now: g.set_voice_enabled("melody", False, now))])
    check_invariants(r, s)
    mel = r.notes(s.melody.channel)
    assert mel and all(n.start <= 0.3 and n.end <= 0.3 for n in mel)


def test_toggling_a_voice_twice_in_one_hop_is_harmless() -> None:
    s = Settings()

    def flick(gen: Generator, now: float) -> None:
        for enabled in (False, True, False, True):
            gen.set_voice_enabled("bass", enabled, now)

    r = run(s, 32, loud_groove(), actions=[(0.7, flick)])
    check_invariants(r, s)
    assert [n for n in r.notes(s.bass.channel) if n.start > 0.7]


def test_panic_silences_now_and_generation_continues() -> None:
    s = Settings()
    t_panic = 0.77
    log: list[float] = []

    def panic(gen: Generator, now: float) -> None:
        gen.panic(now)
        log.append(now)

    r = run(s, 48, loud_groove(), actions=[(t_panic, panic)])
    check_invariants(r, s)
    at = log[0]
    notes = r.notes()
    assert all(n.end <= at for n in notes if n.start < at)
    at_panic = [m for t, m in r.events if t == at]
    for ch in (0, 1, 2):
        for m in (mm.all_notes_off(ch), mm.all_sound_off(ch), mm.sustain_off(ch)):
            assert m in at_panic
    # the chord and bass come back at the next beat, the melody on the next hit
    for v in (s.melody, s.chord, s.bass):
        later = [n.start for n in r.notes(v.channel) if n.start > at]
        assert later and min(later) - at <= 5 * STEP_S


def test_close_without_any_note_sends_nothing() -> None:
    from kelly_edge.midi.sinks import RecordingSink

    sink = RecordingSink()
    gen = Generator(Settings(), sink)
    gen.advance(0.5)
    gen.close(1.0)
    assert sink.events == []
    assert not sink.closed


def test_same_seed_same_output_different_seed_different_output() -> None:
    out = Outputs.default()
    a = run(Settings(seed=7), 64, out).events
    b = run(Settings(seed=7), 64, out).events
    c = run(Settings(seed=8), 64, out).events
    assert a == b
    assert a != c


def plan_bar(gen: Generator, out: Outputs, t0: float, n: int = 16) -> None:
    for k in range(n):
        gen.plan_step(step_index=k, t_step=t0 + k * STEP_S, step_s=STEP_S, tonic=0, major=True, emotion=out.emotion,
                      melody=out.melody, harmony=out.harmony, dynamics=out.dynamics, groove=out.groove, gate_open=True)


def test_panic_at_the_instant_notes_are_due_does_not_blip_them() -> None:
    from kelly_edge.midi.sinks import RecordingSink

    sink = RecordingSink()
    gen = Generator(Settings(), sink)
    out = Outputs.default()
    plan_bar(gen, out, t0=1.0, n=4)  # chord and bass due at exactly 1.0
    gen.advance(0.99)
    gen.panic(1.0)
    assert not [m for _, m in sink.events if mm.is_note_on(m)]
    gen.advance(5.0)
    assert not [m for _, m in sink.events if mm.is_note_on(m)]


def test_voice_off_at_the_instant_its_notes_are_due_drops_only_that_voice() -> None:
    from kelly_edge.midi.notes import pair_notes
    from kelly_edge.midi.sinks import RecordingSink

    s = Settings()
    sink = RecordingSink()
    gen = Generator(s, sink)
    out = Outputs.default()
    plan_bar(gen, out, t0=1.0, n=4)
    gen.advance(0.99)
    gen.set_voice_enabled("chord", False, 1.0)
    gen.advance(3.0)
    gen.close(3.0)
    notes, problems = pair_notes(sink.events)
    assert problems == []
    channels = {n.channel for n in notes}
    assert s.chord.channel - 1 not in channels
    assert s.bass.channel - 1 in channels


def test_steps_planned_late_are_clamped_to_now_and_stay_valid() -> None:
    """An engine that falls behind plans steps whose grid time has passed: nothing may go back in time."""
    from kelly_edge.midi.sinks import RecordingSink

    s = Settings()
    sink = RecordingSink()
    gen = Generator(s, sink)
    out = loud_groove()
    gen.advance(0.3)
    plan_bar(gen, out, t0=0.0, n=16)  # every step at or before 1.875 s, planned at 0.3 s...
    gen.advance(10.0)  # ...then a long stall
    for k in range(16, 32):
        gen.plan_step(step_index=k, t_step=k * STEP_S, step_s=STEP_S, tonic=0, major=True, emotion=out.emotion,
                      melody=out.melody, harmony=out.harmony, dynamics=out.dynamics, groove=out.groove, gate_open=True)
    gen.advance(20.0)
    gen.close(20.0)
    r_times = [t for t, _ in sink.events]
    assert r_times == sorted(r_times)
    from kelly_edge.midi.notes import pair_notes

    notes, problems = pair_notes(sink.events)
    assert problems == []
    assert all(n.start >= 0.3 for n in notes)
    assert [n for n in notes if n.start >= 10.0]


@pytest.mark.parametrize("shared", [False, True])
def test_switching_a_voice_off_sends_cc123_and_cc120_unless_its_channel_is_shared(shared: bool) -> None:
    from tests.generate.gen_harness import Voice

    s = Settings(chord=Voice(True, 1 if shared else 2, 48, 72))  # shared: the melody's channel 1
    log: dict[str, float] = {}

    def off(gen: Generator, now: float) -> None:
        gen.set_voice_enabled("chord", False, now)
        log["off"] = now

    r = run(s, 32, loud_groove(), actions=[(0.53, off)])
    check_invariants(r, s)
    at_off = [(c, v) for t, c, v in r.ccs(s.chord.channel) if t == pytest.approx(log["off"])]
    if shared:
        assert (mm.CC_ALL_NOTES_OFF, 0) not in at_off  # the melody keeps playing on that channel
        assert r.ons(1) and max(t for t, _, _ in r.ons(1)) > log["off"]
    else:
        assert (mm.CC_ALL_NOTES_OFF, 0) in at_off and (mm.CC_ALL_SOUND_OFF, 0) in at_off
