"""Issue 15 (red team), the file side, through the real CLI as a process: outputs that are devices
or the same file as an input or another output, a full disk for the report, offline MIDI memory,
configs that are devices, huge or the state file, piped input, bad manifests, RF64, odd paths.

Each test failed before its fix (see the README's reliability table)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import stat
import struct
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import mido
import numpy as np
import pytest

from kelly_edge.audio.wav import write_wav
from kelly_edge.midi import messages as mm
from kelly_edge.midi.sinks import FileSink
from tests.reliability.rel_cli import DEMO, REPO, Outcome, assert_clean, assert_complete, run_subprocess


def _one_error_line(out: Outcome, *needles: str) -> str:
    """Exit 2 with exactly one ``kelly-edge: error:`` line (after the usual log lines), no traceback."""
    assert out.code == 2, (out.code, out.stderr[-800:])
    assert "Traceback" not in out.stderr and "internal error" not in out.stderr, out.stderr[-800:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("kelly-edge: error: ")]
    assert len(errors) == 1, out.stderr[-800:]
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


# --- item 2: an output naming a device node, FIFO or socket -----------------------------------------

def test_an_output_that_is_a_fifo_or_a_link_to_one_is_refused_and_left_alone(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "link.mid"
    link.symlink_to(fifo)
    for args in (["--midi-out", str(fifo)], ["--midi-out", str(tmp_path / "ok.mid"), "--report", str(link)],
                 ["--realtime", "--midi-out", str(link)]):
        out = run_subprocess(["run", "--input", str(DEMO), *args], timeout_s=60)
        _one_error_line(out, "not a regular file")
        assert stat.S_ISFIFO(os.stat(fifo).st_mode) and link.is_symlink()  # the node survived
        assert not (tmp_path / "ok.mid").exists()  # refused before any work


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root (the FIFO case runs anyway)")
def test_an_output_that_is_a_character_device_survives(tmp_path: Path) -> None:
    node = tmp_path / "null"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a second /dev/null
    out = run_subprocess(["run", "--input", str(DEMO), "--midi-out", str(node)], timeout_s=60)
    _one_error_line(out, "not a regular file")
    assert stat.S_ISCHR(os.stat(node).st_mode)


# --- item 3: outputs that are the same file as the input or each other ------------------------------

def test_outputs_that_are_the_input_or_each_other_are_refused_before_any_work(tmp_path: Path) -> None:
    wav = tmp_path / "a.wav"
    shutil.copy(DEMO, wav)
    original = wav.read_bytes()
    (tmp_path / "sub").mkdir()
    alias = tmp_path / "alias.wav"
    alias.symlink_to(wav)
    config = tmp_path / "box.yaml"
    config.write_text("tempo: {bpm: 100}\n")
    x = tmp_path / "x"
    cases = [
        (["--midi-out", str(wav)], "--input"),
        (["--midi-out", str(tmp_path / "o.mid"), "--report", str(wav)], "--input"),
        (["--midi-out", str(x), "--report", str(x)], "--midi-out"),
        (["--midi-out", str(tmp_path / "sub" / ".." / "x"), "--report", str(x)], "--midi-out"),  # not there yet
        (["--midi-out", str(alias)], "--input"),  # through a symlink
        (["--midi-out", str(config), "--config", str(config)], "--config"),
        (["--realtime", "--midi-out", str(wav)], "--input"),
    ]
    for args, other in cases:
        started = time.monotonic()
        out = run_subprocess(["run", "--input", str(wav), *args], timeout_s=60)
        _one_error_line(out, "same file as", other)
        assert time.monotonic() - started < 20
        assert "loaded trained model" not in out.stderr  # before any work
        assert wav.read_bytes() == original and config.read_text() == "tempo: {bpm: 100}\n"
        assert not x.exists() and not (tmp_path / "o.mid").exists()


# --- item 10: a full disk for the report leaves neither file -----------------------------------------

def test_a_report_that_cannot_be_written_takes_the_midi_file_with_it(tmp_path: Path) -> None:
    mid, report = tmp_path / "a.mid", tmp_path / "a.json"
    # without a limit both appear; their sizes place the limit between the .mid and the report
    out = run_subprocess(["run", "--input", str(DEMO), "--midi-out", str(mid), "--report", str(report)], timeout_s=120)
    assert_clean(out, [mid, report])
    mid_size, report_size = mid.stat().st_size, report.stat().st_size
    assert mid_size < report_size, (mid_size, report_size)
    mid.unlink()
    report.unlink()
    # a file-size limit between the two is a disk that fills up while the report is written
    # (Python ignores SIGXFSZ, so the write fails with EFBIG)
    limit = (mid_size + report_size) // 2
    proc = subprocess.run(
        [sys.executable, "-m", "kelly_edge", "run", "--input", str(DEMO), "--midi-out", str(mid), "--report", str(report)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    out = Outcome(proc.returncode, proc.stdout, proc.stderr)
    _one_error_line(out, str(report))
    assert not mid.exists() and not report.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no temporary file either


# --- item 10: offline MIDI memory does not grow with the input -----------------------------------------

def test_the_midi_file_sink_memory_is_bounded_whatever_the_length(tmp_path: Path) -> None:
    path = tmp_path / "long.mid"
    n = 150_000  # note pairs: ~9 hours of the demo's density
    tracemalloc.start()
    try:
        sink = FileSink(path, bpm=120.0)
        for i in range(n):
            t = i * 0.2
            sink.send(t, mm.note_on(i % 3, 40 + i % 40, 90))
            sink.send(t + 0.15, mm.note_off(i % 3, 40 + i % 40))  # queued ahead of the next note-on
        sink.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12 * 2**20, f"peak {peak / 2**20:.1f} MiB for {2 * n} messages"  # was ~100 MiB
    msgs = [m for m in mido.MidiFile(str(path)).tracks[0] if not m.is_meta]
    assert len(msgs) == 2 * n
    assert [m.type for m in msgs[:4]] == ["note_on", "note_off", "note_on", "note_off"]
    assert_complete(path)
    assert sorted(os.listdir(tmp_path)) == ["long.mid"]  # the spool leaves nothing behind


# --- item 7: piped input -------------------------------------------------------------------------

def _piped(data: bytes, *args: str) -> Outcome:
    proc = subprocess.run([sys.executable, "-m", "kelly_edge", "run", "--input", "/dev/stdin", *args], cwd=REPO,
                          input=data, capture_output=True, timeout=120)
    return Outcome(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def test_a_wav_piped_on_stdin_plays_as_the_file_does(tmp_path: Path) -> None:
    # (the .mid itself may differ by a deferred model run: the scheduler's budget follows the wall clock)
    data = DEMO.read_bytes()
    at = data.index(b"data")
    streamed = b"RIFF\xff\xff\xff\xff" + data[8:at + 4] + b"\xff\xff\xff\xff" + data[at + 8:]
    reports = {}
    for name, feed in (("file", None), ("pipe", data), ("unsized", streamed)):  # sox ... -t wav - leaves sizes unset
        mid, report = tmp_path / f"{name}.mid", tmp_path / f"{name}.json"
        args = ["--midi-out", str(mid), "--report", str(report)]
        out = run_subprocess(["run", "--input", str(DEMO), *args], timeout_s=120) if feed is None else _piped(feed, *args)
        assert_clean(out, [mid, report])
        assert out.code == 0
        reports[name] = json.loads(report.read_text())
    for name in ("pipe", "unsized"):
        assert reports[name]["hops"] == reports["file"]["hops"]
        assert reports[name]["audio_s"] == reports["file"]["audio_s"]
        assert reports[name]["source"]["duration_s"] == pytest.approx(20.0, abs=0.01)
        assert reports[name]["notes"] > 0
    # a rehearsal reads the recording twice: one clear line
    out = _piped(data, "--realtime", "--midi-out", str(tmp_path / "r.mid"))
    _one_error_line(out, "is a pipe", "save it to a .wav file")


# --- item 8: a bad manifest value ------------------------------------------------------------------

def test_text_in_a_manifest_value_makes_only_that_model_fall_back(tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(REPO / "models_tflite", models)
    manifest = json.loads((models / "manifest.json").read_text())
    manifest["models"]["emotion"]["input_mean"] = "zero"
    manifest["models"]["groove"]["input_std"] = [["nested"]] * 3
    manifest["models"]["harmony"] = "not an object"
    (models / "manifest.json").write_text(json.dumps(manifest))
    config = tmp_path / "box.yaml"
    config.write_text(f"models: {{dir: {models}}}\n")
    mid, report = tmp_path / "o.mid", tmp_path / "o.json"
    out = run_subprocess(["run", "--config", str(config), "--input", str(DEMO), "--midi-out", str(mid),
                          "--report", str(report)], timeout_s=120)
    assert_clean(out, [mid, report])
    assert out.code == 0
    status = json.loads(report.read_text())["models"]
    assert status == {"emotion": "fallback", "harmony": "fallback", "melody": "trained", "dynamics": "trained",
                      "groove": "fallback"}, status
    assert "emotion.input_mean must be" in out.stderr and "harmony" in out.stderr


# --- item 10: RF64 and a missing path with a newline ----------------------------------------------

def _rf64(plain: bytes, trailer: bytes) -> bytes:
    """The same audio as the plain WAV ``plain``, as RF64 (sizes in ds64), with ``trailer`` after it."""
    at = plain.index(b"data")
    fmt, pcm = plain[12:at], plain[at + 8:]
    ds64 = struct.pack("<QQQI", 0, len(pcm), len(pcm) // 2, 0)
    body = b"WAVE" + b"ds64" + struct.pack("<I", len(ds64)) + ds64 + fmt + b"data\xff\xff\xff\xff" + pcm + trailer
    return b"RF64\xff\xff\xff\xff" + body


def test_rf64_honours_the_ds64_data_size_and_never_plays_a_chunk_after_the_audio(tmp_path: Path) -> None:
    rate = 22050
    t = np.arange(int(4.0 * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 220.0 * t) * (np.sin(2 * np.pi * 2.0 * t) > 0)
    plain = tmp_path / "plain.wav"
    write_wav(plain, tone, rate)
    noise = np.random.default_rng(0).integers(-32768, 32767, 3 * rate, dtype=np.int16).astype("<i2").tobytes()
    trailer = b"LIST" + struct.pack("<I", len(noise)) + noise  # 3 s of full-scale noise, as metadata
    rf64 = tmp_path / "a.wav"
    rf64.write_bytes(_rf64(plain.read_bytes(), trailer))
    reports = {}
    for name, wav in (("rf64", rf64), ("plain", plain)):
        mid, report = tmp_path / f"{name}.mid", tmp_path / f"{name}.json"
        out = run_subprocess(["run", "--input", str(wav), "--midi-out", str(mid), "--report", str(report)], timeout_s=120)
        assert_clean(out, [mid, report])
        assert out.code == 0
        reports[name] = json.loads(report.read_text())
    assert reports["rf64"]["source"]["duration_s"] == pytest.approx(4.0, abs=0.01)
    assert reports["rf64"]["hops"] == reports["plain"]["hops"]


def test_a_missing_path_with_a_newline_is_still_one_line(tmp_path: Path) -> None:
    odd = str(tmp_path / "two\nlines")
    for args in (["--input", odd + ".wav", "--midi-out", str(tmp_path / "o.mid")],
                 ["--input", str(DEMO), "--midi-out", odd + "/o.mid"],
                 ["--config", odd + ".yaml", "--input", str(DEMO), "--midi-out", str(tmp_path / "o.mid")]):
        out = run_subprocess(["run", *args], timeout_s=60)
        line = _one_error_line(out, "two\\nlines")
        assert [ln for ln in out.stderr.splitlines() if "lines" in ln] == [line]
