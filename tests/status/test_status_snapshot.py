"""The status snapshot says what the engine is doing, in plain JSON-able values."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from kelly_edge.config.schema import default_config
from kelly_edge.control.box import EngineControls
from kelly_edge.control.leds import OFF
from kelly_edge.emotion import thesaurus
from kelly_edge.engine.engine import Engine
from kelly_edge.midi.sinks import RecordingSink
from kelly_edge.models import spec
from kelly_edge.report import build_report
from kelly_edge.status.snapshot import HOP_WINDOW, build_snapshot, model_confidence, recent_hop_times
from kelly_edge.status.text import render, render_text
from tests.status.status_harness import read_wav


@pytest.fixture(scope="module")
def long_engine() -> Engine:
    """The demo recording played three and a bit times: more hops than one chunk of hop times."""
    samples, rate = read_wav()
    eng = Engine(default_config(), RecordingSink(), sample_rate=rate)
    hop = eng.hop_length
    audio = np.concatenate([samples] * 3 + [samples[: rate * 3]])
    for start in range(0, audio.size, hop):
        eng.process_hop(audio[start : start + hop])
    return eng


def test_snapshot_is_json_and_matches_the_engine(long_engine: Engine) -> None:
    eng = long_engine
    snap = build_snapshot(eng, {"audio": {"backend": "file", "state": "running"}, "last_error": "boom", "tempo_source": "tap"})
    back = json.loads(json.dumps(snap))
    assert back == snap
    assert snap["state"] == "running"
    assert snap["audio_s"] == pytest.approx(eng.time_s, abs=1e-3)
    assert snap["key"]["name"] == eng.ctx.key_name
    assert snap["chord"] == spec.chord_name(eng.generator.current_chord)
    v, a = float(eng.emotion_vadi[0]), float(eng.emotion_vadi[1])
    assert snap["emotion"]["valence"] == pytest.approx(v, abs=1e-3)
    assert snap["emotion"]["name"] == thesaurus.nearest(v, a).name
    assert snap["emotion"]["family"] == thesaurus.by_name(snap["emotion"]["name"]).family
    # the grid follows the player (tempo.source player): its rate is bent, the snapshot rounds it
    assert snap["tempo"]["bpm"] == round(eng.grid.bpm, 2) and snap["tempo"]["source"] == "tap"
    assert 40.0 <= eng.ctx.tempo_bpm <= 240.0  # the onsets of the demo gave a tempo...
    assert snap["tempo"]["detected_bpm"] == pytest.approx(eng.ctx.tempo_bpm, abs=0.05)  # ...and status shows it
    assert snap["last_error"] == "boom" and snap["audio"]["state"] == "running" and snap["midi"] is None
    timing = snap["timing"]
    assert timing["hops"] == eng.scheduler.hops and timing["deadline_misses"] == eng.scheduler.deadline_misses
    assert timing["window_hops"] == HOP_WINDOW
    hop = timing["hop_ms"]
    assert 0 < hop["p50"] <= hop["p99"] <= hop["p999"] <= hop["max"]
    assert set(snap["models"]) == set(spec.MODEL_NAMES)
    for name, m in snap["models"].items():
        assert m["status"] == eng.models[name].status
        assert m["runs"] == eng.scheduler.slots[name].runs > 0
        assert m["enabled"] is True
        assert m["confidence"] is None or 0.0 <= m["confidence"] <= 1.0


def test_hop_percentiles_cover_the_recent_window_across_chunks(long_engine: Engine) -> None:
    eng = long_engine
    every = eng.recent_hop_times(6000)
    assert len(eng.stats.hop_times) > 6000  # the engine's ring of recent hop times has wrapped
    for n in (10, HOP_WINDOW, 5000):
        np.testing.assert_array_equal(recent_hop_times(eng, n), every[-n:])
    window = every[-HOP_WINDOW:] * 1000.0
    hop = build_snapshot(eng)["timing"]["hop_ms"]
    assert hop["p50"] == pytest.approx(np.percentile(window, 50), abs=1e-3)
    assert hop["p99"] == pytest.approx(np.percentile(window, 99), abs=1e-3)
    assert hop["p999"] == pytest.approx(np.percentile(window, 99.9), abs=1e-3)
    assert hop["max"] == pytest.approx(window.max(), abs=1e-3)


def _line_of(snap: dict[str, object], name: str) -> str:
    return next(line for line in render_text(snap).splitlines() if line.strip().startswith(name))


def test_a_network_disabled_in_the_config_shows_as_on_its_fallback() -> None:
    """``models.groove.enabled: false`` is not "off": the groove still plays, by its heuristic."""
    cfg = default_config()
    models = dataclasses.replace(cfg.models, groove=dataclasses.replace(cfg.models.groove, enabled=False))
    eng = Engine(dataclasses.replace(cfg, models=models), RecordingSink(), sample_rate=22050)
    eng.process_hop(np.zeros(eng.hop_length, dtype=np.float32))
    groove = build_snapshot(eng)["models"]["groove"]
    assert groove["enabled"] is True and groove["status"] == "fallback" and "disabled" in groove["why"]
    line = _line_of(build_snapshot(eng), "groove")
    assert " fallback " in line and "disabled in the config" in line


def test_a_model_switched_off_by_footswitch_shows_as_off() -> None:
    """Status tells the truth the LEDs tell: a footswitched-off model is off, back on when switched on."""
    samples, rate = read_wav()
    eng = Engine(default_config(), RecordingSink(), sample_rate=rate)
    controls = EngineControls(eng, default_config())
    hop = eng.hop_length

    def play(seconds: float, start: int) -> None:
        for k in range(start, start + int(seconds * rate), hop):
            eng.process_hop(samples[k : k + hop])

    play(2.0, 0)
    controls.toggle_model("melody")
    controls.toggle_model("groove")
    play(2.0, 2 * rate)
    snap = build_snapshot(eng)
    assert controls.model_leds()["melody"] == controls.model_leds()["groove"] == OFF
    assert snap["models"]["melody"]["enabled"] is False and snap["models"]["groove"]["enabled"] is False
    assert all(snap["models"][n]["enabled"] for n in ("emotion", "harmony", "dynamics"))
    assert " off " in _line_of(snap, "melody") and " off " in _line_of(snap, "groove")
    assert _line_of(snap, "groove").endswith("(switched off)")  # not the trained file's load message
    report = build_report(eng, source={"kind": "test"}, wall_s=1.0)
    assert report["model_detail"]["melody"]["enabled"] is False  # the run report reads the same state
    controls.toggle_model("melody")
    assert build_snapshot(eng)["models"]["melody"]["enabled"] is True


def test_confidence_of_each_output_kind() -> None:
    harmony = np.zeros(spec.HARMONY.n_out, dtype=np.float32)
    harmony[spec.chord_index(9, "min")] = 1.0
    assert model_confidence("harmony", harmony) == (1.0, "Am")
    harmony[: spec.N_CHORD_CLASSES] = 1.0  # unnormalised uniform: 1/61 after normalising
    conf, _ = model_confidence("harmony", harmony)
    assert conf == pytest.approx(1.0 / spec.N_CHORD_CLASSES)
    melody = np.zeros(spec.MELODY.n_out, dtype=np.float32)
    melody[[60, 64]] = [0.75, 0.25]
    assert model_confidence("melody", melody) == (0.75, "C4")
    groove = np.zeros(spec.GROOVE.n_out, dtype=np.float32)
    groove[:16] = 0.5
    assert model_confidence("groove", groove)[0] == 0.0  # undecided on every step
    groove[:16] = [1.0, 0.0] * 8
    assert model_confidence("groove", groove) == (1.0, "8/16 hits")
    emotion = np.zeros(spec.EMOTION.n_out, dtype=np.float32)
    emotion[4 + spec.EMOTION_FAMILIES.index("joy")] = 0.6
    emotion[4 + spec.EMOTION_FAMILIES.index("trust")] = 0.4
    assert model_confidence("emotion", emotion) == (pytest.approx(0.6), "joy")
    assert model_confidence("dynamics", np.zeros(spec.DYNAMICS.n_out, np.float32))[0] is None
    assert model_confidence("harmony", np.zeros(spec.HARMONY.n_out, np.float32))[0] == 0.0  # no mass: no confidence


def test_text_flags_what_needs_attention() -> None:
    snap = {
        "kind": "kelly-edge-status", "state": "running", "pid": 1, "time": 1000.0, "audio_s": 3725.0,
        "emotion": {"valence": 0.5, "arousal": -0.2, "name": "contentment", "family": "joy", "intent": None},
        "key": {"name": "E minor", "clarity": 0.7, "known": True}, "chord": "Em",
        "tempo": {"bpm": 92.0, "source": "tap", "detected_bpm": 0.0},
        "input": {"level_db": -20.0, "silent": False},
        "models": {"emotion": {"enabled": True, "status": "trained", "confidence": 0.8, "top": "joy", "runs": 5},
                   "melody": {"enabled": True, "status": "fallback", "why": "melody.tflite not found", "runs": 2}},
        "timing": {"hops": 100, "deadline_misses": 3, "budget_ms": 10.0, "window_hops": 100,
                   "hop_ms": {"p50": 1.0, "p99": 2.0, "p999": 3.0, "max": 4.0}},
        "audio": {"backend": "pyaudio", "device": "USB", "state": "stopped"}, "midi": None, "last_error": "MIDI port vanished",
    }
    lines = render(snap, now=1001.0)
    tagged = {text.split()[0] if text.split() else "": tag for tag, text in lines}
    assert lines[0][0] == "head" and "1:02:05" in lines[0][1]
    assert tagged["melody"] == "warn" and tagged["emotion"] == ""
    assert any(tag == "warn" and "deadline misses 3" in text for tag, text in lines)
    assert any(tag == "warn" and text.startswith("Audio") and "stopped" in text for tag, text in lines)
    assert any(tag == "error" and "MIDI port vanished" in text for tag, text in lines)
    assert not any("STALE" in text for _, text in lines)
    assert any("STALE" in text for _, text in render(snap, now=1100.0))


def test_live_loop_status_becomes_device_lines() -> None:
    from kelly_edge.status.snapshot import live_extras

    live = {"audio_input": "USB Audio CODEC", "tempo_bpm": 100.0, "tempo_source": "onsets", "input_gain_db": 3.0,
            "calibrated": True, "overflows": 2, "dropped_frames": 0, "midi_output": "Synth A", "midi_connected": False,
            "midi_sent": 120, "midi_late": 1, "midi_lateness_ms": {"p50": 0.1, "p99": 0.9}}
    extras = live_extras(live, backend="jack", sample_rate=48000, last_error=RuntimeError("MIDI port went away"))
    assert extras["audio"] == {"state": "running", "backend": "jack", "device": "USB Audio CODEC", "sample_rate": 48000,
                               "gain_db": 3.0, "calibrated": True, "overflows": 2, "dropped": 0}
    assert extras["midi"] == {"state": "missing", "port": "Synth A", "sent": 120, "late": 1, "late_p99_ms": 0.9}
    assert extras["last_error"] == "MIDI port went away" and extras["tempo_source"] == "onsets"
    snap = {"kind": "kelly-edge-status", "state": "running", "time": 0.0, **extras}
    lines = render(snap, now=0.0)
    midi_line = next((tag, text) for tag, text in lines if text.startswith("MIDI"))
    audio_line = next((tag, text) for tag, text in lines if text.startswith("Audio"))
    assert midi_line[0] == "warn" and '"Synth A"' in midi_line[1] and "missing" in midi_line[1]
    assert audio_line[0] == "" and '"USB Audio CODEC"' in audio_line[1] and "48000 Hz" in audio_line[1]
    gone = live_extras({**live, "audio_input": None})
    assert gone["audio"]["state"] == "missing" and "device" not in gone["audio"]


def test_one_port_per_synth_shows_each_voices_port_and_state() -> None:
    from kelly_edge.status.snapshot import live_extras

    ports = [
        {"port": "poly synth:in", "want": "poly", "key": "midi.port", "voices": ["melody", "chord"], "clock": True,
         "state": "connected", "since_s": 60.0, "sent": 900, "late": 0, "dropped": 0, "lost": 0, "sounding": 3,
         "late_p99_ms": 0.0},
        {"port": "bass synth:in", "want": "bass", "key": "generator.bass.port", "voices": ["bass"], "clock": False,
         "state": "missing", "since_s": 12.0, "sent": 80, "late": 0, "dropped": 7, "lost": 1, "sounding": 0,
         "late_p99_ms": 0.0},
    ]
    voices = {"melody": {"port": "poly synth:in", "state": "connected"},
              "chord": {"port": "poly synth:in", "state": "connected"},
              "bass": {"port": "bass synth:in", "state": "missing"}}
    live = {"audio_input": "USB", "midi_output": "poly synth:in", "midi_connected": False, "midi_sent": 980,
            "midi_late": 0, "midi_lateness_ms": {"p99": 0.0}, "midi_ports": ports, "midi_voices": voices}
    extras = live_extras(live)
    assert extras["midi"]["voices"] == voices and extras["midi"]["ports"] == ports
    lines = render({"kind": "kelly-edge-status", "state": "running", "time": 0.0, **extras}, now=0.0)
    start = next(i for i, (_, text) in enumerate(lines) if text.startswith("MIDI"))
    (tag1, poly), (tag2, bass) = lines[start : start + 2]
    assert tag1 == "" and poly.startswith("MIDI") and 'melody+chord + clock -> "poly synth:in"' in poly
    assert tag2 == "warn" and 'bass -> "bass synth:in"' in bass and bass.endswith("missing 12 s")
