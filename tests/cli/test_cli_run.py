"""`kelly-edge run` and `check-config` as a user runs them: a subprocess, real files, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest

from kelly_edge.audio.wav import write_wav

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "kelly_edge" / "data" / "demo.wav"
REQUIRED_KEYS = {"hops", "deadline_misses", "hop_ms", "notes", "key", "models", "emotion"}


def kelly(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "kelly_edge", *args], capture_output=True, text=True, cwd=cwd or REPO, env=env, timeout=300
    )


def note_events(path: Path) -> list[tuple[float, mido.Message]]:
    """(seconds, message) for every channel message of a MIDI file, via mido (an independent reader)."""
    t, out = 0.0, []
    for msg in mido.MidiFile(path):
        t += msg.time
        if not msg.is_meta:
            out.append((t, msg))
    return out


def assert_well_paired(events: list[tuple[float, mido.Message]]) -> int:
    sounding: dict[tuple[int, int], float] = {}
    ons = 0
    for t, m in events:
        if m.type == "note_on" and m.velocity > 0:
            assert (m.channel, m.note) not in sounding, f"re-struck sounding note {m}"
            sounding[(m.channel, m.note)] = t
            ons += 1
            assert 1 <= m.velocity <= 127
        elif m.type == "note_off" or (m.type == "note_on" and m.velocity == 0):
            assert (m.channel, m.note) in sounding, f"note-off without note-on {m}"
            del sounding[(m.channel, m.note)]
    assert not sounding, f"notes left sounding: {sounding}"
    return ons


def test_demo_run_writes_midi_and_report(tmp_path: Path) -> None:
    mid, rep = tmp_path / "demo.mid", tmp_path / "demo.json"
    proc = kelly("run", "--input", str(DEMO), "--midi-out", str(mid), "--report", str(rep))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(rep.read_text())
    assert REQUIRED_KEYS <= report.keys()
    assert set(report["models"]) == {"emotion", "melody", "harmony", "dynamics", "groove"}
    assert set(report["models"].values()) <= {"trained", "fallback"}
    assert set(report["hop_ms"]) == {"p50", "p99", "p999", "max"}
    assert report["hops"] == pytest.approx(20.0 / 0.01, rel=0.01)
    assert report["key"].split()[1] in ("major", "minor")
    assert 15 <= len(report["emotion"]) <= 25  # about once a second over 20 s
    for e in report["emotion"]:
        assert -1 <= e["valence"] <= 1 and -1 <= e["arousal"] <= 1 and e["label"]
    events = note_events(mid)
    ons = assert_well_paired(events)
    assert ons == report["notes"] > 20
    assert max(t for t, _ in events) <= 20.0 + 0.01  # nothing after the end of the audio
    channels = {m.channel for _, m in events if m.type in ("note_on", "note_off")}
    assert channels <= {0, 1, 2}  # default melody/chord/bass channels 1/2/3


def test_demo_key_is_the_pieces_key(tmp_path: Path) -> None:
    """Maple Leaf Rag opens in A-flat major (music21's analysis of the score agrees)."""
    rep = tmp_path / "r.json"
    proc = kelly("run", "--input", str(DEMO), "--midi-out", str(tmp_path / "x.mid"), "--report", str(rep))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(rep.read_text())["key"] == "Ab major"


def _music(sr: int) -> np.ndarray:
    """4 s of a C-major arpeggio with decaying partials: something with onsets, pitch and a key."""
    t = np.arange(int(sr * 4.0)) / sr
    x = np.zeros_like(t)
    for i, f in enumerate([261.63, 329.63, 392.0, 523.25] * 4):
        start = i * 0.25
        env = np.where(t >= start, np.exp(-(t - start) * 4.0), 0.0)
        for h in (1, 2, 3):
            x += env * np.sin(2 * np.pi * f * h * (t - start)) * 0.2 / h
    return x / np.max(np.abs(x)) * 0.8


@pytest.mark.parametrize(
    "sr,bits,is_float,channels",
    [(16000, 16, False, 1), (22050, 24, False, 2), (44100, 32, False, 1), (48000, 32, True, 2), (96000, 16, False, 6)],
)
def test_formats_rates_and_channels(tmp_path: Path, sr: int, bits: int, is_float: bool, channels: int) -> None:
    x = _music(sr)
    data = np.stack([x] * channels, axis=1) if channels > 1 else x
    wav, mid, rep = tmp_path / "in.wav", tmp_path / "out.mid", tmp_path / "r.json"
    write_wav(wav, data, sr, bits=bits, is_float=is_float)
    proc = kelly("run", "--input", str(wav), "--midi-out", str(mid), "--report", str(rep))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(rep.read_text())
    assert report["hops"] == pytest.approx(400, abs=3)
    events = note_events(mid)
    assert assert_well_paired(events) == report["notes"]
    assert max((t for t, _ in events), default=0.0) <= 4.0 + 0.01


@pytest.mark.parametrize("kind", ["silence", "noise"])
def test_silence_and_full_scale_noise_give_valid_midi(tmp_path: Path, kind: str) -> None:
    sr = 44100
    x = np.zeros(sr * 3) if kind == "silence" else np.random.default_rng(1).uniform(-1, 1, sr * 3)
    wav, mid, rep = tmp_path / "in.wav", tmp_path / "out.mid", tmp_path / "r.json"
    write_wav(wav, x, sr)
    proc = kelly("run", "--input", str(wav), "--midi-out", str(mid), "--report", str(rep))
    assert proc.returncode == 0, proc.stderr
    events = note_events(mid)  # mido parses it: a valid SMF
    assert_well_paired(events)
    if kind == "silence":
        assert json.loads(rep.read_text())["notes"] == 0


def _bad_inputs(tmp: Path) -> dict[str, Path]:
    good = tmp / "good.wav"
    write_wav(good, _music(22050), 22050)
    empty = tmp / "empty.wav"
    empty.write_bytes(b"")
    text = tmp / "notes.wav"
    text.write_text("this is not a recording\n")
    cut = tmp / "cut.wav"
    cut.write_bytes(good.read_bytes()[:3000])
    return {"missing": tmp / "nope.wav", "empty": empty, "text": text, "truncated": cut}


@pytest.mark.parametrize("case", ["missing", "empty", "text", "truncated"])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, case: str) -> None:
    path = _bad_inputs(tmp_path)[case]
    mid = tmp_path / "out.mid"
    proc = kelly("run", "--input", str(path), "--midi-out", str(mid))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not mid.exists()


def test_unwritable_output_is_one_line_and_exit_2(tmp_path: Path) -> None:
    wav = tmp_path / "in.wav"
    write_wav(wav, _music(16000), 16000)
    for out in (tmp_path / "no" / "such" / "dir" / "out.mid", tmp_path):
        proc = kelly("run", "--input", str(wav), "--midi-out", str(out))
        assert proc.returncode == 2
        assert len(proc.stderr.strip().splitlines()) == 1 and "cannot write" in proc.stderr


def test_malformed_config_is_reported_with_line_and_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("audio:\n  gate_db: -40\ngenerator:\n  melody:\n    channel: 17\n")
    wav = tmp_path / "in.wav"
    write_wav(wav, _music(16000), 16000)
    proc = kelly("run", "--input", str(wav), "--midi-out", str(tmp_path / "o.mid"), "--config", str(cfg))
    assert proc.returncode == 2
    assert f"{cfg}:5: generator.melody.channel must be 1-16, got 17" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_check_config_verdicts(tmp_path: Path) -> None:
    ok = kelly("check-config", str(REPO / "config" / "default.yaml"))
    assert ok.returncode == 0 and "OK" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("tempo:\n  bpm: fast\n  sorce: tap\n")
    proc = kelly("check-config", str(bad))
    assert proc.returncode == 1
    assert f"{bad}:2: tempo.bpm" in proc.stderr and f"{bad}:3: unknown key tempo.sorce" in proc.stderr
    missing = kelly("check-config", str(tmp_path / "absent.yaml"))
    assert missing.returncode == 1 and "absent.yaml" in missing.stderr


def test_config_changes_what_is_played(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("generator:\n  melody: {channel: 10}\n  chord: {enabled: false}\n  bass: {enabled: false}\n")
    mid = tmp_path / "o.mid"
    proc = kelly("run", "--input", str(DEMO), "--midi-out", str(mid), "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr
    channels = {m.channel for _, m in note_events(mid) if m.type == "note_on"}
    assert channels == {9}
