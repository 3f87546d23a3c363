"""Soak: hours of audio through the full pipeline (the real Engine, the trained models), offline
at accelerated pace, with the process's memory sampled every simulated minute.

Why: on stage the box runs for a whole gig. A slow leak, a stat that grows per hop, a note that
sticks after hours of odd input would not show in a 20 s test. The audio is the bundled demo,
looped with variations (gain, a small pitch/speed change, added noise), separated by silences,
with now and then an extreme stretch (full scale, DC, NaN samples), tempo changes, model toggles
through the footswitch controls and panics, so every path of the generator is exercised.

The MIDI goes to a :class:`CountingSink` (constant memory: it tracks the sounding notes, not the
messages), so the memory measured is the pipeline's own. Reported (JSON): audio and wall time,
real-time factor, hops, deadline misses, hop time percentiles, notes, stuck notes after the close,
MIDI problems (note-on of a sounding note, note-off of a silent one, time going backwards), RSS
samples and their growth after warm-up.

    .venv/bin/python tools/soak.py --hours 1 --out out/soak.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from kelly_edge.audio.wav import WavReader  # noqa: E402
from kelly_edge.config.schema import default_config  # noqa: E402
from kelly_edge.control.box import EngineControls  # noqa: E402
from kelly_edge.engine.engine import Engine  # noqa: E402
from kelly_edge.midi import messages as mm  # noqa: E402
from kelly_edge.midi.notes import ActiveNotes  # noqa: E402
from kelly_edge.models import spec  # noqa: E402
from kelly_edge.report import percentiles_ms  # noqa: E402

DEMO = REPO / "kelly_edge" / "data" / "demo.wav"
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size of this process, bytes (``/proc/self/statm``, field 2, in pages)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


class CountingSink:
    """A MIDI sink that checks the stream as it goes, in constant memory.

    ``problems`` counts note-ons of a sounding note, note-offs of a silent note and times going
    backwards (the first few are kept as text); ``sounding`` is what still sounds; ``channels`` the
    wire channels seen.
    """

    MAX_KEPT = 20

    def __init__(self) -> None:
        self.active = ActiveNotes()
        self.messages = 0
        self.note_ons = 0
        self.problems = 0
        self.first_problems: list[str] = []
        self.last_t = float("-inf")
        self.channels: set[int] = set()
        self.closed = False

    def _problem(self, text: str) -> None:
        self.problems += 1
        if len(self.first_problems) < self.MAX_KEPT:
            self.first_problems.append(text)

    def send(self, t: float, message: bytes) -> None:
        if t < self.last_t:
            self._problem(f"time goes backwards: {t:.6f} after {self.last_t:.6f}")
        self.last_t = max(self.last_t, t)
        self.messages += 1
        ch = message[0] & 0x0F
        self.channels.add(ch)
        if mm.is_note_on(message):
            self.note_ons += 1
            if self.active.is_on(ch, message[1]):
                self._problem(f"note-on of sounding ch{ch} note {message[1]} at {t:.3f} s")
            self.active.on(ch, message[1])
        elif mm.is_note_off(message):
            if not self.active.off(ch, message[1]):
                self._problem(f"note-off of silent ch{ch} note {message[1]} at {t:.3f} s")

    def set_tempo(self, t: float, bpm: float) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def load_demo() -> tuple[np.ndarray, int]:
    with WavReader(DEMO) as reader:
        return reader.read(reader.info.frames).astype(np.float32), reader.sample_rate


def audio_blocks(demo: np.ndarray, sample_rate: int, rng: np.random.Generator) -> Iterator[tuple[str, np.ndarray]]:
    """Endless ``(kind, samples)``: demo variations, silences and now and then an extreme stretch."""
    while True:
        r = rng.random()
        if r < 0.70:  # the demo, varied: gain -12..+6 dB, speed/pitch +-6 %, a little noise
            speed = rng.uniform(0.94, 1.06)
            n = int(demo.size / speed)
            x = np.interp(np.arange(n) * speed, np.arange(demo.size), demo).astype(np.float32)
            x *= np.float32(10 ** (rng.uniform(-12, 6) / 20))
            x += rng.normal(0, 10 ** (rng.uniform(-80, -40) / 20), n).astype(np.float32)
            np.clip(x, -1.0, 1.0, out=x)
            yield "demo", x
        elif r < 0.92:
            yield "silence", np.zeros(int(rng.uniform(1.0, 20.0) * sample_rate), np.float32)
        else:
            n = int(rng.uniform(0.5, 4.0) * sample_rate)
            kind = str(rng.choice(["full_scale", "dc", "nan", "noise"]))
            if kind == "full_scale":
                x = np.where(np.sin(np.arange(n) * 2 * np.pi * 220 / sample_rate) >= 0, 1.0, -1.0)
            elif kind == "dc":
                x = np.full(n, rng.uniform(-1, 1))
            elif kind == "nan":
                x = 0.3 * np.sin(np.arange(n) * 2 * np.pi * 330 / sample_rate)
                x[rng.integers(0, n, n // 50)] = np.nan
            else:
                x = np.clip(rng.normal(0, 0.3, n), -1, 1)
            yield kind, x.astype(np.float32)


def soak(hours: float, *, seed: int = 0, sample_every_s: float = 60.0, warmup_s: float | None = None,
         progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run ``hours`` of audio through the Engine; returns the report dict (see the module docstring).

    ``sample_every_s``: simulated seconds between RSS samples. ``warmup_s``: growth is measured from
    the first sample at or after this audio time (default: two samples in).
    """
    total_s = hours * 3600.0
    warmup = 2 * sample_every_s if warmup_s is None else warmup_s
    rng = np.random.default_rng(seed)
    demo, sr = load_demo()
    config = default_config()
    sink = CountingSink()
    engine = Engine(config, sink, sample_rate=sr)
    controls = EngineControls(engine, config)
    hop = engine.hop_length
    blocks = audio_blocks(demo, sr, rng)
    counts: dict[str, int] = {}
    events = {"tempo_changes": 0, "toggles": 0, "panics": 0}
    samples: list[tuple[float, int]] = []
    next_sample = sample_every_s
    gc.collect()
    gc.freeze()  # as the offline runner does: start-up garbage is not walked again
    rss0 = rss_bytes()
    started = time.perf_counter()
    try:
        while engine.time_s < total_s:
            kind, x = next(blocks)
            counts[kind] = counts.get(kind, 0) + 1
            action = rng.random()
            if action < 0.15:
                engine.set_tempo(float(rng.uniform(60, 180)))
                events["tempo_changes"] += 1
            elif action < 0.30:
                controls.toggle_model(str(rng.choice(spec.MODEL_NAMES)))
                events["toggles"] += 1
            elif action < 0.35:
                controls.panic()
                events["panics"] += 1
            for start in range(0, x.size, hop):
                engine.process_hop(x[start : start + hop])
                if engine.time_s >= next_sample:
                    samples.append((round(engine.time_s, 1), rss_bytes()))
                    next_sample += sample_every_s
                    if progress is not None and len(samples) % 10 == 0:
                        wall = time.perf_counter() - started
                        progress(f"{engine.time_s / 60:.0f} min of audio in {wall:.0f} s, "
                                 f"RSS {samples[-1][1] / 2**20:.1f} MiB, misses {engine.scheduler.deadline_misses}")
    finally:
        engine.close()
        sink.close()
        gc.unfreeze()
    wall = time.perf_counter() - started
    after = [(t, r) for t, r in samples if t >= warmup] or samples
    base = after[0][1] if after else rss0
    peak = max((r for _, r in after), default=base)
    sched = engine.scheduler
    mib = 2**20
    # the trend, not single samples: transient audio buffers move RSS by a few MiB either way
    quarter = max(1, len(after) // 4)
    early = float(np.median([r for _, r in after[:quarter]])) if after else float(base)
    late = float(np.median([r for _, r in after[-quarter:]])) if after else float(base)
    slope = 0.0
    if len(after) >= 3:
        ts = np.array([t for t, _ in after]) / 3600.0
        slope = float(np.polyfit(ts, np.array([r for _, r in after], dtype=float) / mib, 1)[0])
    return {
        "audio_s": round(engine.time_s, 1),
        "audio_h": round(engine.time_s / 3600.0, 3),
        "wall_s": round(wall, 1),
        "realtime_factor": round(engine.time_s / wall, 1) if wall > 0 else None,
        "hops": sched.hops,
        "deadline_misses": sched.deadline_misses,
        "miss_rate": round(sched.deadline_misses / max(1, sched.hops), 6),
        "hop_ms": percentiles_ms(engine.stats.hop_times),
        "notes": sink.note_ons,
        "midi_messages": sink.messages,
        "stuck_notes": sink.active.sounding(),
        "midi_problems": sink.problems,
        "first_midi_problems": sink.first_problems,
        "channels": sorted(sink.channels),
        "models": engine.model_status(),
        "blocks": counts,
        "events": events,
        "rss_mib": {
            "start": round(rss0 / mib, 2),
            "after_warmup": round(base / mib, 2),
            "peak_after_warmup": round(peak / mib, 2),
            "end": round(samples[-1][1] / mib, 2) if samples else None,
            "growth_after_warmup": round((peak - base) / mib, 2),
            "late_minus_early": round((late - early) / mib, 2),  # median of the last vs the first quarter
            "trend_per_hour": round(slope, 2),  # least-squares slope after warm-up, MiB per audio hour
        },
        "rss_samples": [[t, round(r / mib, 2)] for t, r in samples],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=1.0, help="audio to run through, hours (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample-every", type=float, default=60.0, help="simulated seconds between RSS samples")
    parser.add_argument("--out", default=str(REPO / "out" / "soak.json"), help="JSON report path")
    parser.add_argument("--max-growth-mib", type=float, default=4.0,
                        help="exit 1 when RSS grew more (median of the last quarter minus the first, after warm-up)")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING, format="soak: %(message)s")
    report = soak(args.hours, seed=args.seed, sample_every_s=args.sample_every,
                  progress=lambda line: print(line, file=sys.stderr, flush=True))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from kelly_edge.fileio import write_atomic

    write_atomic(out, (json.dumps(report, indent=2) + "\n").encode())
    rss = report["rss_mib"]
    ok = not report["stuck_notes"] and report["midi_problems"] == 0 and rss["late_minus_early"] <= args.max_growth_mib
    print(f"soak: {report['audio_h']} h of audio in {report['wall_s']:.0f} s (x{report['realtime_factor']}), "
          f"{report['hops']} hops, {report['deadline_misses']} deadline misses, {report['notes']} notes, "
          f"stuck {len(report['stuck_notes'])}, MIDI problems {report['midi_problems']}, RSS {rss['after_warmup']} MiB "
          f"after warm-up, peak {rss['peak_after_warmup']}, last-quarter minus first-quarter {rss['late_minus_early']} MiB, "
          f"trend {rss['trend_per_hour']} MiB/h -> {out}: "
          f"{'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
