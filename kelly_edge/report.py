"""The run report: what a run heard, played and cost, as JSON (written atomically)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kelly_edge.engine.engine import Engine
from kelly_edge.engine.timing import HopTimes
from kelly_edge.fileio import write_atomic


def percentiles_ms(times: HopTimes) -> dict[str, float]:
    """p50/p99/p99.9/max of every hop's processing time, in milliseconds."""
    ms = {name: times.percentile(q) * 1000.0 for name, q in (("p50", 50), ("p99", 99), ("p999", 99.9))}
    ms["max"] = times.max_s * 1000.0
    return {k: round(v, 4) for k, v in ms.items()}


def build_report(engine: Engine, *, source: dict[str, Any], wall_s: float) -> dict[str, Any]:
    """The report dict: the issue's required keys plus per-model detail and the real-time factor."""
    stats = engine.stats
    key = stats.keys.most_common(1)[0][0] if stats.keys else "unknown"
    sched = engine.scheduler
    audio_s = engine.time_s
    return {
        "source": source,
        "audio_s": round(audio_s, 3),
        "hops": sched.hops,
        "deadline_misses": sched.deadline_misses,
        "budget_ms": round(sched.budget_s * 1000.0, 3),
        "hop_ms": percentiles_ms(stats.hop_times),
        "realtime_factor": round(audio_s / wall_s, 1) if wall_s > 0 else None,
        "notes": engine.generator.notes_started,
        "key": key,
        "tempo_bpm": engine.grid.bpm,
        "voices": {name: getattr(engine.config.generator, name).channel for name in ("melody", "chord", "bass")},
        "silent_s": round(stats.silent_hops * engine.hop_length / engine.sample_rate, 3),
        "models": engine.model_status(),
        "model_detail": {name: info.as_dict() for name, info in engine.model_states.snapshot().items()},
        "emotion": [
            {"t": e.t, "valence": e.valence, "arousal": e.arousal, "label": e.label} for e in stats.emotion
        ],
        **stats.played.report_fields(),  # beats, downbeats, chords, tempo: what a run is scored with
    }


def write_report(path: str | Path, report: dict[str, Any]) -> None:
    write_atomic(path, (json.dumps(report, indent=2) + "\n").encode())
