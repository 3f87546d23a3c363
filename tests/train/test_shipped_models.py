"""The shipped models in ``models_tflite/`` meet the issue's targets (needs no TensorFlow).

These read the committed files and the metrics the full run wrote into the manifest, and load the
files with the runtime runner. They fail when someone ships a model that regressed or got too big.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from kelly_edge.models import spec

MODELS = Path(__file__).resolve().parents[2] / "models_tflite"



@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((MODELS / "manifest.json").read_text())["models"]


def test_all_five_present_hashed_and_small(manifest: dict) -> None:
    assert set(manifest) == set(spec.MODEL_NAMES)
    total = 0
    for name, entry in manifest.items():
        data = (MODELS / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
        total += len(data)
    assert total <= 1.5 * 1024 * 1024


def test_int8_agrees_with_float(manifest: dict) -> None:
    for name, entry in manifest.items():
        agree = entry["metrics"]["int8_vs_float"]
        assert agree["cosine_mean"] >= 0.99, name
        if name in ("melody", "harmony"):
            assert agree["argmax_agreement"] >= 0.95, name


def test_each_model_beats_its_fallback_and_the_prior(manifest: dict) -> None:
    for name, entry in manifest.items():
        m = entry["metrics"]
        key, higher = m["primary"]["metric"], m["primary"]["higher_is_better"]
        for other in ("fallback", "baseline"):
            if higher:
                assert m["model"][key] > m[other][key], (name, other)
            else:
                assert m["model"][key] < m[other][key], (name, other)
        assert m["held_out_rows"] > 0


def test_runtime_loads_them_as_trained() -> None:
    from kelly_edge.models.runner import load_all

    loaded = load_all(MODELS)
    for s in spec.MODELS:
        assert loaded[s.name].status == "trained", loaded[s.name].reason
        y = loaded[s.name].call(np.zeros(s.n_in, np.float32))
        assert y.shape == (s.n_out,) and np.all(np.isfinite(y))


@pytest.mark.parametrize("name", spec.MODEL_NAMES)
def test_trained_with_the_feature_and_encoder_code_in_the_tree(manifest: dict, name: str) -> None:
    """The manifest's fingerprint of the code that lays out the model's inputs matches the tree:
    changing the features or an encoder without retraining fails here (tools/train/fingerprint.py)."""
    from tools.train.fingerprint import fingerprint

    recorded = manifest[name].get("fingerprint")
    assert recorded == fingerprint(name), (
        f"{name}: its feature/encoder code changed since it was trained (manifest {str(recorded)[:12]}, "
        f"tree {fingerprint(name)[:12]}); retrain it: python -m tools.train all --models {name}"
    )


def test_fingerprint_moves_with_the_feature_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fingerprint covers the chroma code for the audio models, not for the symbolic ones, and
    ignores comments and docstrings (rewording them calls for no retraining)."""
    from tools.train import fingerprint as F

    before = {m: F.fingerprint(m) for m in spec.MODEL_NAMES}
    real = F._module_source

    def edited(suffix: str) -> dict[str, str]:
        monkeypatch.setattr(F, "_module_source", lambda mod: real(mod) + (suffix if mod.endswith("chroma") else ""))
        return {m: F.fingerprint(m) for m in spec.MODEL_NAMES}

    assert edited("# a comment\n") == before
    after = edited("\nBATCH_TWICE = 2 * BATCH\n")
    assert {m for m in spec.MODEL_NAMES if after[m] != before[m]} == set(F.AUDIO_MODELS)


def test_dynamics_was_trained_on_the_shipped_emotion_model(manifest: dict) -> None:
    """The dynamics model's VADI inputs came from the emotion model the box ships (the engine's
    followed emotion, tools/train/build_audio.py): retraining emotion alone leaves dynamics trained
    on another model's output, and fails here (python -m tools.train all --models emotion,dynamics)."""
    assert manifest["dynamics"].get("emotion_sha256") == manifest["emotion"]["sha256"]


def test_held_out_by_tune(manifest: dict) -> None:
    """The models trained on corpus pieces hold out whole tunes, not files (issue 13 item 8)."""
    for name in ("emotion", "melody", "dynamics", "groove"):
        assert manifest[name]["split"].startswith("by tune"), name


def test_no_tune_straddles_the_split() -> None:
    """The grouping the split uses puts two files of one chorale tune into one group, and the
    seeded split keeps a group wholly on one side."""
    from tools.train.build_symbolic import tune_ids
    from tools.train.data import split_by_piece
    from tools.train.symbolic import Piece, Voice

    def piece(name: str, pitches: list[int]) -> Piece:
        n = len(pitches)
        on = np.arange(n, dtype=np.float64)
        v = Voice(on, np.ones(n), np.array(pitches, np.int16), (on // 4).astype(np.int32), on % 4)
        return Piece(name, [v], 4.0, np.arange(0, n, 4, dtype=np.float64), 0, True, float(n))

    tune = list(range(60, 78))
    pieces = [piece("bwv1.1", tune), piece("bwv1.1-sc", [p + 2 for p in tune]), piece("other", tune[::-1])]
    ids = tune_ids(pieces)
    assert ids[0] == ids[1] != ids[2]
    groups = np.repeat(np.array(ids), 50)
    for seed in range(20):
        tr, te = split_by_piece(groups, test_frac=0.34, seed=seed)
        assert not set(groups[tr].tolist()) & set(groups[te].tolist())
