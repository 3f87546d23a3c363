"""Why the box's beats miss the player's: tempo, phase or the grid lock, per rendered dev piece.

Runs only what the beat path runs (the feature context, then ``tempo.source: player``'s tracker
and grid lock on a :class:`~kelly_edge.engine.clock.TempoGrid`, the steps logged as the engine
logs them), so a change to the tracker is measured in seconds rather than a whole evaluation. The
features do not depend on the tempo and are cached per render (``$KELLY_EVAL_CACHE``/beatfeat).

Per piece it prints the box's beat F-measure and tempo share (the judge's metrics,
:mod:`tools.evaluate.metrics`), the tracker's own beat F (its predicted beats, before the grid
lock), and the verdict: ``tempo`` (the tracker's tempo is off the reference by more than 4 % on
more than 10 % of the beats after 4 s: a pulse-level error or slow to follow), ``phase`` (the
tempo is right but the tracker's beats miss), ``lock`` (the tracker's beats land but the grid's do
not) or ``ok``. ``-v`` adds the reference and tracker tempo every 2 s and the grid's median
offset from the reference beats.

    python -m tools.beat_diagnose                 # the rendered dev pieces (tools/evaluate)
    python -m tools.beat_diagnose --seeds 130004 130015 -v
    python -m tools.beat_diagnose --small         # the suite's small set's rendered pieces
    python -m tools.beat_diagnose --real-dev      # the real-dev recordings (essentia's beats)

Only the dev material: the held-out seeds (``tools/evaluate/heldout.txt``) are refused, and the
evaluation's real recordings (warzone2100) are not offered.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np

from tools.evaluate import metrics

VERDICT_SHARE = 0.9  # tempo share of the tracker below this: a tempo problem


@dataclass
class Trace:
    """What the beat path did over one piece."""

    box_beats: np.ndarray  # the grid's beats, as the engine logs them
    box_tempo: list[tuple[float, float]]  # the grid's rate path, as logged
    tracker_tempo: list[tuple[float, float]]  # (t, the tracker's bpm) at every hop it changed
    tracker_beats: np.ndarray  # the tracker's predicted beats (audio time)
    base_tempo: list[tuple[float, float]]  # (t, the lock's held tempo) at every change


def features(wav, cache) -> dict[str, np.ndarray]:
    """Per hop: flux, the mel frame and the silent flag of the engine's feature context."""
    from kelly_edge.features.context import FeatureContext
    from tools.evaluate.cache import file_digest
    from tools.render import iter_hops, load_wav_mono

    path = cache.path("beatfeat", file_digest(wav), ".npz")
    if path.is_file():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    x, sr = load_wav_mono(wav)
    ctx = FeatureContext(sample_rate=sr)
    flux, mel, silent = [], [], []
    for hop in iter_hops(x, ctx.hop_length):
        ctx.update(hop, step=0)
        flux.append(ctx.onset_strength)
        mel.append(np.array(ctx.mel, dtype=np.float32))
        silent.append(ctx.silent)
    out = {"flux": np.array(flux), "mel": np.array(mel), "silent": np.array(silent),
           "hop_s": np.array(ctx.hop_s)}
    np.savez(path, **out)
    return out


class _Features:
    def __init__(self, hop_s: float, n_mels: int) -> None:
        self.hop_s = hop_s
        self.mel = np.zeros(n_mels, dtype=np.float32)
        self.onset_strength = 0.0
        self.silent = True


def trace(feats: dict[str, np.ndarray], bpm: float = 100.0) -> Trace:
    """Replay the beat path over cached features, the way :meth:`Engine.process_hop` runs it."""
    from kelly_edge.config.schema import default_config
    from kelly_edge.engine.clock import TempoGrid
    from kelly_edge.engine.playlog import PlayLog
    from kelly_edge.tempo.source import PlayerSource

    hop_s = float(feats["hop_s"])
    ctx = _Features(hop_s, feats["mel"].shape[1])
    grid = TempoGrid(bpm)
    source = PlayerSource(bpm)
    source.prepare(ctx)
    tracker = source.tracker
    predicted: list[bool] = [False]
    update = tracker.update

    def recording_update(*a, **k) -> bool:  # notes the hops the tracker predicted a beat on
        predicted[0] = update(*a, **k)
        return predicted[0]

    tracker.update = recording_update  # type: ignore[method-assign]
    log = PlayLog()
    next_step = 0
    tracker_tempo: list[tuple[float, float]] = []
    tracker_beats: list[float] = []
    base_tempo: list[tuple[float, float]] = []
    tail_s = default_config().audio.silence_tail_s
    heard, silent_for = False, 0.0
    for n in range(feats["flux"].size):
        t = (n + 1) * hop_s
        ctx.onset_strength = float(feats["flux"][n])
        ctx.mel[...] = feats["mel"][n]
        ctx.silent = bool(feats["silent"][n])
        heard = heard or not ctx.silent  # the engine's gate: open once heard, shut after the tail
        silent_for = silent_for + hop_s if ctx.silent else 0.0
        playing = heard and silent_for < tail_s
        while grid.time_of(next_step) < t + grid.step_s:
            log.step(next_step, grid.time_of(next_step), source.tracked_bpm or grid.bpm, 0, playing)
            next_step += 1
        new = source.poll(t, ctx, grid)
        if new is not None and abs(new - grid.bpm) > 1e-6:
            grid.set_bpm(new, t)
        if tracker.known and (not tracker_tempo or tracker_tempo[-1][1] != tracker.bpm):
            tracker_tempo.append((t, tracker.bpm))
        base = source.tracked_bpm
        if base is not None and (not base_tempo or base_tempo[-1][1] != base):
            base_tempo.append((t, base))
        if predicted[0]:
            beat = t + tracker.next_beat_hops * hop_s - source.lock.latency_s
            while tracker_beats and tracker_beats[-1] > beat - 0.05:  # a re-prediction replaces the last
                tracker_beats.pop()
            tracker_beats.append(beat)
    return Trace(log.beat_times(), list(log.tempo), tracker_tempo, np.array(tracker_beats), base_tempo)


def _tempo_at(path: list[tuple[float, float]], t: float) -> float:
    times = [p[0] for p in path]
    j = int(np.searchsorted(times, t, side="right")) - 1
    return path[max(j, 0)][1] if path else float("nan")


def diagnose(name: str, ref: np.ndarray, tr: Trace, verbose: bool) -> dict[str, float | str]:
    box_f = metrics.beat_f(ref, tr.box_beats)
    box_share = metrics.tempo_share(ref, tr.box_tempo)
    trk_f = metrics.beat_f(ref, tr.tracker_beats) if tr.tracker_beats.size else 0.0
    trk_share = metrics.tempo_share(ref, tr.tracker_tempo)
    base_share = metrics.tempo_share(ref, tr.base_tempo)
    late = ref[ref >= metrics.WARM_UP_S]
    if tr.box_beats.size:
        j = np.clip(np.searchsorted(tr.box_beats, late), 1, tr.box_beats.size - 1)
        before, after = tr.box_beats[j - 1], tr.box_beats[j]
        nearest = np.where(np.abs(late - before) < np.abs(late - after), before, after)
        offset = nearest - late  # > 0: the box's beat is late
    else:
        offset = np.array([np.nan])
    period = float(np.median(np.diff(ref)))
    verdict = "ok"
    if trk_share < VERDICT_SHARE:
        ratio = np.median([_tempo_at(tr.tracker_tempo, t) for t in late]) * period / 60.0
        verdict = f"tempo (x{ratio:.2f})"
    elif trk_f < 0.9:
        verdict = "phase"
    elif box_f < 0.9:
        verdict = "lock"
    print(f"{name:44s} box F {box_f:.2f} tempo {box_share:.2f} | tracker F {trk_f:.2f} tempo {trk_share:.2f} | "
          f"offset med {1000 * np.nanmedian(offset):+5.0f} ms iqr {1000 * np.subtract(*np.nanpercentile(offset, [75, 25])):4.0f} "
          f"| {verdict}", flush=True)
    if verbose:
        intervals = np.diff(ref)
        for t in np.arange(1.0, ref[-1], 2.0):
            i = int(np.clip(np.searchsorted(ref, t), 1, intervals.size - 1))
            ref_bpm = 60.0 / float(np.median(intervals[max(0, i - 2) : i + 2]))
            near = [o for b, o in zip(late, offset) if abs(b - t) < 1.0]
            off = f"{1000 * np.median(near):+5.0f} ms" if near else "   -    "
            print(f"    t {t:5.1f}  ref {ref_bpm:6.1f}  tracker {_tempo_at(tr.tracker_tempo, t):6.1f}  "
                  f"grid {_tempo_at(tr.box_tempo, t):6.1f}  offset {off}")
    return {"name": name, "box_f": box_f, "box_tempo": box_share, "tracker_f": trk_f, "tracker_tempo": trk_share,
            "verdict": verdict, "base_tempo": base_share}


def main(argv: list[str] | None = None) -> int:
    from tools.evaluate.cache import Cache
    from tools.evaluate.pieces import make_piece
    from tools.evaluate.run import DEV_SEEDS, SMALL_PIECES, SMALL_SECONDS, heldout_seeds, render_piece

    parser = argparse.ArgumentParser(prog="python -m tools.beat_diagnose", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEV_SEEDS), help="dev piece seeds (default: rendered-dev)")
    parser.add_argument("--bpm", type=float, default=100.0, help="the starting guess (config tempo.bpm)")
    parser.add_argument("--small", action="store_true", help="the suite's small set's rendered pieces instead")
    parser.add_argument("--real-dev", action="store_true",
                        help="the real-dev recordings (tools/evaluate real-dev) instead")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.real_dev:
        return _real_dev(args)
    if args.small:
        args.seeds = [seed for seed, *_ in SMALL_PIECES]
    small = {seed: (style, texture, path) for seed, style, texture, path in SMALL_PIECES}
    held = {seed for seed, _ in heldout_seeds()}
    if held & set(args.seeds):
        print(f"python -m tools.beat_diagnose: seeds {sorted(held & set(args.seeds))} are held out: "
              "diagnose dev pieces only", file=sys.stderr)
        return 2
    cache = Cache()
    rows = []
    for seed in args.seeds:
        if seed in small:
            style, texture, path = small[seed]
            piece = make_piece(seed, seconds=SMALL_SECONDS, style=style, texture=texture, tempo_path=path)
        else:
            piece = make_piece(seed)
        wav = render_piece(piece, cache)
        rows.append(diagnose(piece.name, np.array(piece.beats), trace(features(wav, cache), args.bpm), args.verbose))
    return _summary(rows)


def _real_dev(args: argparse.Namespace) -> int:
    from tools.evaluate.cache import Cache
    from tools.evaluate.recordings import annotated, excerpt

    cache = Cache()
    rows = []
    recs = annotated(dev=True)
    if not recs:
        print("python -m tools.beat_diagnose: no real-dev annotations (python -m tools.evaluate.annotate --dev)",
              file=sys.stderr)
        return 2
    for rec, ref, _ in recs:
        try:
            wav = excerpt(rec, cache)
        except FileNotFoundError as err:
            print(f"python -m tools.beat_diagnose: {err}", file=sys.stderr)
            return 2
        rows.append(diagnose(ref.name, ref.beats, trace(features(wav, cache), args.bpm), args.verbose))
    return _summary(rows)


def _summary(rows: list[dict[str, float | str]]) -> int:
    box_f = np.mean([r["box_f"] for r in rows])
    ok = np.mean([r["box_tempo"] >= metrics.TEMPO_PIECE_SHARE for r in rows])
    trk_f = np.mean([r["tracker_f"] for r in rows])
    trk_ok = np.mean([r["tracker_tempo"] >= metrics.TEMPO_PIECE_SHARE for r in rows])
    base_ok = np.mean([r["base_tempo"] >= metrics.TEMPO_PIECE_SHARE for r in rows])
    print(f"{len(rows)} pieces: box beat F {box_f:.3f}, tempo ok {ok:.2f} (held tempo {base_ok:.2f}); "
          f"tracker beat F {trk_f:.3f}, tempo ok {trk_ok:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
