"""The live loop with fake devices: a recording played into the ring in real time, a recording
MIDI output. Checks what a synth would hear: notes, every note-on released, clock ticks, silence
after the stop, and the audio input going away and coming back."""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pytest

from kelly_edge.live.loop import CLOSE_TIMEOUT_S
from kelly_edge.midi import messages as mm
from kelly_edge.midi.clock_out import CLOCK, START, STOP
from tests.live.live_fakes import LoopRig, synth_state


def test_a_live_run_plays_notes_and_ends_with_everything_off() -> None:
    rig = LoopRig(seconds=3.0, clock_out=True, trace=True)
    code = rig.run(3.0)
    assert code == 0 and rig.loop.error is None
    msgs = rig.output.messages()
    note_ons = [m for m in msgs if mm.is_note_on(m)]
    assert len(note_ons) >= 4, "the demo's playing should produce notes"
    sounding, problems = synth_state(msgs)
    assert problems == []
    assert sounding == set()
    # the very end: the clock Stop, then the panic: CC123 and CC120 on every channel used
    stop_at = msgs.index(STOP)
    tail = msgs[stop_at:]
    assert CLOCK not in tail and not any(mm.is_note_on(m) for m in tail)
    for ch in {m[0] & 0x0F for m in note_ons}:
        assert mm.all_notes_off(ch) in tail and mm.all_sound_off(ch) in tail
    start = msgs.index(START)  # after the start-up clearing: CC123/CC120 on every voice channel, nothing else
    voices = {int(v.channel) - 1 for v in (rig.config.generator.melody, rig.config.generator.chord, rig.config.generator.bass)}
    assert all(m[0] & 0xF0 == 0xB0 for m in msgs[:start])
    for ch in voices:
        assert mm.all_notes_off(ch) in msgs[:start] and mm.all_sound_off(ch) in msgs[:start]
    assert msgs.count(CLOCK) >= int(2.5 * rig.config.tempo.bpm * 24 / 60)  # ~3 s of 24 PPQN
    assert rig.loop.stats.hops >= 250
    assert rig.loop.stats.first_sound_wall is not None
    assert all(c.closed for c in rig.captures)
    assert rig.ring.closed and rig.output.closed


def test_events_leave_at_their_scheduled_time_not_when_a_hop_finishes() -> None:
    rig = LoopRig(seconds=2.0, clock_out=True, trace=True)
    rig.run(2.0)
    trace = rig.sink.trace
    assert trace
    due = np.array([d for d, _, _ in trace])
    sent = np.array([s for _, s, _ in trace])
    assert np.all(sent >= due)  # never early...
    # ...and on time: a message handed over only when its hop was processed (no look-ahead)
    # leaves ~5 ms late (half a hop) and at hop boundaries; scheduled, ~0.2 ms
    assert np.median(sent - due) < 0.002, np.percentile(sent - due, [50, 90])
    period = 60.0 / (rig.config.tempo.bpm * 24)
    ticks = np.array([d for d, _, m in trace if m == CLOCK])
    assert np.median(np.diff(ticks)) == pytest.approx(period, rel=0.02)  # the schedule is at the tempo (100 BPM)
    # and so is what the synth received (its own arrival stamps): evenly spaced, not hop-quantised
    # (hop-quantised: gaps of 20 and 30 ms around the 25 ms period)
    arrived = np.array([t for t, m in rig.output.sent if m == CLOCK])
    assert np.median(np.abs(np.diff(arrived) - period)) < 0.002


def test_audio_lost_and_found_keeps_the_timeline_and_logs_one_line_each(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="kelly_edge.live.loop")
    rig = LoopRig(seconds=4.0, vanish_after_s=1.0, clock_out=True, trace=True)
    rig.run(3.0)
    stats = rig.loop.stats
    assert stats.audio_losses == 1
    assert stats.silent_fill_hops > 0  # the timeline went on without a device
    assert len(rig.captures) == 2 and rig.captures[1].started
    lines = [r.getMessage() for r in caplog.records]
    assert sum("lost" in line for line in lines) == 1
    assert sum("is back" in line for line in lines) == 1
    sounding, problems = synth_state(rig.output.messages())
    assert problems == [] and sounding == set()
    # the engine's audio time kept pace with the wall clock through the gap (no jump, no stall)
    assert rig.engine.time_s == pytest.approx(3.0, abs=0.5)


def test_a_stopped_midi_clock_mutes_new_notes() -> None:
    rig = LoopRig(seconds=2.0, trace=True)
    rig.gate.stopped = True
    rig.run(1.5)
    assert not any(mm.is_note_on(m) for m in rig.output.messages())


def test_panic_and_voice_switches_from_another_thread() -> None:
    rig = LoopRig(seconds=3.0, trace=True)
    stop = threading.Event()
    runner = threading.Thread(target=lambda: rig.loop.run(stop))
    runner.start()
    try:
        time.sleep(1.0)
        rig.loop.request(lambda: rig.engine.model_states.switch("melody", False))  # a footswitch's way in
        rig.loop.panic()
        time.sleep(1.0)
    finally:
        stop.set()
        runner.join(10.0)
    msgs = rig.output.messages()
    sounding, problems = synth_state(msgs)
    assert problems == [] and sounding == set()
    assert msgs.count(mm.all_sound_off(0)) >= 2  # the panic and the final stop


def test_a_capture_that_never_closes_does_not_hang_the_shutdown(caplog: pytest.LogCaptureFixture) -> None:
    """PortAudio's stop/terminate on JACK has hung once in many runs: the box must still stop."""
    rig = LoopRig(seconds=2.0, trace=True)
    stuck = threading.Event()
    real_close = rig.captures[0].close

    def never_returns() -> None:
        real_close()  # the device stops delivering...
        stuck.wait()  # ...but the driver call never comes back

    rig.captures[0].close = never_returns  # type: ignore[method-assign]
    caplog.set_level(logging.WARNING, logger="kelly_edge.live.loop")
    started = time.monotonic()
    code = rig.run(1.0)
    try:
        assert code == 0
        assert time.monotonic() - started < 1.0 + CLOSE_TIMEOUT_S + 2.0
        assert any("did not close" in r.getMessage() for r in caplog.records)
        sounding, problems = synth_state(rig.output.messages())  # the notes were off first
        assert problems == [] and sounding == set()
    finally:
        stuck.set()
