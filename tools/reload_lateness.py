"""MIDI lateness while a big config is reloaded: does a SIGHUP make the playing box late?

Why: pure-Python YAML holds the GIL for seconds per megabyte, and the MIDI sender and the
processing thread need it. The box parses a config over 32 kB in a child process (see
:func:`kelly_edge.config.loader.parse_config_isolated`); this measures what is left. It plays the
demo through the live loop (``run --input demo.wav --realtime --trace``), replaces the config by
one with ``--presets`` presets (~60 bytes each), sends SIGHUP, waits for the reload, stops the box
and prints the lateness of every MIDI message sent (from the report's trace) and the hop times.

    .venv/bin/python tools/reload_lateness.py --presets 15000
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "kelly_edge" / "data" / "demo.wav"


def measure(presets: int, settle_s: float = 2.0, timeout_s: float = 120.0) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="kelly-reload-") as folder:
        tmp = Path(folder)
        config, report = tmp / "box.yaml", tmp / "report.json"
        config.write_text("tempo: {bpm: 100}\n")
        proc = subprocess.Popen(
            [sys.executable, "-m", "kelly_edge", "run", "--config", str(config), "--input", str(DEMO), "--realtime",
             "--midi-out", str(tmp / "out.mid"), "--status-socket", str(tmp / "s.sock"), "--trace",
             "--report", str(report), "--duration", str(timeout_s)],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        threading.Thread(target=lambda: lines.extend(proc.stderr or []), daemon=True).start()

        def wait_for(text: str) -> None:
            deadline = time.monotonic() + timeout_s
            while not any(text in line for line in lines):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the box never said {text!r}: {lines[-5:]}")
                time.sleep(0.05)

        wait_for("live: listening")
        time.sleep(settle_s)
        body = "".join(f"  p{i}:\n    tempo: {{bpm: {60 + i % 100}}}\n    emotion: {{intent: joy}}\n"
                       for i in range(presets))
        config.write_text("tempo: {bpm: 100}\npresets:\n" + body)
        sent = time.monotonic()
        proc.send_signal(signal.SIGHUP)
        wait_for("reloaded")
        reload_s = time.monotonic() - sent
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        data = json.loads(report.read_text())
    late_ms = np.array([(s - d) * 1000.0 for d, s, _ in data["live"]["trace"]])
    return {"config_bytes": config_size(presets), "reload_s": round(reload_s, 2), "messages": int(late_ms.size),
            "late_p50_ms": round(float(np.percentile(late_ms, 50)), 2),
            "late_p99_ms": round(float(np.percentile(late_ms, 99)), 2), "late_max_ms": round(float(late_ms.max()), 2),
            "hop_p99_ms": data["hop_ms"]["p99"], "hop_max_ms": data["hop_ms"]["max"]}


def config_size(presets: int) -> int:
    return len("tempo: {bpm: 100}\npresets:\n") + sum(
        len(f"  p{i}:\n    tempo: {{bpm: {60 + i % 100}}}\n    emotion: {{intent: joy}}\n") for i in range(presets))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", type=int, default=15000, help="presets in the reloaded config (15000: ~0.9 MB)")
    args = parser.parse_args()
    print(json.dumps(measure(args.presets)))


if __name__ == "__main__":
    main()
