"""Whole-process figures, each from a fresh ``kelly-edge run --input`` subprocess (the probe).

- cold start: from just before the spawn to the end of the first processed hop (interpreter
  start, imports, config, five model loads, the first hop); the median of ``starts`` runs on a
  short file (the file cache is warm after the first: this is a re-start, not a first boot);
- RSS after start-up (at the first hop) and at the end of ``long_s`` seconds of audio (default
  600 s: ten minutes), and the peak (VmHWM);
- the real-time factor: the run report's ``realtime_factor`` (seconds of audio per second of the
  hop loop) of the long run, and the whole process's (including start-up and the MIDI write);
- the heavy modules imported at run time (must be none: no TensorFlow, librosa).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from kelly_edge.bench.audio import write_wav16


def _probe(wav: Path, tmp: Path, tag: str) -> dict[str, Any]:
    marks, mid, rep = tmp / f"{tag}.marks.json", tmp / f"{tag}.mid", tmp / f"{tag}.report.json"
    cmd = [sys.executable, "-m", "kelly_edge.bench.probe", str(marks), "--", "-q", "run",
           "--input", str(wav), "--midi-out", str(mid), "--report", str(rep)]
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    wall = time.time() - t0
    if proc.returncode != 0 or not marks.exists():
        raise RuntimeError(f"bench probe failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    m = json.loads(marks.read_text())
    report = json.loads(rep.read_text())
    return {"startup_s": m["first_hop_wall"] - t0, "wall_s": wall, "marks": m, "report": report}


def process_figures(x: np.ndarray, sample_rate: int, *, long_s: float = 600.0, starts: int = 3) -> dict[str, Any]:
    """``{realtime_factor, rss_mb {startup, end, peak, audio_s}, startup_s, ...}`` from subprocesses."""
    with tempfile.TemporaryDirectory(prefix="kelly-bench-") as d:
        tmp = Path(d)
        long_wav, short_wav = tmp / "long.wav", tmp / "short.wav"
        n_long = int(round(long_s * sample_rate))
        write_wav16(long_wav, np.tile(x, -(-n_long // x.size))[:n_long], sample_rate)
        write_wav16(short_wav, x[: min(x.size, 2 * sample_rate)], sample_rate)
        long_run = _probe(long_wav, tmp, "long")
        short = [_probe(short_wav, tmp, f"short{i}") for i in range(max(0, starts - 1))]
    m = long_run["marks"]
    startups = [long_run["startup_s"]] + [r["startup_s"] for r in short]
    heavy = sorted(set(m["heavy_modules"]).union(*(r["marks"]["heavy_modules"] for r in short)))
    return {
        "realtime_factor": long_run["report"]["realtime_factor"],
        "realtime_factor_process": round(m["audio_s"] / long_run["wall_s"], 1),
        "rss_mb": {
            "startup": round(m["rss_start_kb"] / 1024.0, 1),
            "end": round(m["rss_end_kb"] / 1024.0, 1),
            "peak": round(m["rss_peak_kb"] / 1024.0, 1),
            "audio_s": round(m["audio_s"], 1),
        },
        "startup_s": round(statistics.median(startups), 3),
        "startup_runs_s": [round(s, 3) for s in startups],
        "heavy_modules_at_run_time": heavy,
        "long_run_deadline_misses": long_run["report"]["deadline_misses"],
        "long_run_hop_ms": long_run["report"]["hop_ms"],
    }
