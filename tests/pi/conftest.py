"""What a Pi owner installs: the package built from this tree, and the times it took.

``kelly_wheel`` (session scope) builds the wheel once from a clean copy of the tree (no build/ or
egg-info of a developer's ever reach it); ``x86_demo`` is the demo's .mid from this interpreter,
the reference the other runs must equal byte for byte. ``pi_timings`` collects the measured
seconds; they are printed at the end of the run (``pytest -m pi``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "kelly_edge" / "data" / "demo.wav"
_IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", "out",
                                 ".pytest_cache", ".hypothesis")


def _ignore(folder: str, names: list[str]) -> set[str]:
    """What a clone would not have: build leftovers, and sockets/pipes (lgpio leaves a FIFO in
    the folder it was imported from)."""
    special = {n for n in names if not (os.path.isfile(os.path.join(folder, n)) or os.path.isdir(os.path.join(folder, n))
                                        or os.path.islink(os.path.join(folder, n)))}
    return set(_IGNORE(folder, names)) | special

_TIMINGS: dict[str, float] = {}


def clean_copy(dest: Path) -> Path:
    """The tree as a fresh clone has it (symlinks kept as links)."""
    shutil.copytree(REPO, dest, symlinks=True, ignore=_ignore)
    return dest


def run(cmd: list[str], timeout: float = 600, **kw: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    assert done.returncode == 0, f"{cmd[:4]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


def demo_cmd(out: Path, report: Path | None = None) -> list[str]:
    """``kelly-edge`` arguments of the demo run with the default config (no config file)."""
    args = ["run", "--input", str(DEMO), "--midi-out", str(out)]
    return args + (["--report", str(report)] if report is not None else [])


@pytest.fixture(scope="session")
def pi_timings() -> dict[str, float]:
    return _TIMINGS


@pytest.fixture(scope="session")
def kelly_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a clean copy of this tree (pip's isolated build: setuptools from PyPI)."""
    work = tmp_path_factory.mktemp("wheel")
    src = clean_copy(work / "src")
    started = time.perf_counter()
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--disable-pip-version-check",
         "--wheel-dir", str(work / "dist"), str(src)])
    _TIMINGS["build the wheel (s)"] = time.perf_counter() - started
    (wheel,) = (work / "dist").glob("kelly_edge-*.whl")
    return wheel


@pytest.fixture(scope="session")
def x86_demo(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The demo's .mid from the source tree on this machine, the reference for the others."""
    out = tmp_path_factory.mktemp("x86") / "demo.mid"
    run([sys.executable, "-m", "kelly_edge", *demo_cmd(out)], cwd=REPO)
    return out.read_bytes()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _TIMINGS:
        return
    terminalreporter.section("pi: measured times")
    for key, seconds in _TIMINGS.items():
        terminalreporter.write_line(f"{key}: {seconds:.1f}")
