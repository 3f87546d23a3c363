"""The TFLite runner: shipped INT8 models load and compute; any bad file falls back with one line."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from kelly_edge.config.loader import parse_config
from kelly_edge.engine.engine import Engine
from kelly_edge.midi.sinks import RecordingSink
from kelly_edge.models import spec
from kelly_edge.models.fallbacks import make_fallback
from kelly_edge.models.runner import LoadedModel, load_all, load_model

SHIPPED = Path(__file__).resolve().parents[2] / "models_tflite"


def copy_models(tmp: Path) -> Path:
    dst = tmp / "models"
    shutil.copytree(SHIPPED, dst)
    return dst


def set_manifest_sha(models: Path, name: str) -> None:
    path = models / "manifest.json"
    data = json.loads(path.read_text())
    data["models"][name]["sha256"] = hashlib.sha256((models / f"{name}.tflite").read_bytes()).hexdigest()
    path.write_text(json.dumps(data))


def test_shipped_models_load_as_trained_and_honour_the_contract() -> None:
    loaded = load_all(SHIPPED)
    rng = np.random.default_rng(0)
    for s in spec.MODELS:
        m = loaded[s.name]
        assert m.status == "trained", m.reason
        y = m.call(rng.normal(size=s.n_in).astype(np.float32))
        assert y.shape == (s.n_out,) and y.dtype == np.float32 and np.all(np.isfinite(y))
    y = loaded["melody"].call(np.zeros(64, np.float32))
    assert abs(float(y.sum()) - 1.0) < 0.1 and y.min() >= 0  # softmax, INT8 steps of 1/256
    h = loaded["harmony"].call(np.zeros(128, np.float32))
    assert abs(float(h[: spec.N_CHORD_CLASSES].sum()) - 1.0) < 0.1
    g = loaded["groove"].call(np.zeros(64, np.float32))
    assert np.all((g[:16] >= 0) & (g[:16] <= 1)) and np.all(np.abs(g[16:]) <= 0.5 + 1e-3)


def _by_hand(path: Path, entry: dict, x: np.ndarray) -> np.ndarray:
    """The INT8 arithmetic written out independently of the runner, element by element."""
    itp = Interpreter(model_path=str(path))
    itp.allocate_tensors()
    inp, out = itp.get_input_details()[0], itp.get_output_details()[0]
    s_in, z_in = inp["quantization"]
    s_out, z_out = out["quantization"]
    q = []
    for v, mu, sd in zip(x, entry["input_mean"], entry["input_std"]):
        z = (float(v) - mu) / max(sd, 1e-6)
        q.append(min(127, max(-128, int(round(z / s_in)) + z_in)))
    itp.set_tensor(inp["index"], np.array([q], dtype=np.int8))
    itp.invoke()
    raw = itp.get_tensor(out["index"])[0]
    y = [(int(r) - z_out) * s_out for r in raw]
    if entry.get("output_std") is not None:
        y = [v * sd + mu for v, sd, mu in zip(y, entry["output_std"], entry["output_mean"])]
    return np.array(y, dtype=np.float32)


@pytest.mark.parametrize("name", spec.MODEL_NAMES)
def test_int8_quantisation_matches_the_arithmetic_by_hand(name: str) -> None:
    s = spec.BY_NAME[name]
    entry = json.loads((SHIPPED / "manifest.json").read_text())["models"][name]
    m = load_model(s, SHIPPED)
    x = np.random.default_rng(3).normal(size=s.n_in).astype(np.float32) * np.asarray(entry["input_std"], np.float32)
    x += np.asarray(entry["input_mean"], np.float32)
    np.testing.assert_allclose(m.call(x), _by_hand(SHIPPED / s.filename, entry, x), rtol=1e-5, atol=1e-5)


def test_missing_folder_and_file_fall_back(tmp_path: Path) -> None:
    m = load_model(spec.EMOTION, tmp_path / "nowhere")
    assert m.status == "fallback" and "not found" in m.reason
    y = m.call(np.zeros(128, np.float32))
    assert y.shape == (64,)


def test_corrupt_file_falls_back_with_one_clear_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    models = copy_models(tmp_path)
    (models / "emotion.tflite").write_bytes(b"\x00garbage" * 100)
    set_manifest_sha(models, "emotion")  # so the interpreter, not the checksum, has to catch it
    with caplog.at_level(logging.WARNING):
        loaded = load_all(models)
    assert loaded["emotion"].status == "fallback" and "not a valid TFLite model" in loaded["emotion"].reason
    assert all(loaded[n].status == "trained" for n in ("melody", "harmony", "dynamics", "groove"))
    lines = [r.getMessage() for r in caplog.records if "emotion.tflite" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0] and "fallback" in lines[0]


def test_replaced_file_fails_its_checksum(tmp_path: Path) -> None:
    models = copy_models(tmp_path)
    blob = bytearray((models / "groove.tflite").read_bytes())
    blob[-20] ^= 0xFF
    (models / "groove.tflite").write_bytes(bytes(blob))
    m = load_model(spec.GROOVE, models)
    assert m.status == "fallback" and "sha256" in m.reason


def test_wrong_shape_is_refused(tmp_path: Path) -> None:
    models = copy_models(tmp_path)
    shutil.copy(models / "melody.tflite", models / "emotion.tflite")
    set_manifest_sha(models, "emotion")
    m = load_model(spec.EMOTION, models)
    assert m.status == "fallback" and "disagrees with the spec" in m.reason


def test_model_failing_at_run_time_is_replaced_by_its_fallback() -> None:
    def broken(x: np.ndarray) -> np.ndarray:
        raise RuntimeError("interpreter exploded")

    models = {s.name: LoadedModel(s, make_fallback(s.name), "fallback", "t") for s in spec.MODELS}
    models["harmony"] = LoadedModel(spec.HARMONY, broken, "trained", "t")
    sr = 16000
    t = np.arange(sr * 3) / sr
    x = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    engine = Engine(parse_config(""), RecordingSink(), sample_rate=sr, models=models)
    for i in range(0, len(x), engine.hop_length):
        engine.process_hop(x[i : i + engine.hop_length])
    engine.close()
    assert engine.model_status()["harmony"] == "fallback"
    assert engine.scheduler.slots["harmony"].runs > 3  # the fallback took over and kept running
