"""The live box end to end on a real JACK server (dummy driver): a recording played into its audio
input in real time, its MIDI received on a real port, SIGTERM, the MIDI cable pulled and put back,
and the start-up errors a user can cause. What is asserted is what a musician would hear: notes,
no stuck notes, a clock at the right tempo, silence after the stop, and MIDI on its scheduled
frame. Everything is timed on JACK's frame clock (a receiver stamping ``last_frame_time +
offset``), never on the wall clock: the dummy driver runs slower than wall time when the machine
is busy."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kelly_edge.midi import messages as mm
from kelly_edge.midi.clock_out import CLOCK, START, STOP
from tests.cli_box import Box
from tests.live.jack_rig import ClockSender, Player, Synth, grid_fit_ms
from tests.live.live_fakes import demo_samples, synth_state, wait_until

pytestmark = pytest.mark.jack

BPM = 120.0


def _config(tmp_path: Path, **sections: dict[str, Any]) -> Path:
    base: dict[str, dict[str, Any]] = {
        "audio": {"backend": "jack", "device": "kelly-test-player:out", "sample_rate": 48000},
        "midi": {"backend": "jack", "port": "kelly-test-synth", "clock_out": True},
        "realtime": {"priority": 50},  # as a stomp-box runs: below JACK's client threads (jackd -P 60: 55)
        "tempo": {"bpm": BPM, "source": "config"},  # the clock out is measured against a fixed grid
        "state": {"calibration": str(tmp_path / "calibration.json")},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    path = tmp_path / "box.yaml"
    path.write_text(json.dumps(base), encoding="utf-8")  # JSON is YAML
    return path


@pytest.mark.slow
# Up to two more tries, as the sink-only JACK tests take the best of several: on a loaded machine
# the box's JACK capture can miss a period more often than the box's timeline counts (seen once in
# a fresh-clone CI run: 3 clock steps, 1 counted); a second miss in a row is a failure.
@pytest.mark.flaky(reruns=2)
def test_live_session_end_to_end(tmp_path: Path, player: Player, synth: Synth, measurements: dict[str, Any]) -> None:
    report = tmp_path / "report.json"
    box = Box(_config(tmp_path), report=report, trace=True)
    try:
        assert wait_until(lambda: box.has("listening") or box.proc.poll() is not None, 60), box.lines
        assert box.proc.poll() is None, box.lines
        # one second of silence, then the demo: the first note can only answer the playing
        audio = np.concatenate([np.zeros(48000, np.float32), demo_samples(48000, 8.0)])
        player.play(audio)
        time.sleep(4.5)
        before = len(synth.messages())
        synth.close_port()  # the cable is pulled...
        assert wait_until(lambda: box.has("lost"), 5), box.lines
        time.sleep(1.0)
        reopened_at = len(synth.messages())  # nothing arrives while the port is gone
        synth.open()  # ...and put back
        assert wait_until(lambda: box.has("is back"), 5), box.lines
        assert wait_until(lambda: player.done, 15)
        code = box.terminate()
    finally:
        if box.proc.poll() is None:
            box.proc.kill()
    time.sleep(0.3)
    assert code == 0, box.lines
    assert not any("Traceback" in line for line in box.lines), box.lines
    received = synth.messages()
    msgs = [m for _, m in received]

    # notes arrived before the cable was pulled and after it was put back
    assert sum(mm.is_note_on(m) for m in msgs[:before]) >= 3
    assert sum(mm.is_note_on(m) for m in msgs[reopened_at:]) >= 3
    # the port that came back was silenced first: CC123 + CC120 on the channels used
    channels = {m[0] & 0x0F for m in msgs if mm.is_note_on(m)}
    after = msgs[reopened_at:]
    for ch in channels:
        assert mm.all_notes_off(ch) in after and mm.all_sound_off(ch) in after
    # every note-on has its note-off; nothing sounds after SIGTERM
    for segment in (msgs[:before], after):
        sounding, problems = synth_state(segment)
        assert problems == []
    assert synth_state(after)[0] == set()
    stop_at = len(msgs) - 1 - msgs[::-1].index(STOP)
    assert not any(mm.is_note_on(m) or m == CLOCK for m in msgs[stop_at:])
    assert box.count("lost") == 1 and box.count("is back") == 1, "\n".join(box.lines)
    assert box.has("uncalibrated")  # this input was never calibrated: the box says so

    # the clock: Start first, then ticks at the tempo, measured on JACK's frames
    assert START in msgs and CLOCK in msgs
    assert msgs.index(START) < msgs.index(CLOCK)
    framed = synth.framed()
    rate = synth.rate
    data = json.loads(report.read_text())
    live = data["live"]
    tick_frames = 60.0 * rate / (BPM * 24)
    ticks = np.array([f for f, m in framed[:before] if m == CLOCK], dtype=np.float64)[24:]  # skip the first beat
    clock = grid_fit_ms(ticks, rate, 1000.0 * tick_frames / rate)
    # On a loaded machine the box's JACK capture can miss a period (the audio timeline then falls
    # 10 ms behind JACK's): the schedule follows the music, a one-period step the box counts. The
    # ticks must be on a straight grid between those steps, and the steps no more than it counted.
    steps = np.nonzero(np.abs(np.diff(ticks) - tick_frames) > 1.0)[0]
    segments = [seg for seg in np.split(ticks, steps + 1) if seg.size >= 24]
    between = [grid_fit_ms(seg, rate, 1000.0 * tick_frames / rate) for seg in segments]
    clock = {**clock, "steps": int(steps.size), "timeline_shifts": live["midi_timeline_shifts"],
             "between_steps_dev_std_ms": max(b["dev_std_ms"] for b in between),
             "between_steps_interval_ms": [b["interval_ms"] for b in between]}
    assert steps.size <= live["midi_timeline_shifts"] + clock["missed"], clock
    for b in between:
        assert b["interval_ms"] == pytest.approx(60000.0 / (BPM * 24), rel=0.001), clock
        assert b["dev_std_ms"] <= 0.05, clock

    trace = live.pop("trace")
    assert live["midi_timeline"] == "jack"  # trace times are JACK frames / rate
    first_note = next(f for f, m in framed if mm.is_note_on(m))
    assert player.first_sound_frame is not None
    assert first_note > player.first_sound_frame  # the box does not play before the musician does
    measurements["jack: audio in -> first MIDI note-on received (ms)"] = round(
        (first_note - player.first_sound_frame) * 1000.0 / rate, 1)
    measurements["jack: box's own first-sound -> first-note-sent (ms)"] = live["first_sound_to_first_note_ms"]
    measurements["jack: MIDI clock received at 120 BPM (JACK frames)"] = clock
    measurements["jack: written after their frame (ms)"] = live["midi_lateness_ms"]
    # received vs scheduled, message by message, over the stretch before the cable was pulled
    sent_msgs = [bytes.fromhex(h) for _, _, h in trace]
    assert sent_msgs.index(START) == msgs.index(START)  # what went out before Start arrived too
    n = 0
    while n < min(before, len(sent_msgs)) and sent_msgs[n] == msgs[n]:
        n += 1
    assert n > 50
    due = np.array([d for d, _, _ in trace[:n]]) * rate
    got = np.array([f for f, _ in framed[:n]], dtype=np.float64)
    delay = (got - due) * 1000.0 / rate
    # the generator's initial controller values are planned on the very first hop, while the box is
    # still cold, and may leave up to a period late: judged from Start on, the start-up reported
    start = sent_msgs.index(START)
    ahead = np.array([d - s for d, s, _ in trace[start:n]]) * 1000.0
    measurements["jack: start-up messages before Start, written late by (ms)"] = np.round(delay[:start], 3).tolist()
    measurements["jack: handed to the callback ahead of the frame (ms)"] = {
        "p1": round(float(np.percentile(ahead, 1)), 2), "p50": round(float(np.median(ahead)), 2),
        "min": round(float(ahead.min()), 2)}
    delay = delay[start:]
    figures = {"mean": round(float(delay.mean()), 4), "std": round(float(delay.std()), 4),
               "p99_abs": round(float(np.percentile(np.abs(delay), 99)), 4), "events": int(delay.size),
               "late_in_box": live["midi_late"], "load_1min": round(os.getloadavg()[0], 2)}
    measurements["jack: received - scheduled per event (ms)"] = figures
    assert figures["std"] <= 0.05 and figures["p99_abs"] <= 0.1, figures
    measurements["jack: input overflows / dropped frames"] = (live["overflows"], live["dropped_frames"])
    assert data["notes"] >= 6


@pytest.mark.slow
def test_pyaudio_backend_through_portaudio_jack(tmp_path: Path, player: Player, synth: Synth) -> None:
    config = _config(tmp_path, audio={"backend": "pyaudio", "device": "system"})
    box = Box(config)
    try:
        assert wait_until(lambda: box.has("listening") or box.proc.poll() is not None, 60), box.lines
        assert box.proc.poll() is None, box.lines
        # the capture stream starts just after "listening" is logged: wait for its port to appear
        assert wait_until(lambda: bool(player.ports("PortAudio", is_input=True, is_audio=True)), 10), \
            "PortAudio's JACK client has no input port"
        ports = player.ports("PortAudio", is_input=True, is_audio=True)
        player.connect(ports[0])
        player.play(demo_samples(48000, 4.0))
        assert wait_until(lambda: player.done, 10)
        time.sleep(0.5)
        code = box.terminate()
    finally:
        if box.proc.poll() is None:
            box.proc.kill()
    time.sleep(0.3)
    assert code == 0, box.lines
    msgs = [m for _, m in synth.messages()]
    assert sum(mm.is_note_on(m) for m in msgs) >= 3, box.lines
    sounding, problems = synth_state(msgs)
    assert problems == [] and sounding == set()


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ({"audio": {"backend": "pyaudio", "device": "no-such-interface"}}, "no audio input matches audio.device 'no-such-interface'"),
        ({"audio": {"backend": "pyaudio", "device": "system", "sample_rate": 44100}}, "refuses audio.sample_rate 44100 Hz (accepted: 48000)"),
        ({"audio": {"backend": "jack", "device": "", "sample_rate": 22050}}, "runs at 48000 Hz (accepted: 48000)"),
        ({"audio": {"backend": "jack", "device": "nothing-plays-here"}}, "no JACK capture port matches audio.device 'nothing-plays-here'"),
        ({"audio": {"device": ""}, "midi": {"port": ""}}, "no MIDI output ports found"),
    ],
)
def test_bad_devices_are_one_line_and_exit_code_2(tmp_path: Path, jack_server: Any, sections: dict[str, Any],
                                                  expected: str) -> None:
    box = Box(_config(tmp_path, **sections))
    code = box.wait(60)
    assert code == 2, box.lines
    errors = [line for line in box.lines if "error" in line]
    assert len(errors) == 1 and expected in errors[0], box.lines
    assert not any("Traceback" in line for line in box.lines)


def test_a_midi_port_name_that_matches_nothing(tmp_path: Path, synth: Synth) -> None:
    box = Box(_config(tmp_path, audio={"device": ""}, midi={"port": "volca"}))
    assert box.wait(60) == 2, box.lines
    errors = [line for line in box.lines if "error" in line]
    assert len(errors) == 1, box.lines
    assert "no MIDI output port matches midi.port 'volca'" in errors[0] and "kelly-test-synth:in" in errors[0]


@pytest.mark.slow
def test_calibrate_stores_the_gain_and_the_box_uses_it(tmp_path: Path, player: Player, synth: Synth) -> None:
    config = _config(tmp_path)
    gains = []
    for scale in (1.0, 0.1):  # the same playing through a hot and a 20 dB quieter pickup
        player.play(demo_samples(48000, 6.0) * scale)
        cal = Box(config, command="calibrate", args=("--seconds", "2.5"))
        assert cal.wait(30) == 0, cal.lines
        assert "input gain" in cal.stdout
        stored = json.loads((tmp_path / "calibration.json").read_text())
        gains.append(stored["jack:kelly-test-player:out"]["gain_db"])
    assert gains[1] - gains[0] == pytest.approx(20.0, abs=2.0)
    box = Box(config, duration=1.0)
    assert box.wait(60) == 0, box.lines
    assert not box.has("uncalibrated")


@pytest.mark.slow
def test_following_an_incoming_midi_clock_and_its_stop(tmp_path: Path, player: Player, synth: Synth,
                                                       measurements: dict[str, Any]) -> None:
    sender = ClockSender(100.0)
    try:
        config = _config(tmp_path, tempo={"source": "midi_clock", "bpm": 140.0}, midi={"clock_in_port": "kelly-test-clock"})
        report = tmp_path / "report.json"
        box = Box(config, report=report)
        try:
            assert wait_until(lambda: box.has("listening") or box.proc.poll() is not None, 60), box.lines
            assert box.proc.poll() is None, box.lines
            sender.start()
            player.play(demo_samples(48000, 8.0))
            time.sleep(4.5)
            sender.stop()
            stopped_at = synth.frame_now()
            time.sleep(1.5)
            code = box.terminate()
        finally:
            if box.proc.poll() is None:
                box.proc.kill()
    finally:
        sender.close()
    assert code == 0, box.lines
    data = json.loads(report.read_text())
    assert data["tempo_bpm"] == pytest.approx(100.0, rel=0.01)  # not the config's 140
    received = synth.framed()
    rate = synth.rate
    ons = [f for f, m in received if mm.is_note_on(m)]
    assert any(f < stopped_at for f in ons)
    assert not any(f > stopped_at + 0.25 * rate for f in ons), "notes started after the clock's Stop"
    ticks = np.array([f for f, m in received if m == CLOCK and stopped_at - 2.0 * rate < f < stopped_at])
    clock = grid_fit_ms(ticks, rate, 60000.0 / (100.0 * 24))
    assert clock["interval_ms"] == pytest.approx(60000.0 / (100.0 * 24), rel=0.01)
    measurements["jack: box clock out while following a 100 BPM clock in"] = {**clock, "tempo_bpm": data["tempo_bpm"]}


@pytest.mark.slow
def test_a_jack_source_that_comes_back_is_reconnected(tmp_path: Path, player: Player, synth: Synth) -> None:
    box = Box(_config(tmp_path, midi={"clock_out": False}))
    try:
        assert wait_until(lambda: box.has("listening") or box.proc.poll() is not None, 60), box.lines
        assert wait_until(lambda: bool(player.connections()), 5), "the box did not connect to the player"
        player.play(demo_samples(48000, 8.0))
        time.sleep(1.0)
        player.restart_port()
        restarted = synth.frame_now()
        assert not player.connections()
        assert wait_until(lambda: bool(player.connections()), 5), box.lines
        assert any(c.startswith("kelly-edge") for c in player.connections())
        time.sleep(2.0)
        code = box.terminate()
    finally:
        if box.proc.poll() is None:
            box.proc.kill()
    assert code == 0, box.lines
    ons = [f for f, m in synth.framed() if mm.is_note_on(m)]
    assert any(f > restarted + 0.5 * synth.rate for f in ons), "no notes after the source came back"
