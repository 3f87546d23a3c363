"""``kelly-edge bench [--seconds N] [--json OUT.json] [--wav FILE.wav]``: every figure in one run.

Order: the hop passes first (the machine is quietest before the subprocesses start), then the
floor and the alternatives, then the process figures (real-time factor, RSS, cold start) from
``kelly-edge run --input`` subprocesses. Prints a table; ``--json`` writes every figure (the keys
the issue names plus detail) atomically. Exit 0, or 2 with one line on stderr for bad input.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from kelly_edge.errors import AudioInputError, KellyEdgeError

DEFAULT_SECONDS = 30.0
LONG_S = 600.0

TARGETS: dict[str, tuple[str, float, str]] = {
    # name: (how to read it from the result, limit, "<=" or ">=")
    "hop p50 <= 150 us": ("hop_us.p50", 150.0, "<="),
    "hop p99.9 <= 500 us": ("hop_us.p999", 500.0, "<="),
    "hop p50 <= 2x floor": ("overhead_ratio", 2.0, "<="),
    "real-time factor >= 60": ("realtime_factor", 60.0, ">="),
    "RSS <= 80 MB": ("rss_mb.end", 80.0, "<="),
    "start-up <= 1.5 s": ("startup_s", 1.5, "<="),
}


def _get(d: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        if not isinstance(d, dict) or d.get(part) is None:
            return None
        d = d[part]
    return d


def _machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    return {"cpu": model, "cores": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
            "numpy": np.__version__, "load_avg_at_start": load}


def run_bench(seconds: float = DEFAULT_SECONDS, wav: str | None = None, *, long_s: float = LONG_S,
              starts: int = 3, progress: TextIO | None = None) -> dict[str, Any]:
    """Every measurement as one dict (see the module docstring and README "Performance")."""
    from kelly_edge.bench import alternatives, floor, hops, process
    from kelly_edge.bench.audio import load_looped
    from kelly_edge.config.schema import default_config, models_dir

    def say(msg: str) -> None:
        if progress is not None:
            print(f"bench: {msg}", file=progress, flush=True)

    if not seconds > 0:
        raise KellyEdgeError(f"--seconds must be positive, got {seconds}")
    try:
        x, sr, desc = load_looped(seconds, wav)
    except (OSError, ValueError) as err:
        raise AudioInputError(f"bench audio: {err}") from err
    config = default_config()
    mdir = models_dir(config)
    result: dict[str, Any] = {"machine": _machine(), "audio": {"source": desc, "seconds": round(x.size / sr, 2), "sample_rate": sr}}
    t0 = time.perf_counter()
    say(f"whole hop over {desc}")
    result.update(hops.whole_hop(x, sr, config))
    result["budget_us"] = hops.BUDGET_NS / 1000.0
    say("stages (instrumented pass)")
    result.update(hops.stages(x, sr, config))
    say("floor: mel + five invokes")
    result.update(floor.floor(x, sr, mdir) if mdir is not None else {"floor_us": None})
    tr, note = floor.tflite_runtime(x, sr, mdir) if mdir is not None else (None, "no models folder")
    result["tflite_runtime_us"], result["tflite_runtime_note"] = tr, note
    say("librosa mel per frame")
    lib, diff, note = alternatives.librosa_mel(x, sr)
    result["librosa_mel_us"], result["librosa_mel_max_abs_db_diff"], result["librosa_note"] = lib, diff, note
    say("numpy float32 nets")
    result.update(alternatives.numpy_models(mdir) if mdir is not None else {"numpy_models_us": None})
    say(f"kelly-edge run subprocesses ({long_s:g} s of audio, {starts} starts)")
    result.update(process.process_figures(x, sr, long_s=long_s, starts=starts))
    result["bench_wall_s"] = round(time.perf_counter() - t0, 1)
    _ratios(result)
    result["targets"] = {
        name: {"value": _get(result, path), "limit": limit,
               "met": None if _get(result, path) is None else
               (_get(result, path) <= limit if op == "<=" else _get(result, path) >= limit)}
        for name, (path, limit, op) in TARGETS.items()
    }
    return result


def _ratios(r: dict[str, Any]) -> None:
    """Ratios to ours (> 1: the alternative is slower) and the overhead over the floor."""
    hop = r["hop_us"]["p50"]
    mel = r["stages_us"]["mel"]["p50"]
    floor_p50 = _get(r, "floor_us.p50")
    r["overhead_ratio"] = round(hop / floor_p50, 2) if floor_p50 else None
    lib = _get(r, "librosa_mel_us.p50")
    r["librosa_ratio"] = round(lib / mel, 1) if lib and mel else None
    num, ours = _get(r, "numpy_models_us.p50"), _get(r, "our_models_us.p50")
    r["numpy_ratio"] = round(num / ours, 2) if num and ours else None
    tr, inv = _get(r, "tflite_runtime_us.p50"), _get(r, "floor_parts_us.invokes")
    r["tflite_runtime_ratio"] = round(tr / inv, 2) if tr and inv else None


def format_table(r: dict[str, Any]) -> str:
    """A plain-text summary of a :func:`run_bench` result."""
    h, s = r["hop_us"], r["stages_us"]
    lines = [
        f"machine: {r['machine']['cpu']}, {r['machine']['cores']} cores; audio: {r['audio']['source']}",
        f"whole hop  p50 {h['p50']:.1f}  p99 {h['p99']:.1f}  p99.9 {h['p999']:.1f}  max {h['max']:.1f}  mean {h['mean']:.1f} us; "
        f"{r['deadline_misses']} of {r['hops']} hops over the 10 ms budget",
        "stage (p50 / p99 us): " + ", ".join(f"{k} {v['p50']:.1f}/{v['p99']:.1f}" for k, v in s.items()),
        f"floor (mel + 5 invokes) p50 {_get(r, 'floor_us.p50')} us; hop/floor {r['overhead_ratio']}",
        f"librosa mel per frame p50 {_get(r, 'librosa_mel_us.p50')} us ({r['librosa_ratio']}x ours)  [{r['librosa_note']}]",
        f"numpy float32 nets p50 {_get(r, 'numpy_models_us.p50')} us vs ours {_get(r, 'our_models_us.p50')} us "
        f"({r['numpy_ratio']}x)",
        f"tflite-runtime: {_get(r, 'tflite_runtime_us.p50') or r['tflite_runtime_note']}",
        f"real-time factor {r['realtime_factor']} (whole process {r['realtime_factor_process']}); "
        f"RSS {r['rss_mb']['startup']} MB at start, {r['rss_mb']['end']} MB after {r['rss_mb']['audio_s']:g} s of audio; "
        f"start-up to first hop {r['startup_s']} s; heavy modules at run time: {r['heavy_modules_at_run_time'] or 'none'}",
    ]
    lines += [f"  [{'met' if t['met'] else 'MISSED'}] {name}: {t['value']}" for name, t in r["targets"].items()]
    return "\n".join(lines)


def bench_main(seconds: float = DEFAULT_SECONDS, json_out: str | None = None, wav: str | None = None, *,
               long_s: float = LONG_S, starts: int = 3, stdout: TextIO | None = None) -> int:
    """The ``kelly-edge bench`` command: run, print the table, write ``json_out``; exit code.

    ``long_s`` (seconds of audio for the RSS run) and ``starts`` are for tests; the command
    uses the defaults (ten minutes, three cold starts).
    """
    from kelly_edge.fileio import check_writable, write_atomic

    out = stdout if stdout is not None else sys.stdout
    if json_out is not None:
        check_writable(json_out)
    result = run_bench(seconds, wav, long_s=long_s, starts=starts, progress=sys.stderr)
    result["command"] = "kelly-edge bench --seconds {:g}{}{}".format(
        seconds, f" --json {json_out}" if json_out else "", f" --wav {wav}" if wav else "")
    print(format_table(result), file=out)
    if json_out is not None:
        write_atomic(json_out, (json.dumps(result, indent=2) + "\n").encode())
    return 0
