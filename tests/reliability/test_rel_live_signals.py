"""Signals against the real process: ``kelly-edge run --input demo.wav --realtime`` (the live loop
playing a recording) hit by SIGTERM at random moments, by bursts of SIGHUP while its config is
rewritten valid and invalid, and by a SIGHUP after a model file was replaced by garbage.

Each must end in a clean exit (code 0) with a complete .mid in which every note-on is paired and
nothing sounds at the end. A SIGTERM that lands before the box has installed its handlers (while
Python is still importing) ends the process by the signal: then nothing may have been written.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from tests.cli_box import Box as CliBox
from tests.live.live_fakes import wait_until
from tests.reliability.rel_cli import DEMO, NATIVE_NOISE, REPO, assert_complete

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


class Box(CliBox):
    """``run --input demo.wav --realtime`` writing ``<name>.mid``, ``<name>.json`` and a status socket in ``tmp``."""

    def __init__(self, tmp: Path, name: str, *extra: str, duration: float = 30.0) -> None:
        self.mid = tmp / f"{name}.mid"
        self.report = tmp / f"{name}.json"
        super().__init__(None, report=self.report, duration=duration, args=(
            "--input", str(DEMO), "--realtime", "--midi-out", str(self.mid),
            "--status-socket", str(tmp / f"{name}.sock"), *extra))

    def wait_listening(self, timeout: float = 30.0) -> None:
        wait_until(lambda: self.has("live: listening") or self.proc.poll() is not None, timeout)
        assert self.has("live: listening"), f"the box did not start: {self.lines[-10:]}"

    def stderr(self) -> str:
        return "\n".join(line for line in self.lines if not line.startswith(NATIVE_NOISE))


def _assert_clean_end(box: Box, code: int) -> None:
    assert code == 0, box.stderr()[-1500:]
    assert "Traceback" not in box.stderr() and "internal error" not in box.stderr(), box.stderr()[-1500:]
    assert_complete(box.mid)  # reads back, every note paired, nothing sounding at the end
    report = json.loads(box.report.read_text())
    assert report["live"]["error"] is None
    leftovers = [p.name for p in box.mid.parent.glob(".*.tmp")]
    assert leftovers == []


def test_sigterm_at_random_moments_ends_cleanly(tmp_path: Path) -> None:
    rng = np.random.default_rng(int(time.time()) % 1000)  # random moments: a new draw every run, logged
    delays = [float(d) for d in rng.uniform(0.0, 2.5, 4)]
    print(f"SIGTERM delays after start-up: {delays}")
    for i, delay in enumerate(delays):
        box = Box(tmp_path, f"term{i}")
        box.wait_listening()
        time.sleep(delay)
        box.proc.send_signal(signal.SIGTERM)
        _assert_clean_end(box, box.wait(30.0))
    # one during start-up (imports, model loading): a clean exit, or killed before anything was written
    box = Box(tmp_path, "term_early")
    time.sleep(float(rng.uniform(0.05, 0.6)))
    box.proc.send_signal(signal.SIGTERM)
    code = box.wait(30.0)
    if code == -signal.SIGTERM:
        assert not box.mid.exists() and not box.report.exists()
    else:
        _assert_clean_end(box, code)


VALID = [
    "tempo: {bpm: 120}\n",
    "tempo: {bpm: 90}\nemotion: {intent: joy}\n",
    "active: {groove: false, melody: false}\n",
    "generator:\n  chord: {enabled: false}\nscheduler: {budget_ms: 5}\n",
    "tempo: {bpm: 140}\nactive: {harmony: false}\n",
]
INVALID = [
    "tempo: {bpm: 9000}\n", "generator:\n  melody: {channel: 17}\n", "{{{{ not yaml", "\x00\x01\x02", "- a list\n",
    "tempo:\n\tbpm: 100\n", "presets: " + "[" * 400 + "]" * 400 + "\n",
]


def test_a_burst_of_sighups_while_the_config_is_rewritten(tmp_path: Path) -> None:
    config = tmp_path / "box.yaml"
    config.write_text("tempo: {bpm: 100}\n")
    box = Box(tmp_path, "hup", "--config", str(config), duration=6.0)
    box.wait_listening()
    rng = np.random.default_rng(4)
    for i in range(20):
        text = VALID[i % len(VALID)] if rng.random() < 0.6 else INVALID[int(rng.integers(0, len(INVALID)))]
        tmp = config.with_suffix(".new")
        tmp.write_text(text)
        os.replace(tmp, config)
        box.proc.send_signal(signal.SIGHUP)
        time.sleep(float(rng.uniform(0.0, 0.08)))
    config.write_text(VALID[0])
    box.proc.send_signal(signal.SIGHUP)
    code = box.wait(30.0)
    _assert_clean_end(box, code)
    err = box.stderr()
    assert "reloaded" in err and "rejected" in err  # both kinds were seen, and the box lived through them
    report = json.loads(box.report.read_text())
    assert report["live"]["hops"] >= 300  # it kept processing through the burst


def test_a_model_file_replaced_by_garbage_before_a_sighup(tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(REPO / "models_tflite", models)
    config = tmp_path / "box.yaml"
    config.write_text(f"models: {{dir: {models}}}\n")
    box = Box(tmp_path, "models", "--config", str(config), duration=5.0)
    box.wait_listening()
    time.sleep(0.5)
    (models / "melody.tflite").write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (models / "dynamics.tflite").write_bytes((models / "dynamics.tflite").read_bytes()[:1000])  # truncated
    box.proc.send_signal(signal.SIGHUP)
    code = box.wait(30.0)
    _assert_clean_end(box, code)
    report = json.loads(box.report.read_text())
    assert report["models"]["melody"] == "fallback" and report["models"]["dynamics"] == "fallback"
    assert report["models"]["emotion"] == report["models"]["harmony"] == report["models"]["groove"] == "trained"
    err = box.stderr()
    assert sum("MelodyTransformer" in line and "fallback" in line for line in box.lines) == 1, err[-1500:]
    assert sum("DynamicsEngine" in line and "fallback" in line for line in box.lines) == 1, err[-1500:]
    assert "model files re-loaded" in err
