"""One port per synth, through a real JACK server (dummy driver): a "bass synth" and a "poly synth",
each a JACK-Client MIDI input port; the bass voice plays to one, melody and chord to the other.
Each synth must receive only its voices' channels; the bass synth switched off mid-run silences
the bass alone (one log line) while the poly synth plays on; switched on again it gets notes-off,
then its bank and program, then notes. The clock goes only to the port midi.clock_out_ports lists.
Both output paths: the box's own JACK MIDI ports (midi.backend: jack, the box as a process) and
python-rtmidi (the ALSA backend's code, here on its JACK API: there is no /dev/snd/seq here)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kelly_edge.config.loader import parse_config
from kelly_edge.midi import messages as mm
from kelly_edge.midi.clock_out import CLOCK, START, STOP
from kelly_edge.midi.router import Route, open_router, plan_routes
from kelly_edge.midi.rtmidi_sink import RtMidiOutput, ScheduledSink
from tests.cli_box import REPO, Box
from tests.live.jack_rig import Player, Synth
from tests.live.live_fakes import demo_samples, synth_state, wait_until

pytestmark = pytest.mark.jack

BPM = 120.0
BASS_SETUP = [mm.control_change(2, 0, 1), mm.control_change(2, 32, 2), mm.program_change(2, 38)]  # bank 130, program 38


def _config(tmp_path: Path, bass_port: str = "bass synth", **midi: Any) -> Path:
    config = {
        "audio": {"backend": "jack", "device": "kelly-test-player:out", "sample_rate": 48000},
        "midi": {"backend": "jack", "port": "poly synth", "clock_out": True, "clock_out_ports": "poly", **midi},
        "generator": {"chord": {"program": 5}, "bass": {"port": bass_port, "program": 38, "bank": 130}},
        "realtime": {"priority": 50},
        "tempo": {"bpm": BPM, "source": "config"},
        "state": {"calibration": str(tmp_path / "calibration.json")},
    }
    path = tmp_path / "box.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


@pytest.fixture
def poly(jack_server: Any) -> Any:
    s = Synth("poly synth")
    yield s
    s.close()


def _channels(msgs: list[bytes]) -> set[int]:
    return {m[0] & 0x0F for m in msgs if m[0] < 0xF0}


def _status(socket: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "kelly_edge", "status", "--socket", str(socket), "--json"], cwd=REPO,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.slow
def test_two_synths_one_switched_off_and_on_again(tmp_path: Path, player: Player, poly: Synth) -> None:
    bass = Synth("bass synth")
    socket = tmp_path / "status.sock"
    box = Box(_config(tmp_path), args=("--status-socket", str(socket)))
    old_bass = [bass]
    try:
        assert wait_until(lambda: box.has("listening") or box.proc.poll() is not None, 60), box.lines
        assert box.proc.poll() is None, box.lines
        player.play(np.concatenate([np.zeros(48000, np.float32), demo_samples(48000, 14.0)]))
        assert wait_until(lambda: sum(mm.is_note_on(m) for _, m in bass.messages()) >= 2, 10), box.lines
        snap = _status(socket)
        voices = snap["midi"]["voices"]
        assert voices["bass"] == {"port": "bass synth:in", "state": "connected"}
        assert voices["melody"]["port"] == voices["chord"]["port"] == "poly synth:in"
        first_bass = [m for _, m in bass.messages()]
        bass.close()  # the bass synth is switched off mid-run
        assert wait_until(lambda: box.has("lost"), 5), box.lines
        gone_frame = poly.frame_now()
        # the status is published a few times a second: the next one says so
        assert wait_until(lambda: _status(socket)["midi"]["voices"]["bass"]["state"] == "missing", 5)
        assert _status(socket)["midi"]["voices"]["chord"]["state"] == "connected"
        time.sleep(2.5)
        bass = Synth("bass synth")  # ...and on again
        old_bass.append(bass)
        back_frame = poly.frame_now()
        assert wait_until(lambda: box.has("is back"), 5), box.lines
        assert wait_until(lambda: sum(mm.is_note_on(m) for _, m in bass.messages()) >= 2, 10), box.lines
        assert wait_until(lambda: _status(socket)["midi"]["voices"]["bass"]["state"] == "connected", 5)
        code = box.terminate()
    finally:
        if box.proc.poll() is None:
            box.proc.kill()
        for synth in old_bass:
            synth.close()
    assert code == 0, box.lines
    assert not any("Traceback" in line for line in box.lines), box.lines
    lost = [line for line in box.lines if "lost" in line]
    assert len(lost) == 1 and "(bass) lost; bass goes quiet" in lost[0], box.lines
    assert box.count("is back") == 1, box.lines

    # each synth hears only its voices: bass on channel 3 (wire 2), melody and chord on 1 and 2
    poly_msgs = [m for _, m in poly.messages()]
    second_bass = [m for _, m in bass.messages()]
    assert _channels(first_bass) == {2} and _channels(second_bass) == {2}
    assert _channels(poly_msgs) == {0, 1}
    # the clock (and Start/Stop) only where midi.clock_out_ports says
    assert not any(m[0] >= 0xF0 for m in first_bass + second_bass)
    assert START in poly_msgs and STOP in poly_msgs and poly_msgs.count(CLOCK) > 24 * 10
    # at start: the bass synth's bank and program before its first note; the poly synth's program
    assert BASS_SETUP[-1] in first_bass, (first_bass[:12], poly_msgs[:12])
    assert first_bass.index(BASS_SETUP[-1]) < next(i for i, m in enumerate(first_bass) if mm.is_note_on(m))
    # (after the start-up notes-off of the box's first hop)
    assert first_bass[:3] == [mm.all_notes_off(2), mm.all_sound_off(2), mm.control_change(2, mm.CC_SUSTAIN, 0)]
    assert first_bass[3:6] == BASS_SETUP
    assert poly_msgs.index(mm.program_change(1, 5)) < next(i for i, m in enumerate(poly_msgs) if m[0] == 0x91)
    # back: notes off first, then bank + program, then notes
    first_note = next(i for i, m in enumerate(second_bass) if mm.is_note_on(m))
    head = second_bass[:first_note]
    assert BASS_SETUP[0] in head, head
    at = head.index(BASS_SETUP[0])
    assert head[at : at + 3] == BASS_SETUP, head
    assert mm.all_notes_off(2) in head[:at] and mm.all_sound_off(2) in head[:at], head
    assert synth_state(second_bass)[0] == set() and synth_state(poly_msgs)[0] == set()  # nothing left sounding

    # the poly synth played on while the bass synth was gone: notes, and a clock without a gap
    framed = poly.framed()
    during = [(f, m) for f, m in framed if gone_frame <= f <= back_frame]
    assert sum(mm.is_note_on(m) for _, m in during) >= 2
    ticks = np.array([f for f, m in framed if m == CLOCK], dtype=np.float64)
    tick_frames = 60.0 * poly.rate / (BPM * 24)
    inside = ticks[(ticks >= gone_frame - tick_frames) & (ticks <= back_frame + tick_frames)]
    assert inside.size >= 2.5 * 48 - 2  # 2.5 s at 48 ticks per second
    assert float(np.diff(inside).max()) < 1.5 * tick_frames


@pytest.mark.slow
def test_a_voice_port_that_matches_nothing_is_one_line_and_the_box_plays(tmp_path: Path, player: Player,
                                                                          poly: Synth) -> None:
    box = Box(_config(tmp_path, bass_port="moog"))
    try:
        assert wait_until(lambda: box.has("listening") or box.proc.poll() is not None, 60), box.lines
        assert box.proc.poll() is None, box.lines
        player.play(np.concatenate([np.zeros(24000, np.float32), demo_samples(48000, 10.0)]))
        assert wait_until(lambda: sum(mm.is_note_on(m) for _, m in poly.messages()) >= 3, 15), box.lines
        moog = Synth("moog")  # plugged in late: found, its bank and program, then the bass plays there
        try:
            assert wait_until(lambda: box.has("found"), 5), box.lines
            assert wait_until(lambda: any(mm.is_note_on(m) for _, m in moog.messages()), 10), box.lines
            on_moog = [m for _, m in moog.messages()]
        finally:
            code = box.terminate()
            moog.close()
    finally:
        if box.proc.poll() is None:
            box.proc.kill()
    assert code == 0, box.lines
    first = next(i for i, m in enumerate(on_moog) if mm.is_note_on(m))
    assert on_moog.index(BASS_SETUP[-1]) < first and _channels(on_moog) == {2}
    assert box.count("found") == 1 and "(bass) found" in next(line for line in box.lines if "found" in line)
    missing = [line for line in box.lines if "no MIDI output port matches" in line]
    assert len(missing) == 1, box.lines
    assert "no MIDI output port matches generator.bass.port 'moog'" in missing[0]
    assert "poly synth:in" in missing[0] and "bass stays quiet until it appears" in missing[0]
    assert "kelly-edge devices" in missing[0]
    assert not any("error" in line.lower() or "Traceback" in line for line in box.lines), box.lines
    assert _channels([m for _, m in poly.messages()]) <= {0, 1}


def test_devices_shows_each_voices_port_and_whether_it_is_there(tmp_path: Path, poly: Synth) -> None:
    out = subprocess.run([sys.executable, "-m", "kelly_edge", "devices", "--config", str(_config(tmp_path))],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = out.stdout[out.stdout.index("voices (generator.<voice>.port"):].splitlines()[1:]
    assert rows[0].strip() == "melody+chord + clock: midi.port 'poly synth' -> 'poly synth:in' connected"
    assert rows[1].strip().startswith("bass: generator.bass.port 'bass synth' MISSING: no MIDI output port matches "
                                      "generator.bass.port 'bass synth'")


def test_the_rtmidi_path_routes_hot_plugs_and_sets_up_each_port(jack_server: Any, poly: Synth) -> None:
    """The ALSA backend's outputs (python-rtmidi) on its JACK API: the same router, two real ports."""
    bass = Synth("bass synth")
    config = parse_config(json.dumps({"midi": {"port": "poly synth", "clock_out": True, "clock_out_ports": "poly"},
                                      "generator": {"chord": {"program": 5},
                                                    "bass": {"port": "bass synth", "program": 38, "bank": 130}}}))
    base = time.monotonic()

    def make_output(route: Route) -> RtMidiOutput:
        return RtMidiOutput(port=route.want, api="jack", client_name="kelly-test-rtmidi", key=route.key)

    def make_sink(route: Route, output: Any, connected: bool) -> ScheduledSink:
        return ScheduledSink(output, to_wall=lambda t: base + t, latency_s=0.005, channels=route.channels,
                             retry_s=0.2, setup=route.setup, connected=connected, label=route.label)

    router = open_router(plan_routes(config), make_output, make_sink, wait=False, stop=threading.Event(), retry_s=0.2)
    assert router is not None
    synths = [bass]
    stop = threading.Event()

    def play() -> None:
        k = 0
        while not stop.is_set():
            t = time.monotonic() - base + 0.02
            router.send(t, CLOCK)
            for ch in (0, 1, 2):
                router.send(t, mm.note_on(ch, 40 + k % 30, 70))
                router.send(t + 0.01, mm.note_off(ch, 40 + k % 30))
            k += 1
            time.sleep(0.02)

    router.start()
    feeder = threading.Thread(target=play)
    feeder.start()
    try:
        assert wait_until(lambda: sum(mm.is_note_on(m) for _, m in bass.messages()) >= 5, 5)
        first = [m for _, m in bass.messages()]
        bass.close()
        assert wait_until(lambda: router.voices()["bass"].state == "missing", 5)
        mark = len(poly.messages())
        time.sleep(1.0)
        assert sum(mm.is_note_on(m) for _, m in poly.messages()[mark:]) >= 2 * 25  # melody + chord played on
        bass = Synth("bass synth")
        synths.append(bass)
        assert wait_until(lambda: router.voices()["bass"].state == "connected", 5)
        assert wait_until(lambda: sum(mm.is_note_on(m) for _, m in bass.messages()) >= 3, 5)
    finally:
        stop.set()
        feeder.join()
        router.close()
        time.sleep(0.1)
        for s in synths:
            s.close()
    second = [m for _, m in bass.messages()]
    poly_msgs = [m for _, m in poly.messages()]
    assert first[:3] == BASS_SETUP and _channels(first) == _channels(second) == {2}
    assert _channels(poly_msgs) == {0, 1} and CLOCK in poly_msgs and CLOCK not in first + second
    head = second[: next(i for i, m in enumerate(second) if mm.is_note_on(m))]
    assert BASS_SETUP[0] in head, head
    at = head.index(BASS_SETUP[0])
    assert head[at : at + 3] == BASS_SETUP and mm.all_notes_off(2) in head[:at], head
