"""Run the CLI the way a user does and judge the outcome: a clean result or clean error lines,
never a traceback, an internal error, a hang or a half-written output file."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import mido

from kelly_edge import cli

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "kelly_edge" / "data" / "demo.wav"
NATIVE_NOISE = "INFO: Created TensorFlow Lite"  # printed by the TFLite runtime itself when a model loads


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


class Hang(Exception):
    """An in-process call took longer than its alarm."""


@contextlib.contextmanager
def alarm(seconds: int) -> Iterator[None]:
    """Turn a hang of the main thread into a :class:`Hang` after ``seconds``."""

    def fire(signum: int, frame: object) -> None:
        raise Hang(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_in_process(argv: Sequence[str], timeout_s: int = 30) -> Outcome:
    """``kelly_edge.cli.main(argv)`` with stdout/stderr captured (logging included)."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers = []  # so the CLI's basicConfig logs to the captured stderr
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), alarm(timeout_s):
            try:
                code = cli.main(list(argv))
            except SystemExit as exit_:  # argparse usage errors
                code = int(exit_.code or 0)
    finally:
        for h in root.handlers:
            h.close()
        root.handlers = saved_handlers
        root.setLevel(saved_level)
    return Outcome(code, out.getvalue(), err.getvalue())


def run_subprocess(argv: Sequence[str], timeout_s: float = 60.0) -> Outcome:
    """``python -m kelly_edge argv`` in a child process (a hang fails the test via TimeoutExpired)."""
    proc = subprocess.run([sys.executable, "-m", "kelly_edge", *argv], capture_output=True, text=True,
                          timeout=timeout_s, cwd=REPO)
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def assert_clean(outcome: Outcome, outputs: Sequence[Path] = (), *, what: str = "", config_path: str | None = None) -> None:
    """0 with complete outputs, or 2 (1 for check-config) with only clean error lines and no outputs."""
    where = f"{what}: code {outcome.code}, stderr {outcome.stderr[-600:]!r}"
    assert "Traceback" not in outcome.stderr and "internal error" not in outcome.stderr, where
    assert outcome.code in (0, 1, 2), where
    if outcome.code == 0:
        for path in outputs:
            assert_complete(path)
        return
    lines = [line for line in outcome.stderr.splitlines() if line.strip() and not line.startswith(NATIVE_NOISE)]
    assert lines, where
    if outcome.code == 2:  # run: "kelly-edge: error: <problem and fix>" (warnings logged before it may precede)
        assert all(line.startswith("kelly-edge: ") for line in lines), where
        assert any(line.startswith("kelly-edge: error: ") for line in lines), where
    else:  # check-config: one "<file>[:line]: <problem>" per problem
        assert all(line.startswith(config_path or "") for line in lines), where
    for path in outputs:
        assert not path.exists(), f"{what}: {path} was written although the run failed"
    leftovers = [p.name for path in outputs for p in path.parent.glob(f".{path.name}.*")]
    assert leftovers == [], f"{what}: temporary files left behind: {leftovers}"


def assert_complete(path: Path) -> None:
    """A .mid reads back with mido with every note released; a .json parses as a run report."""
    assert path.exists(), f"{path} missing after a clean run"
    if path.suffix == ".mid":
        sounding: set[tuple[int, int]] = set()
        for msg in mido.MidiFile(str(path)):
            if msg.type == "note_on" and msg.velocity > 0:
                assert (msg.channel, msg.note) not in sounding
                sounding.add((msg.channel, msg.note))
            elif msg.type in ("note_on", "note_off"):
                sounding.discard((msg.channel, msg.note))
        assert sounding == set(), f"{path}: notes never released: {sorted(sounding)}"
    elif path.suffix == ".json":
        report = json.loads(path.read_text())
        assert isinstance(report, dict) and "hops" in report and "notes" in report
