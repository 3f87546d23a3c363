"""What the runner says when a trained model cannot be used: at WARNING, once per model, never
blaming the file for the interpreter, never advice this machine cannot follow.

The interpreter/numpy mismatch is real in the ``pi`` test: tflite-runtime 2.14 (built for numpy 1)
in a venv with numpy 2, as a 32-bit Raspberry Pi OS box with tflite-runtime has it.
"""

from __future__ import annotations

import logging
import platform
import subprocess
import sys
import types
from pathlib import Path

import pytest

from kelly_edge.errors import ModelError
from kelly_edge.models import runner, spec
from kelly_edge.models.runner import load_all

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "models_tflite"


def test_no_trained_model_warns_once_per_model(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="kelly_edge.models.runner"):
        loaded = load_all(tmp_path)
    assert {m.status for m in loaded.values()} == {"fallback"}
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert sorted(r.getMessage().split(":")[0] for r in warned) == sorted(s.title for s in spec.MODELS)
    assert all("not found" in r.getMessage() and "heuristic fallback" in r.getMessage() for r in warned)


def _broken_interpreter(monkeypatch: pytest.MonkeyPatch, err: BaseException) -> None:
    class Interpreter:
        __module__ = "tflite_runtime.interpreter"

        def __init__(self, **kw: object) -> None:
            raise SystemError("<built-in method CreateWrapperFromFile> returned a result with an exception set") from err

    monkeypatch.setattr(runner, "_interpreter_class", lambda: Interpreter)


def test_an_abi_mismatch_is_the_interpreters_not_the_files(monkeypatch: pytest.MonkeyPatch) -> None:
    _broken_interpreter(monkeypatch, AttributeError("_ARRAY_API not found"))
    loaded = load_all(SHIPPED)
    for m in loaded.values():
        assert m.status == "fallback"
        assert "does not work with numpy" in m.reason and "_ARRAY_API not found" in m.reason
        assert "not a valid" not in m.reason and "rebuild" not in m.reason


def test_a_bad_file_is_still_the_files(tmp_path: Path) -> None:
    bad = tmp_path / "emotion.tflite"
    bad.write_bytes(b"\0" * 64)
    with pytest.raises(ModelError, match="not a valid TFLite model.*rebuild it with make models"):
        runner.TfliteModel(bad, spec.EMOTION)


@pytest.mark.parametrize("machine", ["aarch64", "armv7l"])
def test_a_32_bit_userland_is_told_to_use_64_bit_pi_os(monkeypatch: pytest.MonkeyPatch, machine: str) -> None:
    """32-bit Raspberry Pi OS on a 64-bit kernel says aarch64: the pointer size decides."""
    monkeypatch.setattr(runner, "userland_bits", lambda: 32)
    monkeypatch.setattr(platform, "machine", lambda: machine)
    advice = runner.interpreter_advice()
    assert "64-bit Raspberry Pi OS" in advice and "pip install" not in advice


def test_missing_and_broken_interpreters_are_told_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # not installed
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    with pytest.raises(ModelError, match="no TFLite interpreter installed; install ai-edge-litert"):
        runner._interpreter_class()
    broken = types.ModuleType("tflite_runtime.interpreter")

    def no_attr(name: str) -> object:
        raise ImportError("numpy.core.multiarray failed to import")

    broken.__getattr__ = no_attr  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", broken)
    with pytest.raises(ModelError, match="does not import .tflite_runtime: numpy.core.multiarray failed to import"):
        runner._interpreter_class()


@pytest.mark.pi
@pytest.mark.slow
def test_real_tflite_runtime_on_numpy_2_is_reported_as_the_interpreter_in_one_line(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / "bin/pip"), "install", "--quiet", "--disable-pip-version-check", "--only-binary=:all:",
                          "tflite-runtime==2.14.0", "numpy>=2", "pyyaml"], capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr
    out = tmp_path / "demo.mid"
    done = subprocess.run([str(venv / "bin/python"), "-m", "kelly_edge", "run", "--input", str(REPO / "kelly_edge/data/demo.wav"),
                           "--midi-out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and out.is_file(), done.stderr  # the box still plays, on its heuristics
    assert "Traceback" not in done.stderr and "compiled using NumPy 1.x" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if "TFLite" in line]
    assert len(lines) == len(spec.MODELS), done.stderr
    for line in lines:
        assert "tflite_runtime 2.14.0 does not work with numpy 2" in line and "pip install ai-edge-litert" in line
        assert "not a valid" not in line and "rebuild" not in line
