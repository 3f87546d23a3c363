"""Run the evaluation: each set's material through each player, scored, pooled, tabled.

Sets: ``full`` (the README table) is the judge's rendered pieces in two groups, ``rendered-dev``
(seeds ``SEED_BASE + 0..21``, and :data:`DEV_LOOP_PIECES`: steady loops, some left once) and ``rendered-heldout`` (the seeds in ``heldout.txt``: never tune
on them), plus ``real`` (the annotated recordings). ``real-dev`` (other packages' recordings,
``recordings.dev_candidates``) is the real music to tune the tracker on; it is run only when asked
for (``--groups real-dev``), never in ``small``. ``small`` (the suite's) is three short dev
pieces, the first dev loop and two recordings.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from tools.evaluate import metrics
from tools.evaluate.cache import Cache, digest
from tools.evaluate.metrics import Performance, Reference
from tools.evaluate.pieces import HELDOUT_FILE, SEED_BASE, Piece, make_piece
from tools.evaluate.systems import random_in_key, run_box, transcription

log = logging.getLogger(__name__)

SYSTEMS = ("box", "random", "transcription")
SYSTEM_TITLES = {"box": "box", "random": "random in key (floor)", "transcription": "transcription (ceiling)"}
DEV_SEEDS = tuple(SEED_BASE + i for i in range(22))
SMALL_PIECES = (  # (seed, style, texture, tempo path): a band, a strummed minor loop, solo piano with rubato
    (SEED_BASE + 500, "pop", "block", "steady"),
    (SEED_BASE + 501, "issue", "strum", "jump"),
    (SEED_BASE + 502, "jazz", "solo_piano", "rubato"),
)
DEV_LOOP_PIECES = (  # (seed, style, texture, departure pass): steady loops played 4+ times, some left once
    (SEED_BASE + 600, "pop", "block", 2),
    (SEED_BASE + 601, "axis_minor", "strum", 2),
    (SEED_BASE + 602, "doowop", "band", None),
    (SEED_BASE + 603, "andalusian", "arpeggio", 2),
    (SEED_BASE + 604, "canon", "solo_piano", None),
    (SEED_BASE + 605, "issue", "strings", 2),
)
DEV_LOOP_SECONDS = 40.0
SMALL_SECONDS = 16.0
SMALL_RECORDINGS = 2
RENDER_RATE = 22050
METRIC_ROWS = (  # (key, title): the table's rows, in order
    ("beat_f", "beat F-measure (after 4 s)"),
    ("downbeat_f", "downbeat F-measure (after 4 s)"),
    ("tempo_ok", "tempo within 4 % (share of pieces)"),
    ("key", "key, MIREX weighted"),
    ("chords_majmin", "chords, mir_eval majmin"),
    ("tone_melody", "chord tones: melody"),
    ("tone_chord", "chord tones: chord voice"),
    ("tone_bass", "chord tones: bass"),
    ("tone_all", "chord tones: all notes"),
    ("on_beat", "chord+bass note-ons on a beat (70 ms)"),
    ("loop_first_s", "loop, 1st pass: median change offset (s)"),
    ("loop_first_ok", "loop, 1st pass: changes within 60 ms"),
    ("loop_later_s", "loop, 2nd pass on: median change offset (s)"),
    ("loop_later_ok", "loop, 2nd pass on: changes within 60 ms"),
    ("departure_beat", "loop departures followed within a beat"),
)


JUDGE_CONFIG = "scheduler: {budget_ms: 100}"
"""The box's default config with the widest model budget: the judge measures the music, not the
machine (on a loaded machine the 10 ms budget defers models, and a model that overruns it again
and again is swapped for its fallback, so the same piece would play differently from run to run).
What the 10 ms budget costs is measured by ``kelly-edge bench``."""


def judge_config() -> Any:
    from kelly_edge.config.loader import parse_config

    return parse_config(JUDGE_CONFIG)


@dataclass(frozen=True)
class Item:
    group: str
    ref: Reference
    wav: Path


def heldout_seeds() -> list[tuple[int, str]]:
    """``(seed, name)`` per line of ``heldout.txt``; the name pins the piece the seed makes."""
    out = []
    for line in HELDOUT_FILE.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            seed, name = line.split()
            out.append((int(seed), name))
    return out


def reference_of(piece: Piece) -> Reference:
    return Reference(name=piece.name, duration=piece.duration, beats=np.array(piece.beats),
                     downbeats=np.array(piece.downbeats), key=piece.key,
                     chords=piece.chords, loop_pass=piece.loop_pass)


def render_piece(piece: Piece, cache: Cache) -> Path:
    """The piece rendered with FluidSynth (``tools.render``), cached by its MIDI and the soundfont."""
    from tools.render import find_soundfont, render_midi

    midi = piece.midi_bytes()
    sf2 = find_soundfont()
    key = digest(midi, str(sf2), str(sf2.stat().st_size), str(RENDER_RATE))
    wav = cache.path("renders", key, ".wav")
    if not wav.is_file():
        mid = cache.path("renders", key, ".mid")
        mid.write_bytes(midi)
        tmp = wav.with_suffix(f".{os.getpid()}.wav")
        render_midi(mid, tmp, sample_rate=RENDER_RATE, timeout_s=120.0)
        tmp.replace(wav)
    return wav


def items(set_name: str, cache: Cache, groups: Iterable[str] | None = None) -> list[Item]:
    from tools.evaluate.recordings import annotated, excerpt

    wanted = set(groups) if groups else {"rendered-dev", "rendered-heldout", "real"}
    out: list[Item] = []
    if set_name == "small":
        pieces = [("rendered-dev", make_piece(s, seconds=SMALL_SECONDS, style=st, texture=tx, tempo_path=tp))
                  for s, st, tx, tp in SMALL_PIECES]
        s, st, tx, d = DEV_LOOP_PIECES[0]  # a loop left once, for the loop rows
        pieces.append(("rendered-dev", make_piece(s, seconds=DEV_LOOP_SECONDS, style=st, texture=tx, tempo_path="steady",
                                                  departure=d)))
        recordings = annotated()[:SMALL_RECORDINGS]
    else:
        pieces = [("rendered-dev", make_piece(s)) for s in DEV_SEEDS]
        pieces += [("rendered-dev", make_piece(s, seconds=DEV_LOOP_SECONDS, style=st, texture=tx, tempo_path="steady",
                                                departure=d)) for s, st, tx, d in DEV_LOOP_PIECES]
        for seed, name in heldout_seeds():
            piece = make_piece(seed)
            if piece.name != name:
                raise RuntimeError(f"{HELDOUT_FILE}: seed {seed} now makes {piece.name}, not {name}: "
                                   "the piece writer changed; the held-out set must stay as listed")
            pieces.append(("rendered-heldout", piece))
        recordings = annotated()
    for group, piece in pieces:
        if group in wanted:
            out.append(Item(group, reference_of(piece), render_piece(piece, cache)))
    if "real" in wanted:
        for rec, ref, _ in recordings:
            out.append(Item("real", ref, excerpt(rec, cache)))
    if "real-dev" in wanted and set_name != "small":
        for rec, ref, _ in annotated(dev=True):
            out.append(Item("real-dev", ref, excerpt(rec, cache)))
    return out


def evaluate(set_name: str = "full", *, systems: Iterable[str] = SYSTEMS, cache: Cache | None = None,
             config: Any | None = None, groups: Iterable[str] | None = None,
             on_box_run: Callable[[Item, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Scores of every item and system, and the pooled table ``{group: {system: {metric: value}}}``."""
    cache = cache or Cache()
    config = config if config is not None else judge_config()
    started = time.perf_counter()
    chosen = list(systems)
    per_item: list[dict[str, Any]] = []
    for item in items(set_name, cache, groups):
        row: dict[str, Any] = {"group": item.group, "name": item.ref.name, "key": item.ref.key}
        for system in chosen:
            perf: Performance | None
            if system == "box":
                perf, report = run_box(item.wav, config)
                row["box_key"] = report["key"]
                row["box_models"] = report["models"]
                if any(status != "trained" for status in report["models"].values()):
                    log.warning("%s: the box ran with fallbacks: %s", item.ref.name, report["models"])
                if on_box_run is not None:
                    on_box_run(item, report)
            elif system == "random":
                seed = int(digest(item.ref.name)[:8], 16)  # by name: the same notes whatever else is run
                perf = random_in_key(item.ref, seed=seed) if item.ref.key else None
            else:
                perf = transcription(item.wav, cache)
            if perf is not None:
                row[system] = metrics.score(item.ref, perf)
        per_item.append(row)
        log.info("%-16s %-40s done", item.group, item.ref.name)
    return {"set": set_name, "seconds": round(time.perf_counter() - started, 1), "items": per_item,
            "table": pool(per_item, chosen)}


def pool(per_item: list[dict[str, Any]], systems: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Means of per-piece scores; chord-tone and on-beat shares pooled over all counted notes.
    The random player is given the key, so its key score is left out."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for group in dict.fromkeys(r["group"] for r in per_item):
        rows = [r for r in per_item if r["group"] == group]
        table[group] = {}
        for system in systems:
            scored = [r[system] for r in rows if system in r]
            cell: dict[str, Any] = {"n": len(scored)}
            for metric, _ in METRIC_ROWS:
                values = [s[metric] for s in scored if s.get(metric) is not None]
                if system == "random" and metric == "key":
                    values = []
                if not values:
                    cell[metric] = None
                elif isinstance(values[0], tuple | list):
                    hits, total = sum(v[0] for v in values), sum(v[1] for v in values)
                    cell[metric] = round(hits / total, 3) if total else None
                else:
                    finite = [v for v in values if not math.isnan(v)]
                    cell[metric] = round(float(np.mean(finite)), 3) if finite else None
            table[group][system] = cell
    return table


GROUP_TITLES = {"rendered-heldout": "rendered, held out", "rendered-dev": "rendered, dev", "real": "real recordings",
                "real-dev": "real recordings, dev"}


def markdown(result: dict[str, Any], before: dict[str, Any] | Sequence[dict[str, Any]] | None = None) -> str:
    """The tables as markdown, one per group: a row per metric, a column per player; with
    ``before`` (earlier ``results.json``, one or a list, oldest first), their box figures beside today's."""
    earlier = [before] if isinstance(before, dict) else list(before or ())
    table = result["table"]
    out = []
    for g in (g for g in GROUP_TITLES if g in table):
        columns: list[tuple[str, dict[str, Any]]] = []
        for old in earlier:
            if "box" in old["table"].get(g, {}):
                columns.append((f"box before ({old.get('commit', '?')})", old["table"][g]["box"]))
        for s in SYSTEMS:
            if s in table[g]:
                columns.append((("box now" if earlier else "box") if s == "box" else SYSTEM_TITLES[s], table[g][s]))
        n = max(cell.get("n", 0) for _, cell in columns)
        out.append(f"**{GROUP_TITLES[g]}** ({n} {'recordings' if g.startswith('real') else 'pieces'})\n")
        out.append("| metric | " + " | ".join(title for title, _ in columns) + " |")
        out.append("|---|" + "---:|" * len(columns))
        for metric, title in METRIC_ROWS:
            cells = ["—" if cell.get(metric) is None else f"{cell[metric]:.2f}" for _, cell in columns]
            out.append(f"| {title} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)
