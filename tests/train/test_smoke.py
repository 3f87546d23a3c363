"""Reduced end-to-end run of the training pipeline, and its refusals on bad input.

The smoke run trains all five nets for a few steps on a tiny corpus subset, converts them to INT8,
and then loads them the way the stomp-box does: ``ai_edge_litert`` and the runtime runner only.
Skipped when TensorFlow (the ``train`` extra) is not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest

import tensorflow  # noqa: F401  (the [train] extra: make test installs it; a missing TF must fail, not skip)

from kelly_edge.errors import ModelError, OutputError  # noqa: E402
from kelly_edge.models import spec  # noqa: E402
from tools.datasets.common import DatasetError  # noqa: E402
from tools.train import convert, pipeline  # noqa: E402
from tools.train import tflite_eval as TE  # noqa: E402
from tools.train.cli import main  # noqa: E402
from tools.train.symbolic import pieces_from_folder  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run ``python -m tools.train all --smoke`` once into a temporary folder."""
    root = tmp_path_factory.mktemp("smoke")
    out = root / "models"
    rc = main(["all", "--smoke", "--out", str(out), "--data-cache", str(root / "cache")])
    assert rc == 0
    return out


def _spec_input(s: spec.ModelSpec, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, s.n_in).astype(np.float32)


def test_all_five_written_with_manifest(smoke: Path) -> None:
    manifest = json.loads((smoke / "manifest.json").read_text())
    assert manifest["format"] == 1
    assert set(manifest["models"]) == set(spec.MODEL_NAMES)
    for name, entry in manifest["models"].items():
        s = spec.BY_NAME[name]
        path = smoke / entry["file"]
        assert path.is_file()
        assert entry["sha256"] == convert.sha256_bytes(path.read_bytes())
        assert (entry["n_in"], entry["n_out"]) == (s.n_in, s.n_out)
        assert len(entry["input_mean"]) == s.n_in and len(entry["input_std"]) == s.n_in
        assert min(entry["input_std"]) > 0
        assert entry["layers"] == [s.n_in, *s.hidden, s.n_out]
        for key in ("model", "fallback", "baseline", "int8_vs_float"):
            assert key in entry["metrics"], (name, key)
        assert entry["data"]
        assert not list(smoke.glob("*.tmp"))


def test_models_run_in_interpreter_alone(smoke: Path) -> None:
    """Each file: int8 (1, n_in) -> int8 (1, n_out), and the outputs keep their documented ranges."""
    manifest = json.loads((smoke / "manifest.json").read_text())["models"]
    for s in spec.MODELS:
        entry = manifest[s.name]
        it = TE.interpreter(str(smoke / s.filename))
        i, o = it.get_input_details()[0], it.get_output_details()[0]
        assert tuple(i["shape"]) == (1, s.n_in) and i["dtype"] == np.int8
        assert tuple(o["shape"]) == (1, s.n_out) and o["dtype"] == np.int8
        x = np.stack([_spec_input(s, k) for k in range(4)])
        y = TE.destandardise(
            TE.run_int8(it, x, np.asarray(entry["input_mean"], np.float32), np.asarray(entry["input_std"], np.float32)),
            None if entry["output_mean"] is None else np.asarray(entry["output_mean"], np.float32),
            None if entry["output_std"] is None else np.asarray(entry["output_std"], np.float32),
        )
        assert y.shape == (4, s.n_out) and np.all(np.isfinite(y))
        if s.name in ("melody", "harmony"):
            assert np.allclose(y.sum(axis=1), 1.0, atol=0.05)
        if s.name == "harmony":
            assert y[:, spec.N_CHORD_CLASSES :].max() < 0.01
        if s.name == "groove":
            assert y[:, :16].min() >= 0 and y[:, :16].max() <= 1
            assert np.abs(y[:, 16:]).max() <= 0.5 + 1e-6
        if s.name == "dynamics":
            assert y.min() >= 0 and y.max() <= 1


def test_runtime_runner_loads_trained_models_and_agrees(smoke: Path) -> None:
    """The stomp-box's runner marks all five trained and computes what tflite_eval computes."""
    from kelly_edge.models.runner import load_all

    loaded = load_all(smoke)
    manifest = json.loads((smoke / "manifest.json").read_text())["models"]
    for s in spec.MODELS:
        assert loaded[s.name].status == "trained", loaded[s.name].reason
        x = _spec_input(s, 7)
        y_runtime = np.array(loaded[s.name].call(x), copy=True)
        entry = manifest[s.name]
        it = TE.interpreter(str(smoke / s.filename))
        y_tools = TE.destandardise(
            TE.run_int8(it, x[None], np.asarray(entry["input_mean"], np.float32), np.asarray(entry["input_std"], np.float32)),
            None if entry["output_mean"] is None else np.asarray(entry["output_mean"], np.float32),
            None if entry["output_std"] is None else np.asarray(entry["output_std"], np.float32),
        )[0]
        assert np.allclose(y_runtime, y_tools, atol=1e-5), s.name


def test_models_load_without_tensorflow(smoke: Path) -> None:
    """A fresh interpreter process with TensorFlow made unimportable still loads all five."""
    code = (
        "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None\n"
        "from pathlib import Path\n"
        "from kelly_edge.models.runner import load_all\n"
        f"m = load_all(Path({str(smoke)!r}))\n"
        "bad = [n for n, v in m.items() if v.status != 'trained']\n"
        "assert not bad, bad\n"
        "assert 'tensorflow' not in [k for k, v in sys.modules.items() if v is not None]\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_evaluate_reproduces_the_manifest_metrics(smoke: Path) -> None:
    cache = smoke.parent / "cache"
    results = pipeline.evaluate(["harmony", "groove"], pipeline.Plan.smoke(), cache, smoke)
    manifest = json.loads((smoke / "manifest.json").read_text())["models"]
    for name in ("harmony", "groove"):
        assert results[name]["model"] == pytest.approx(manifest[name]["metrics"]["model"])
    text = pipeline.table(results)
    assert "harmony" in text and "fallback" in text


# --- bad input -----------------------------------------------------------------------------------


def _write_tune(path: Path, notes: list[int]) -> None:
    track = mido.MidiTrack()
    for n in notes:
        track.append(mido.Message("note_on", note=n, velocity=80, time=0))
        track.append(mido.Message("note_off", note=n, velocity=0, time=480))
    mf = mido.MidiFile(ticks_per_beat=480)
    mf.tracks.append(track)
    mf.save(str(path))


def test_nonexistent_dataset_path_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no_such_folder"
    with pytest.raises(DatasetError, match="does not exist"):
        pipeline.build(["melody"], pipeline.Plan.smoke(), tmp_path / "cache", corpus_dir=missing)
    rc = main(["build", "--smoke", "--models", "melody", "--corpus-dir", str(missing), "--data-cache", str(tmp_path / "c")])
    assert rc == 2
    assert "does not exist" in capsys.readouterr().err


def test_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not music")
    with pytest.raises(DatasetError, match="holds no"):
        pieces_from_folder(tmp_path / "empty", workers=1)


def test_corrupt_midi_is_skipped_and_counted(tmp_path: Path) -> None:
    folder = tmp_path / "midi"
    folder.mkdir()
    _write_tune(folder / "good.mid", [60, 62, 64, 65, 67, 65, 64, 62, 60])
    (folder / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage" + os.urandom(64))
    pieces, report = pieces_from_folder(folder, workers=1)
    assert len(pieces) == 1
    assert report.skipped == 1
    assert "broken.mid" in report.summary()


def test_only_corrupt_files_is_nothing_usable(tmp_path: Path) -> None:
    folder = tmp_path / "midi"
    folder.mkdir()
    (folder / "broken.mid").write_bytes(b"not a midi file at all")
    with pytest.raises(DatasetError, match="nothing usable"):
        pieces_from_folder(folder, workers=1)


def test_model_with_wrong_shape_is_refused_and_old_file_kept(smoke: Path, tmp_path: Path) -> None:
    out = tmp_path / "models"
    out.mkdir()
    good = (smoke / "harmony.tflite").read_bytes()
    (out / "harmony.tflite").write_bytes(good)
    melody_bytes = (smoke / "melody.tflite").read_bytes()  # (1, 64) -> (1, 128): not a harmony shape
    with pytest.raises(ModelError, match="disagrees with the spec"):
        convert.write_model(melody_bytes, "harmony", out)
    assert (out / "harmony.tflite").read_bytes() == good
    with pytest.raises(ModelError):
        convert.write_model(b"\x00" * 100, "harmony", out)  # not a flatbuffer at all
    assert (out / "harmony.tflite").read_bytes() == good


def test_interrupted_write_leaves_old_model_intact(smoke: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "models"
    out.mkdir()
    old = (smoke / "groove.tflite").read_bytes()
    (out / "groove.tflite").write_bytes(old)

    def crash(fd: int) -> None:  # the disk fills up / the process is killed mid-write
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OutputError):
        convert.write_model(old, "groove", out)
    monkeypatch.undo()
    assert (out / "groove.tflite").read_bytes() == old
    assert sorted(p.name for p in out.iterdir()) == ["groove.tflite"]  # no temporary left behind


def test_int8_follows_the_keras_float_model(smoke: Path) -> None:
    """The tflite_eval path (standardise, quantise, invoke, dequantise) tracks the float Keras net."""
    import keras

    from tools.train import data as data_mod
    from tools.train.nets import CUSTOM_OBJECTS

    cache = smoke.parent / "cache"
    manifest = json.loads((smoke / "manifest.json").read_text())["models"]
    for name in ("melody", "harmony", "groove", "dynamics"):  # bounded heads: meaningful even barely trained
        entry = manifest[name]
        ds = data_mod.load(name, cache)
        train_rows, _ = pipeline.split(ds, pipeline.Plan.smoke())
        x = ds.x[train_rows[:64]]  # inside the range the representative set calibrated
        mean, std = np.asarray(entry["input_mean"], np.float32), np.asarray(entry["input_std"], np.float32)
        model = keras.models.load_model(str(cache / f"{name}.keras"), custom_objects=CUSTOM_OBJECTS, compile=False)
        y_float = np.asarray(model.predict((x - mean) / np.maximum(std, 1e-6), verbose=0))
        y_int8 = TE.run_int8(TE.interpreter(str(smoke / entry["file"])), x, mean, std)
        assert TE.agreement(y_float, y_int8)["cosine_mean"] > 0.95, name
        assert np.abs(y_float - y_int8).max() < 0.1, name
