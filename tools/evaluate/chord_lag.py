"""Where the box's chord lag goes: each stage of the chord path timed against the reference changes.

``python -m tools.evaluate.chord_lag [--seeds N]`` runs the box (the judge's config) on rendered dev
pieces and, for every reference chord change, measures when each stage first names the new chord
(mir_eval majmin equality):

- ``model_hop``: the HarmonyPredictor's argmax, run on every hop's features (what the recogniser
  could know, hop by hop);
- ``model_step``: its argmax as the step planning gets it, stamped at the audio time it was planned;
- ``decoder``: the chord decoder's posterior argmax, stamped when it was updated (every hop the
  harmony model ran at ``models.harmony.rate: hop``, else at each step's planning);
- ``decided``: the chord chosen (decoder + key filter + hysteresis), same stamp;
- ``played``: the chord struck, at its grid time (the report's ``chords``: what is scored).

Lags are seconds after the reference change (a stage that never names the chord before the next
change counts as missed). ``--causes`` also runs the judge's scoring run (``systems.run_box``) and
sorts the chord voice's wrong notes (counted as ``tone_chord`` counts them) by cause, see
:func:`wrong_note_causes`. ``--loops`` sorts the changes of a repeated progression's later passes
(the ``loop_later`` rows) by what the progression memory and the generator were doing at the
change, see :func:`loop_causes`; it adds the dev loop pieces. Dev pieces only: this is a tuning
tool, never run it on the held-out set.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

STAGES = ("model_hop", "model_step", "decoder", "decided", "played")
EARLY_S = 0.15
"""A stage that already names the new chord this long before the change counts from the change
(lag 0): a chord shared with the one before, or a player anticipating."""


def same_chord(a: str, b: str) -> bool:
    """Labels equal under mir_eval majmin (N equals N)."""
    import mir_eval

    return bool(mir_eval.chord.majmin([a], [b])[0] >= 1.0)


def change_lags(ref: Sequence[tuple[float, float, str]], timeline: Sequence[tuple[float, str]]) -> list[float | None]:
    """For each reference change (a segment whose chord differs from the one before, not N), the
    seconds from its start until ``timeline`` (``[(t, label)]`` changes, ascending) first names
    its chord; None when it does not before the segment ends."""
    out: list[float | None] = []
    times = [t for t, _ in timeline]
    for i, (start, end, label) in enumerate(ref):
        if i == 0 or label == "N" or same_chord(ref[i - 1][2], label):
            continue
        lag = None
        j = max(0, int(np.searchsorted(times, start - EARLY_S, side="right")) - 1)
        for t, est in timeline[j:]:
            if t >= end:
                break
            if same_chord(est, label):
                lag = max(0.0, t - start)
                break
        out.append(lag)
    return out


def out_of_key_unheard_s(ref: Sequence[tuple[float, float, str]], timeline: Sequence[tuple[float, str]],
                         tonic: int, major: bool, duration: float) -> float:
    """Seconds ``timeline`` holds a chord outside the key (not diatonic to ``tonic``/``major``,
    :func:`kelly_edge.generate.theory.diatonic_chords`) that the reference is not playing then
    (majmin): an out-of-key chord the player never played."""
    from kelly_edge.generate import theory
    from kelly_edge.models import spec
    from tools.evaluate.systems import BOX_LABELS

    classes = {BOX_LABELS[spec.chord_name(i)]: i for i in range(spec.N_CHORD_CLASSES)}
    diatonic = theory.diatonic_chords(tonic, major)
    total = 0.0
    for i, (t, label) in enumerate(timeline):
        c = classes[label]
        if c == spec.NO_CHORD or diatonic[c]:
            continue
        end = timeline[i + 1][0] if i + 1 < len(timeline) else duration
        for start, stop, heard in ref:
            lo, hi = max(t, start), min(end, stop)
            if hi > lo and not same_chord(heard, label):
                total += hi - lo
    return total


CAUSES = ("flicker", "early", "lag", "held", "voicing")
LOOP_CAUSES = ("ok", "unlocked", "no_prediction", "wrong_prediction", "untrusted", "late")
"""Why a later-pass change was or was not on the player's (within ``metrics.LOOP_WINDOW_S``): ``ok``;
else, at the step planned nearest the change, the memory had no loop locked (``unlocked``), had one
but no prediction for that beat (``no_prediction``: given up, or not confident), predicted another
chord family (``wrong_prediction``), predicted the chord but had not yet earned the trust to play
it (``untrusted``: ``generator.PROGRESSION_TRUST``), or predicted and played it but the change still
missed the window (``late``: given up before the change, or the grid off the beat)."""


@dataclass(frozen=True)
class LoopState:
    """The progression path after planning one step: the memory's locked period (beats, 0 none),
    the prediction the chord voice holds for the step's beat (a chord class, -1 none) and the
    generator's trust in the loop."""

    t: float
    period: int
    predicted: int
    trust: int


def loop_causes(ref: Sequence[tuple[float, float, str]], loop_pass: Sequence[int] | None, beats: np.ndarray,
                played: Sequence[tuple[float, str]], states: Sequence[LoopState], trust_needed: int) -> dict[str, int]:
    """Counts of :data:`LOOP_CAUSES` over the reference changes ``metrics.loop_follow`` scores in
    its ``loop_later`` rows (``played``: the box's chord changes, labels as the judge's)."""
    from kelly_edge.models import spec
    from tools.evaluate.metrics import chord_family, loop_follow
    from tools.evaluate.systems import BOX_LABELS

    out = {c: 0 for c in LOOP_CAUSES}
    if loop_pass is None:  # not a repeated progression
        return out
    times = np.array([s.t for s in states], float)
    for i in range(1, len(ref)):
        # the judge scores the change itself (warm-up, a change of family, a later pass): one pair
        ok, scored = loop_follow(ref[i - 1 : i + 1], loop_pass[i - 1 : i + 1], beats, played)["loop_later_ok"]
        if not scored:
            continue
        if ok or not states:
            out["ok" if ok else "unlocked"] += 1
            continue
        start, _, label = ref[i]
        st = states[int(np.argmin(np.abs(times - start)))]
        if st.period == 0:
            out["unlocked"] += 1
        elif st.predicted < 0:
            out["no_prediction"] += 1
        elif chord_family(BOX_LABELS[spec.chord_name(st.predicted)]) != chord_family(label):
            out["wrong_prediction"] += 1
        elif st.trust < trust_needed:
            out["untrusted"] += 1
        else:
            out["late"] += 1
    return out


def wrong_note_causes(ref: Sequence[tuple[float, float, str]], notes: Sequence[tuple[float, int]],
                      played: Sequence[tuple[float, str]], beat_s: float, duration: float) -> dict[str, int]:
    """The chord voice's wrong notes (note-ons ``(t, pitch)`` counted by ``metrics.chord_tone_counts``
    whose pitch class is not in the reference chord) by what the box was playing (``played``,
    ``[(t, label)]`` changes): ``flicker``, a chord it held less than half a beat (``beat_s``);
    ``lag``, the chord before the player's change, not changed yet; ``early``, the player's next
    chord, struck before the player; ``held``, another chord held longer (a model or key error);
    ``voicing``, the right chord (majmin) with a tone outside the reference (a seventh)."""
    from tools.evaluate import metrics

    starts = np.array([a for a, _, _ in ref], float)
    times = [t for t, _ in played]
    out = {c: 0 for c in CAUSES}
    for t, pitch in notes:
        if t < metrics.WARM_UP_S:
            continue
        i = int(np.searchsorted(starts, t, side="right")) - 1
        if i < 0 or t >= ref[i][1] or t - starts[i] < metrics.GRACE_S:
            continue
        pcs = metrics.label_pcs(ref[i][2])
        if not pcs or (i + 1 < len(starts) and starts[i + 1] - t <= metrics.ON_BEAT_S) or pitch % 12 in pcs:
            continue
        j = int(np.searchsorted(times, t + 0.005, side="right")) - 1  # the report stamps a strike a hair late
        if j < 0:
            continue
        begin, label = played[j]
        end = played[j + 1][0] if j + 1 < len(played) else duration
        if same_chord(label, ref[i][2]):
            out["voicing"] += 1
        elif end - begin < beat_s / 2:
            out["flicker"] += 1
        elif i > 0 and same_chord(label, ref[i - 1][2]) and begin < starts[i]:
            out["lag"] += 1
        elif i + 1 < len(ref) and same_chord(label, ref[i + 1][2]):
            out["early"] += 1
        else:
            out["held"] += 1
    return out


@dataclass
class Trace:
    """What each stage said, as ``[(t, label)]`` changes."""

    stages: dict[str, list[tuple[float, str]]] = field(default_factory=lambda: {s: [] for s in STAGES})
    loop: list[LoopState] = field(default_factory=list)  # after each step planned with a memory

    def add(self, stage: str, t: float, label: str) -> None:
        path = self.stages[stage]
        if not path or path[-1][1] != label:
            path.append((t, label))


def trace_box(wav: Path, config: Any) -> Trace:
    """Run the engine on ``wav`` hop by hop (as ``run_file`` does), tracing every stage."""
    from kelly_edge.audio.wav import WavReader
    from kelly_edge.engine.engine import Engine
    from kelly_edge.features import encode
    from kelly_edge.midi.sinks import RecordingSink
    from kelly_edge.models import spec
    from tools.evaluate.systems import BOX_LABELS

    names = [BOX_LABELS[spec.chord_name(i)] for i in range(spec.N_CHORD_CLASSES)]
    trace = Trace()
    with WavReader(wav) as reader:
        engine = Engine(config, RecordingSink(), sample_rate=reader.sample_rate)
        engine.scheduler.measure_only()
        gen = engine.generator
        plan = gen.plan_step
        harmony = engine.models["harmony"].call
        x = np.zeros(spec.HARMONY.n_in, dtype=np.float32)

        hear = gen.hear_chord

        def decoded(now: float) -> None:
            trace.add("decoder", now, names[int(np.argmax(gen._decoder.posterior))])
            trace.add("decided", now, names[gen.current_chord])

        def traced_plan(**kw: Any) -> None:
            now = engine.time_s
            h = kw["harmony"][: spec.N_CHORD_CLASSES]
            plan(**kw)
            memory = gen._progression  # a tuning tool reads the generator's loop state; nothing else may
            if memory is not None:
                trace.loop.append(LoopState(kw["t_step"], memory.period_beats, gen._predicted, gen._trust))
            if kw["gate_open"]:
                trace.add("model_step", now, names[int(np.argmax(h))])
                if not engine._hear_chords:
                    decoded(now)

        def traced_hear(harmony: np.ndarray, **kw: Any) -> bool:
            changed = hear(harmony, **kw)
            decoded(kw["now"])
            return changed

        gen.plan_step = traced_plan  # type: ignore[method-assign]
        gen.hear_chord = traced_hear  # type: ignore[method-assign]
        hop = engine.hop_length
        while True:
            block = reader.read(hop * 100)
            if block.size == 0:
                break
            for start in range(0, block.size, hop):
                engine.process_hop(block[start : start + hop])
                if not engine.ctx.silent:
                    y = harmony(encode.encode_harmony_context(x, engine.ctx))
                    trace.add("model_hop", engine.time_s, names[int(np.argmax(y[: spec.N_CHORD_CLASSES]))])
        engine.close()
        for t, chord in engine.played.chords:
            trace.add("played", t, names[chord])
    return trace


def summarise(lags: Sequence[float | None]) -> dict[str, float | int | None]:
    hit = [x for x in lags if x is not None]
    return {
        "changes": len(lags),
        "missed": len(lags) - len(hit),
        "median_s": round(statistics.median(hit), 3) if hit else None,
        "p75_s": round(float(np.percentile(hit, 75)), 3) if hit else None,
        "within_beat": round(sum(x <= 0.5 for x in hit) / len(lags), 3) if lags else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    from tools.evaluate.cache import Cache
    from tools.evaluate.pieces import make_piece
    from kelly_edge.generate.generator import PROGRESSION_TRUST
    from tools.evaluate.run import DEV_LOOP_PIECES, DEV_LOOP_SECONDS, DEV_SEEDS, judge_config, render_piece

    p = argparse.ArgumentParser(prog="python -m tools.evaluate.chord_lag", description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=len(DEV_SEEDS), help="how many dev pieces (default all)")
    p.add_argument("--rate", choices=("hop", "step", "beat", "bar"), help="models.harmony.rate (default: the judge's)")
    p.add_argument("--causes", action="store_true", help="also sort the chord voice's wrong notes by cause")
    p.add_argument("--loops", action="store_true",
                   help="also sort the later loop passes' changes by what the progression memory did (adds the dev loop pieces)")
    args = p.parse_args(argv)
    cache, config = Cache(), judge_config()
    if args.rate:
        from kelly_edge.config.loader import parse_config
        from tools.evaluate.run import JUDGE_CONFIG

        config = parse_config(f"{JUDGE_CONFIG}\nmodels: {{harmony: {{rate: {args.rate}}}}}")
    pooled: dict[str, list[float | None]] = {s: [] for s in STAGES}
    unheard = 0.0
    causes = {c: 0 for c in CAUSES}
    loops = {c: 0 for c in LOOP_CAUSES}
    pieces = [make_piece(seed) for seed in DEV_SEEDS[: args.seeds]]
    if args.loops:
        pieces += [make_piece(s, seconds=DEV_LOOP_SECONDS, style=st, texture=tx, tempo_path="steady", departure=d)
                   for s, st, tx, d in DEV_LOOP_PIECES]
    for piece in pieces:
        wav = render_piece(piece, cache)
        trace = trace_box(wav, config)
        if args.loops:
            for cause, n in loop_causes(piece.chords, piece.loop_pass, np.asarray(piece.beats, float), trace.stages["played"],
                                        trace.loop, PROGRESSION_TRUST).items():
                loops[cause] += n
        if args.causes:
            from tools.evaluate.systems import run_box

            perf, _ = run_box(wav, config)
            beat_s = float(np.median(np.diff(piece.beats)))
            for cause, n in wrong_note_causes(piece.chords, perf.notes["chord"], perf.chords or [], beat_s,
                                              piece.duration).items():
                causes[cause] += n
        out_s = out_of_key_unheard_s(piece.chords, trace.stages["played"], piece.tonic, piece.major, piece.duration)
        unheard += out_s
        row = [f"out-of-key unheard {out_s:.2f} s"]
        for stage in STAGES:
            lags = change_lags(piece.chords, trace.stages[stage])
            pooled[stage] += lags
            s = summarise(lags)
            row.append(f"{stage} {s['median_s']}/{s['missed']}")
        print(f"{piece.name:40s} " + "  ".join(row))
    print("stage       changes missed median_s p75_s within_beat(0.5 s)")
    for stage in STAGES:
        s = summarise(pooled[stage])
        print(f"{stage:11s} {s['changes']:7d} {s['missed']:6d} {s['median_s']!s:>8} {s['p75_s']!s:>5} {s['within_beat']!s:>6}")
    print(f"played: an out-of-key chord the player did not play, {unheard:.1f} s in all")
    if args.causes:
        print("chord voice's wrong notes by cause: " + ", ".join(f"{c} {n}" for c, n in causes.items()))
    if args.loops:
        print("later loop passes' changes by cause: " + ", ".join(f"{c} {n}" for c, n in loops.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
