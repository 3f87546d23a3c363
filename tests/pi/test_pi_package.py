"""The package a Pi owner installs carries the trained models, in every kind of install.

A wheel and an sdist built from the tree hold the five .tflite files and the manifest (the same
bytes as models_tflite/); a fresh venv outside the repo gets the wheel (not editable), and the
demo, run from another folder, reports all five models "trained". The same venv then takes the
sdist and an editable install of the tree in turn, and each finds the models too.
"""

from __future__ import annotations

import json
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from kelly_edge.models import spec
from tests.pi.conftest import REPO, clean_copy, demo_cmd, run

pytestmark = [pytest.mark.pi, pytest.mark.slow]

MODEL_FILES = sorted([s.filename for s in spec.MODELS] + ["manifest.json"])


def shipped_bytes() -> dict[str, bytes]:
    return {name: (REPO / "models_tflite" / name).read_bytes() for name in MODEL_FILES}


def demo_in(venv: Path, folder: Path) -> dict[str, object]:
    """Run the venv's kelly-edge on the demo from ``folder``; the report, checked for fallbacks."""
    folder.mkdir(exist_ok=True)
    done = run([str(venv / "bin" / "kelly-edge"), *demo_cmd(folder / "demo.mid", folder / "report.json")], cwd=folder)
    assert "heuristic fallback" not in done.stderr, done.stderr
    return json.loads((folder / "report.json").read_text())


def installed_from(venv: Path, folder: Path) -> Path:
    done = run([str(venv / "bin" / "python"), "-c", "import kelly_edge; print(kelly_edge.__file__)"], cwd=folder)
    return Path(done.stdout.strip()).parent


def test_the_wheel_holds_the_models_byte_for_byte(kelly_wheel: Path) -> None:
    with zipfile.ZipFile(kelly_wheel) as zf:
        inside = {Path(n).name: zf.read(n) for n in zf.namelist() if n.startswith("kelly_edge/models_tflite/")}
    assert inside == shipped_bytes()


def test_a_fresh_venv_outside_the_repo_plays_the_demo_on_five_trained_models(
        tmp_path: Path, kelly_wheel: Path, x86_demo: bytes, pi_timings: dict[str, float]) -> None:
    venv = tmp_path / "venv"
    started = time.perf_counter()
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(kelly_wheel)])
    pi_timings["fresh venv + wheel with its dependencies (s)"] = time.perf_counter() - started
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    package = installed_from(venv, elsewhere)
    assert package.is_relative_to(venv) and not (package / "models_tflite").is_symlink()
    report = demo_in(venv, elsewhere)
    assert report["models"] == dict.fromkeys(spec.MODEL_NAMES, "trained")
    assert all(Path(d["why"]).is_relative_to(package) for d in report["model_detail"].values())
    assert (elsewhere / "demo.mid").read_bytes() == x86_demo  # the installed package plays as the tree does

    # the sdist: it carries the files, and a wheel built from it (pip install) does too
    src = clean_copy(tmp_path / "src")
    run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", "setuptools>=77"])
    run([str(venv / "bin" / "python"), "-c", "from setuptools import build_meta as b; b.build_sdist('dist')"], cwd=src)
    (sdist,) = (src / "dist").glob("kelly_edge-*.tar.gz")
    with tarfile.open(sdist) as tf:
        inside = {Path(m.name).name: tf.extractfile(m).read() for m in tf.getmembers()  # type: ignore[union-attr]
                  if m.isfile() and "/kelly_edge/models_tflite/" in m.name}
    assert inside == shipped_bytes()
    run([str(venv / "bin" / "pip"), "install", "--quiet", "--no-deps", "--force-reinstall", str(sdist)])
    report = demo_in(venv, tmp_path / "after-sdist")
    assert report["models"] == dict.fromkeys(spec.MODEL_NAMES, "trained")

    # editable: the tree's symlink serves the top-level models_tflite/
    run([str(venv / "bin" / "pip"), "install", "--quiet", "--no-deps", "-e", str(src)])
    assert installed_from(venv, elsewhere) == src / "kelly_edge"
    report = demo_in(venv, tmp_path / "after-editable")
    assert report["models"] == dict.fromkeys(spec.MODEL_NAMES, "trained")
    assert all(Path(d["why"]).parent == src / "models_tflite" for d in report["model_detail"].values())
