"""The box as a child process through the real CLI (``python -m kelly_edge``), so signals, exit
codes and stderr are the real ones; its stderr lines are collected by a thread as they come."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class Box:
    """``kelly-edge <command> [--config CONFIG] *args [--report R] [--duration S] [--trace]``."""

    def __init__(self, config: Path | None, *, report: Path | None = None, duration: float | None = None,
                 extra_env: dict[str, str] | None = None, trace: bool = False, command: str = "run",
                 args: tuple[str, ...] = ()) -> None:
        cmd = [sys.executable, "-m", "kelly_edge", command]
        if config is not None:
            cmd += ["--config", str(config)]
        cmd += list(args)
        if report is not None:
            cmd += ["--report", str(report)]
        if duration is not None:
            cmd += ["--duration", str(duration)]
        if trace:
            cmd.append("--trace")
        env = {**os.environ, **(extra_env or {})}
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.stdout = ""
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines)

    def terminate(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = 15.0) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the box did not stop in {timeout} s; stderr: {self.lines[-20:]}") from None
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.stdout = self.proc.stdout.read()
        return code
