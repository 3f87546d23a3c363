"""``kelly-edge bench``: a short real run gives every key with sane relations (no speed thresholds)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from kelly_edge.bench import bench_main
from kelly_edge.bench.audio import DEMO, load_looped
from kelly_edge.bench.numpy_nets import NumpyNet, agreement
from kelly_edge.bench.stats import summary_us
from kelly_edge.errors import KellyEdgeError
from kelly_edge.models import spec

MODELS = Path(__file__).resolve().parents[2] / "models_tflite"


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    text = io.StringIO()
    code = bench_main(3.0, str(out), None, long_s=4.0, starts=2, stdout=text)
    assert code == 0
    return json.loads(out.read_text()), text.getvalue()


def test_json_has_every_key_the_issue_names(short_run: tuple[dict, str]) -> None:
    r, _ = short_run
    for key in ("hop_us", "stages_us", "floor_us", "librosa_mel_us", "numpy_models_us", "realtime_factor", "rss_mb", "startup_s"):
        assert key in r, key
    assert set(r["hop_us"]) >= {"p50", "p99", "p999", "max"}
    assert set(r["stages_us"]) >= {"mel", "emotion", "melody", "harmony", "dynamics", "groove", "generator"}
    for stage in r["stages_us"].values():
        assert set(stage) >= {"p50", "p99"}
    assert "p50" in r["floor_us"] and "p50" in r["numpy_models_us"]
    assert r["librosa_mel_us"] is None or "p50" in r["librosa_mel_us"]


def test_relations_are_sane(short_run: tuple[dict, str]) -> None:
    r, _ = short_run
    h = r["hop_us"]
    assert 0 < h["p50"] <= h["p99"] <= h["p999"] <= h["max"] and 0 < h["mean"] <= h["max"]
    for name, stage in r["stages_us"].items():
        assert 0 <= stage["p50"] <= stage["p99"], name
    # 3 s of 22.05 kHz audio in ~10 ms hops; every model ran at least once in three seconds
    assert r["hops"] == -(-int(round(3.0 * r["audio"]["sample_rate"])) // round(r["audio"]["sample_rate"] / 100))
    assert all(r["model_runs"][s.name] >= 1 for s in spec.MODELS)
    assert r["stages_us"]["mel"]["p50"] > 0 and r["stages_us"]["emotion"]["p50"] > 0
    # the floor is part of what a hop does whenever all five models run; the mel stage is part of the floor
    assert 0 < r["floor_us"]["p50"]
    assert r["floor_parts_us"]["mel"] > 0 and r["floor_parts_us"]["invokes"] > 0
    for ratio in ("overhead_ratio", "numpy_ratio"):
        assert r[ratio] > 0, ratio
    if r["librosa_mel_us"] is not None:
        assert r["librosa_ratio"] > 0
        assert r["librosa_mel_max_abs_db_diff"] < 0.01  # the comparison is of equal work
    assert r["numpy_agreement_min_cosine"] > 0.99
    assert r["realtime_factor"] > 0 and r["realtime_factor_process"] > 0
    rss = r["rss_mb"]
    assert 0 < rss["startup"] <= rss["peak"] and 0 < rss["end"] <= rss["peak"]
    assert rss["audio_s"] == pytest.approx(4.0, abs=0.05)
    assert 0 < r["startup_s"] and len(r["startup_runs_s"]) == 2
    assert r["heavy_modules_at_run_time"] == []  # no TensorFlow or librosa on the run path
    assert set(r["targets"]) and all(isinstance(t["met"], bool) for t in r["targets"].values())


def test_table_names_every_target(short_run: tuple[dict, str]) -> None:
    r, text = short_run
    for name in r["targets"]:
        assert name in text
    assert "whole hop" in text and "floor" in text


def test_summary_is_ordered_and_in_microseconds() -> None:
    ns = np.random.default_rng(1).lognormal(11.0, 1.0, size=5000)
    s = summary_us(ns)
    assert s["p50"] <= s["p99"] <= s["p999"] <= s["max"]
    assert s["max"] == pytest.approx(ns.max() / 1000.0, rel=1e-3)
    assert summary_us([]) == {"p50": 0.0, "p99": 0.0, "p999": 0.0, "max": 0.0}


def test_looped_audio_is_the_demo_repeated() -> None:
    x, sr, desc = load_looped(45.0)
    assert x.size == int(round(45.0 * sr)) and x.dtype == np.float32
    one, _, _ = load_looped(20.0)
    assert np.array_equal(x[: one.size], one)
    n = one.size
    assert np.array_equal(x[n : 2 * n], x[:n])  # 45 s > two loops of the 20 s demo
    assert "demo.wav" in desc and DEMO.is_file()


@pytest.mark.parametrize("s", spec.MODELS, ids=lambda s: s.name)
def test_numpy_nets_are_the_shipped_networks(s: spec.ModelSpec) -> None:
    path = MODELS / s.filename
    net = NumpyNet(path)
    assert (net.n_in, net.n_out) == (s.n_in, s.n_out)
    z = np.random.default_rng(2).normal(size=(12, s.n_in)).astype(np.float32)
    assert agreement(net, path, z) > 0.99


def test_missing_wav_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(KellyEdgeError):
        bench_main(1.0, None, str(tmp_path / "nope.wav"), long_s=1.0, starts=1, stdout=io.StringIO())


def test_unwritable_json_fails_before_the_run(tmp_path: Path) -> None:
    with pytest.raises(KellyEdgeError):
        bench_main(1.0, str(tmp_path / "missing-dir" / "x.json"), None, long_s=1.0, starts=1, stdout=io.StringIO())
