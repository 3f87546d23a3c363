"""``python -m tools.train.measure chords|key``: how well the box hears chords and keys, by outside judges.

``chords``: held-out rendered accompaniments (:func:`tools.train.accompaniment.make` with
``held_out=True``: other seeds than training, plus the Alberti texture and three GM sounds the
harmony model never heard) run through the real :class:`~kelly_edge.engine.engine.Engine` with
the shipped models, at the accompaniment's tempo (``tempo.source: config``: this measures
following chords, not beat tracking). The box's played chords are read back from its chord
voice (each struck voicing names its chord) and scored against the known chords with mir_eval's
``majmin`` (duration-weighted); "recognised" scores the box's current chord stamped at the audio
time it was decided (before the wait for the next 16th and the planning lead); the chord and bass voices' **chord-tone ratio** is the share of
their note-ons whose pitch class is in the chord sounding then (note-ons within 0.5 s after a change
and over N.C. are not counted). Both scores are the evaluation's own (:mod:`tools.evaluate.metrics`). The floor is random notes of the
key (the same note-on times, pitch classes drawn from the scale).

``key-real``: real recordings annotated by essentia (the evaluation's annotation files).

``key``: rendered corpus pieces (Bach chorales and Essen folk songs, half of them minor; key from
music21's analysis of the score), every 2 s after 8 s: MIREX weighted score (mir_eval) of the
box's held key, the share of parallel/relative major-minor confusions; and the time the held key
takes to follow a modulation (two pieces in different keys spliced).

mir_eval is the judge here only (the ``test`` extra); nothing at run time imports it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kelly_edge.generate import theory
from kelly_edge.models import spec
from tools.evaluate import metrics

CHORD_CHANNEL, BASS_CHANNEL = 1, 2  # wire channels of the default config's chord and bass voices


def mirex_label(index: int) -> str:
    """mir_eval's name of a chord class: ``"A:min"``, ``"G:7"``, ``"N"`` (the evaluation's own table)."""
    from tools.evaluate.systems import BOX_LABELS

    return BOX_LABELS[spec.chord_name(index)]


_BY_PCS = {frozenset(theory.chord_pitch_classes(i)): i for i in range(spec.N_CHORDS)}


@dataclass
class Played:
    chords: list[tuple[float, float, int]]  # (start, end, chord class) of the box's chord voice
    chord_ons: list[tuple[float, int]]  # (t, pitch) note-ons of the chord voice
    bass_ons: list[tuple[float, int]]


def read_played(events: list[tuple[float, bytes]], end_s: float) -> Played:
    """The box's chords (from its chord voice's struck voicings) and note-ons, from sink events."""
    chord_ons: list[tuple[float, int]] = []
    bass_ons: list[tuple[float, int]] = []
    sounding: dict[int, float] = {}
    strikes: list[tuple[float, set[int]]] = []
    offs: list[float] = []
    for t, msg in events:
        if len(msg) < 3:
            continue
        kind, ch, note, vel = msg[0] & 0xF0, msg[0] & 0x0F, msg[1], msg[2]
        on = kind == 0x90 and vel > 0
        off = kind == 0x80 or (kind == 0x90 and vel == 0)
        if ch == BASS_CHANNEL and on:
            bass_ons.append((t, note))
        if ch != CHORD_CHANNEL:
            continue
        if on:
            chord_ons.append((t, note))
            if strikes and abs(strikes[-1][0] - t) < 1e-6:
                strikes[-1][1].add(note % 12)
            else:
                strikes.append((t, {note % 12}))
            sounding[note] = t
        elif off and note in sounding:
            del sounding[note]
            if not sounding:
                offs.append(t)
    chords: list[tuple[float, float, int]] = []
    for i, (t, pcs) in enumerate(strikes):
        nxt = strikes[i + 1][0] if i + 1 < len(strikes) else end_s
        stop = min([o for o in offs if t < o <= nxt] or [nxt])
        chords.append((t, stop, _BY_PCS.get(frozenset(pcs), spec.NO_CHORD)))
    return Played(chords, chord_ons, bass_ons)


def majmin(truth: list[tuple[float, float, int]], est: list[tuple[float, float, int]], start_s: float, end_s: float) -> float:
    """Duration-weighted mir_eval majmin score of ``est`` against ``truth`` over ``[start_s, end_s)``
    (the evaluation's :func:`tools.evaluate.metrics.chords_majmin`; gaps in ``est`` are N.C.)."""
    ref = [(a, min(b, end_s), mirex_label(c)) for a, b, c in sorted(truth) if a < end_s]
    changes: list[tuple[float, str]] = []
    segs = sorted(est)
    for i, (a, b, c) in enumerate(segs):
        changes.append((a, mirex_label(c)))
        if b < (segs[i + 1][0] if i + 1 < len(segs) else end_s):
            changes.append((b, "N"))  # the chord voice fell silent before the next strike
    return metrics.chords_majmin(ref, changes, end_s, warm_up_s=start_s)


def chord_tone_ratio(ons: list[tuple[float, int]], truth: list[tuple[float, float, int]]) -> tuple[int, int]:
    """``(in chord, counted)`` note-ons by the evaluation's rule (:func:`tools.evaluate.metrics.chord_tone_counts`:
    pitch class in the chord sounding; note-ons in the grace after a change and over N.C. not counted)."""
    return metrics.chord_tone_counts(ons, [(a, b, mirex_label(c)) for a, b, c in truth], warm_up_s=0.0)


def run_box(samples: np.ndarray, sample_rate: int, tempo_bpm: float, models_dir: Path | None = None):  # type: ignore[no-untyped-def]
    """The real engine over ``samples`` at ``tempo_bpm``; returns the sink's events."""
    from kelly_edge.config.loader import parse_config
    from kelly_edge.engine.engine import Engine
    from kelly_edge.midi.sinks import RecordingSink

    text = f"tempo: {{bpm: {tempo_bpm:.3f}, source: config}}"
    if models_dir is not None:
        text += f"\nmodels: {{dir: {models_dir}}}"
    sink = RecordingSink()
    engine = Engine(parse_config(text), sink, sample_rate=sample_rate)
    h = engine.hop_length
    heard: list[tuple[float, int]] = []  # (audio time of the decision, chord): the chord recognised
    for i in range(0, samples.size - h + 1, h):
        engine.process_hop(samples[i : i + h])
        chord = engine.generator.current_chord
        if not heard or heard[-1][1] != chord:
            heard.append((engine.time_s, chord))
    engine.close()
    return sink.events, heard


def segments_of(changes: list[tuple[float, int]], end_s: float) -> list[tuple[float, float, int]]:
    """``[(t, chord)]`` changes -> ``[(start, end, chord)]`` segments up to ``end_s``."""
    return [(t, changes[i + 1][0] if i + 1 < len(changes) else end_s, c) for i, (t, c) in enumerate(changes)]


def measure_chords(n: int, *, seed: int = 900_000, seconds: float = 32.0, models_dir: Path | None = None) -> dict:
    """The chord figures over ``n`` held-out accompaniments (see the module docstring)."""
    from tools.train import accompaniment as A

    rng = np.random.default_rng(seed)
    rows = []
    tot = {"chord": [0, 0], "bass": [0, 0], "random": [0, 0]}
    for i in range(n):
        acc = A.make(seed + i, held_out=True, seconds=seconds)
        x = A.render(acc)
        events, heard = run_box(x, 22050, acc.tempo_bpm, models_dir)
        played = read_played(events, acc.seconds)
        truth = [(s.start_s, s.end_s, s.chord) for s in acc.segments]
        score = majmin(truth, played.chords, 2.0, acc.seconds)
        score_heard = majmin(truth, segments_of(heard, acc.seconds), 2.0, acc.seconds)
        c = chord_tone_ratio(played.chord_ons, truth)
        b = chord_tone_ratio(played.bass_ons, truth)
        scale = theory.scale_pitch_classes(acc.tonic, acc.major)
        rand = [(t, int(rng.choice(scale))) for t, _ in played.chord_ons + played.bass_ons]
        r = chord_tone_ratio(rand, truth)
        for k, v in (("chord", c), ("bass", b), ("random", r)):
            tot[k][0] += v[0]
            tot[k][1] += v[1]
        rows.append({"seed": seed + i, "texture": acc.texture, "program": acc.program, "tempo": round(acc.tempo_bpm, 1),
                     "key": f"{spec.PITCH_NAMES[acc.tonic]} {'major' if acc.major else 'minor'}", "majmin": round(score, 3), "majmin_heard": round(score_heard, 3),
                     "chord_tone_chord": round(c[0] / max(1, c[1]), 3), "chord_tone_bass": round(b[0] / max(1, b[1]), 3)})
    return {
        "pieces": rows,
        "majmin_mean": float(np.mean([r["majmin"] for r in rows])),
        "majmin_heard_mean": float(np.mean([r["majmin_heard"] for r in rows])),
        "chord_tone_chord": tot["chord"][0] / max(1, tot["chord"][1]),
        "chord_tone_bass": tot["bass"][0] / max(1, tot["bass"][1]),
        "chord_tone_random_in_key": tot["random"][0] / max(1, tot["random"][1]),
    }


# --- key ------------------------------------------------------------------------------------------


def _key_name(index: int) -> str:
    return f"{spec.PITCH_NAMES[index % 12]} {'major' if index < 12 else 'minor'}"


def held_keys(samples: np.ndarray, sample_rate: int, every_s: float = 2.0, start_s: float = 8.0) -> list[tuple[float, int]]:
    """``[(t, key index)]`` of the feature context's held key every ``every_s`` from ``start_s``."""
    from kelly_edge.features.context import FeatureContext
    from kelly_edge.features.key import key_index

    ctx = FeatureContext(sample_rate=sample_rate)
    h = ctx.hop_length
    out, nxt = [], start_s
    for i in range(samples.size // h):
        ctx.update(samples[i * h : (i + 1) * h], step=0)
        t = (i + 1) * h / sample_rate
        if t >= nxt:
            nxt += every_s
            out.append((t, key_index(ctx.tonic, ctx.major)))
    return out


def key_pieces(n: int, seed: int) -> list:  # type: ignore[type-arg]
    from tools.train import symbolic as S

    chorales, _ = S.parse_files(S.chorale_paths()[::9][: n - n // 3], workers=1)
    tunes, _ = S.parse_files(S.essen_paths(("erk5",)), workers=1)
    rng = np.random.default_rng(seed)
    major = [p for p in tunes if p.major]
    minor = [p for p in tunes if not p.major]
    k = n // 6
    return chorales + [major[i] for i in rng.permutation(len(major))[:k]] + [minor[i] for i in rng.permutation(len(minor))[: n // 3 - k]]


def render_piece(piece, seed: int, seconds: float) -> tuple[np.ndarray, int]:  # type: ignore[no-untyped-def]
    """A random performance of a corpus piece (as the emotion renders); returns (audio, key index)."""
    import tempfile

    from kelly_edge.features.key import key_index
    from tools.render import load_wav_mono, render_midi
    from tools.train import build_audio as BA

    rng = np.random.default_rng(seed)
    perf = BA.random_performance(rng)
    perf.tempo_bpm = float(rng.uniform(70, 140))
    with tempfile.TemporaryDirectory(prefix="kelly-key-") as tmp:
        mid, wav = Path(tmp) / "p.mid", Path(tmp) / "p.wav"
        BA.write_midi(piece, perf, mid, seed=seed, max_seconds=seconds)
        render_midi(mid, wav, sample_rate=22050, max_seconds=seconds)
        x, _ = load_wav_mono(wav)
    return x, key_index((piece.tonic + perf.transpose) % 12, piece.major)


def measure_key(n: int, *, seed: int = 7, seconds: float = 40.0) -> dict:
    import mir_eval

    pieces = key_pieces(n, seed)
    audio = [render_piece(p, seed + i, seconds) for i, p in enumerate(pieces)]
    scores, kinds = [], {"correct": 0, "fifth": 0, "relative": 0, "parallel": 0, "other": 0}
    per_piece = []
    for (x, truth), p in zip(audio, pieces):
        got = [k for _, k in held_keys(x, 22050)]
        s = [mir_eval.key.weighted_score(_key_name(truth), _key_name(k)) for k in got]
        scores.extend(s)
        for v in s:
            kinds[{1.0: "correct", 0.5: "fifth", 0.3: "relative", 0.2: "parallel"}.get(v, "other")] += 1
        per_piece.append({"piece": p.name, "key": _key_name(truth), "held_at_end": _key_name(got[-1]) if got else None, "weighted": round(float(np.mean(s)), 3) if s else None})
    lat = []
    for i in range(0, len(audio) - 1, 2):
        (xa, ka), (xb, kb) = audio[i], audio[i + 1]
        if ka == kb:
            continue
        cut = min(xa.size, int(25 * 22050))
        x = np.concatenate([xa[:cut], xb[: int(25 * 22050)]])
        after = [(t - cut / 22050, k) for t, k in held_keys(x, 22050, every_s=0.1, start_s=cut / 22050)]
        lat.append(next((t for t, k in after if k == kb), math.inf))
    n_all = max(1, len(scores))
    return {
        "pieces": per_piece,
        "weighted_mean": float(np.mean(scores)) if scores else 0.0,
        "kinds": {k: round(v / n_all, 3) for k, v in kinds.items()},
        "modulation_latency_median_s": float(np.median(lat)) if lat else None,
        "modulation_within_8s": float(np.mean([v <= 8.0 for v in lat])) if lat else None,
    }


def measure_key_real(folder: Path) -> dict:
    """The held key on real recordings annotated by essentia (``tools/evaluate/annotations/*.json``
    of the evaluation: ``key``, ``source.path``/``offset``/``seconds``), every 2 s after 8 s."""
    import librosa
    import mir_eval

    files = sorted(Path(folder).glob("*.json"))
    if not files:
        raise SystemExit(f"error: no annotation files in {folder} (give the folder of the evaluation's *.json annotations)")
    rows = []
    for f in files:
        d = json.loads(f.read_text())
        src = d["source"]
        y, _ = librosa.load(src["path"], sr=22050, mono=True, offset=src.get("offset", 0.0), duration=src.get("seconds"))
        keys = held_keys(y.astype(np.float32), 22050)
        s = [mir_eval.key.weighted_score(d["key"], _key_name(k)) for _, k in keys]
        rows.append({"name": d["name"], "key": d["key"], "held_at_end": _key_name(keys[-1][1]) if keys else None,
                     "weighted": float(np.mean(s)) if s else 0.0, "weighted_end": s[-1] if s else 0.0})
    return {"pieces": rows, "weighted_mean": float(np.mean([r["weighted"] for r in rows])),
            "weighted_end_mean": float(np.mean([r["weighted_end"] for r in rows]))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.train.measure", description=__doc__.split("\n")[0])
    p.add_argument("what", choices=("chords", "key", "key-real"))
    p.add_argument("--annotations", type=Path, default=Path("tools/evaluate/annotations"), help="key-real: folder of annotation JSONs")
    p.add_argument("-n", type=int, default=None, help="pieces (default: chords 24, key 48)")
    p.add_argument("--models", type=Path, default=None, help="models folder (default: the shipped models_tflite/)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args(argv)
    if args.what == "chords":
        res = measure_chords(args.n or 24, models_dir=args.models)
        for r in res["pieces"]:
            print(r)
        print(f"majmin played {res['majmin_mean']:.3f}, recognised {res['majmin_heard_mean']:.3f}  chord-tone ratio: chord {res['chord_tone_chord']:.3f}  bass "
              f"{res['chord_tone_bass']:.3f}  random in key {res['chord_tone_random_in_key']:.3f}")
    elif args.what == "key-real":
        res = measure_key_real(args.annotations)
        for r in res["pieces"]:
            print(r)
        print(f"key weighted {res['weighted_mean']:.3f} (every 2 s after 8 s), {res['weighted_end_mean']:.3f} at the end")
    else:
        res = measure_key(args.n or 48)
        for r in res["pieces"]:
            print(r)
        print(f"key weighted {res['weighted_mean']:.3f}  {res['kinds']}  modulation: median {res['modulation_latency_median_s']} s, "
              f"within 8 s {res['modulation_within_8s']}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
