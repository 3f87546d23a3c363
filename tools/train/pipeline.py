"""The steps behind ``python -m tools.train``: build data, train + convert, evaluate, write the manifest.

``build``     music21 corpus (or ``--corpus-dir``) -> pieces -> per-model datasets in the cache
``train``     cached datasets -> Keras (design layer sizes, fixed seed) -> INT8 .tflite + manifest
``evaluate``  cached held-out rows -> float vs INT8 agreement and task metrics vs fallback/prior

Held-out rows are always the same pieces (seeded split of piece ids), so ``evaluate`` reproduces
the numbers ``train`` wrote into the manifest.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import pickle
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kelly_edge.errors import ModelError
from kelly_edge.fileio import write_atomic
from kelly_edge.models import spec
from tools.train import data as data_mod
from tools.train import fingerprint as fingerprint_mod
from tools.train import metrics as M
from tools.train.build_symbolic import TUNE_INTERVALS
from tools.train.data import Dataset, split_by_piece
from tools.train.symbolic import DatasetError, Piece, SkipReport

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
TEST_FRAC = 0.15


@dataclass
class Plan:
    """How big a run is. ``full()`` is the shipped models; ``smoke()`` the test-suite run."""

    seed: int = 0
    chorales: int | None = None  # None: all
    essen: tuple[str, ...] = ("altdeu10", "ballad10", "boehme10", "erk10", "kinder0", "han1")
    max_tunes: int | None = None
    audio_pieces: int = 200
    renders: int = 4
    audio_seconds: float = 25.0
    melody_transpositions: int = 2
    chord_renders: int = 400  # 240 -> 400 with the ~0.08 s chroma: held-out top-1 0.726 (240 renders, no chroma_now: 0.695)
    chord_seconds: float = 24.0
    groove_versions: int = 2
    epochs: int = 40
    max_steps: int | None = None
    workers: int = 2

    @classmethod
    def full(cls, seed: int = 0) -> "Plan":
        return cls(seed=seed)

    @classmethod
    def smoke(cls, seed: int = 0) -> "Plan":
        return cls(
            seed=seed, chorales=6, essen=("erk5",), max_tunes=16, audio_pieces=2, renders=1, audio_seconds=9.0,
            melody_transpositions=1, chord_renders=2, chord_seconds=8.0, groove_versions=1, epochs=1, max_steps=3,
            # in process: the suite's process has threads (JACK's owner thread, TensorFlow's), and a
            # fork pool's child can deadlock on a lock one of them held at the fork (seen in CI)
            workers=1,
        )  # fmt: skip


# --- build ------------------------------------------------------------------------------------------


def _cached_pieces(cache: Path, key: str, loader: Any) -> tuple[list[Piece], SkipReport]:
    path = cache / f"pieces_{key}.pkl"
    if path.is_file():
        with path.open("rb") as fh:
            return pickle.load(fh)
    got = loader()
    cache.mkdir(parents=True, exist_ok=True)
    write_atomic(path, pickle.dumps(got))
    return got


def load_pieces(plan: Plan, cache: Path, corpus_dir: Path | None) -> tuple[list[Piece], list[Piece], SkipReport, str]:
    """``(multi_voice, tunes, skips, description)``: chorales and folk tunes, or a user's folder."""
    from tools.train import symbolic as S

    if corpus_dir is not None:
        pieces, rep = S.pieces_from_folder(corpus_dir, workers=plan.workers)
        multi = [p for p in pieces if len(p.voices) >= 3]
        tunes = [p for p in pieces if len(p.voices) < 3]
        return multi, tunes, rep, f"{len(pieces)} pieces from {corpus_dir}"
    chorales, rep = _cached_pieces(cache, "chorales_" + str(plan.chorales), lambda: S.parse_files(S.chorale_paths(plan.chorales), workers=plan.workers))
    tunes, rep2 = [], SkipReport()
    todo = sorted((p for p in S.essen_paths(plan.essen) if not (cache / f"pieces_essen_{p.stem}.pkl").is_file()), key=lambda p: -p.stat().st_size)
    if todo:  # parse the missing files in parallel, cache each file's tunes on its own
        for path, (got, skips) in zip(todo, S.parse_each(todo, workers=plan.workers)):
            _cached_pieces(cache, f"essen_{path.stem}", lambda: (got, skips))
    for path in S.essen_paths(plan.essen):
        got, skips = _cached_pieces(cache, f"essen_{path.stem}", lambda: S.parse_files([path], workers=1))
        tunes.extend(got)
        rep2.merge(skips)
    if plan.max_tunes:
        tunes = tunes[: plan.max_tunes]
    rep.merge(rep2)
    multi = [p for p in chorales if len(p.voices) >= 3]
    desc = (
        f"music21 corpus: {len(multi)} Bach chorales and {len(tunes)} Essen folk songs "
        f"({', '.join(plan.essen)})"
    )
    return multi, tunes, rep, desc


def labelled_emotion(deam_dir: Path | None, emopia_dir: Path | None, plan: Plan) -> Dataset:
    """Emotion dataset from a user's DEAM audio or EMOPIA MIDI (rated labels instead of cues)."""
    from tools.train import build_audio as A

    if deam_dir is not None:
        from tools.datasets.deam import load_deam

        songs, rep = load_deam(deam_dir)
        ds, rep2 = A.emotion_from_labelled([(s.path, s.valence, s.arousal) for s in songs], render=False)
        ds.info["source"] = f"DEAM at {deam_dir}: {len(songs)} songs, static valence/arousal ratings (1..9 -> -1..1)"
    else:
        from tools.datasets.emopia import load_emopia

        assert emopia_dir is not None
        clips, rep = load_emopia(emopia_dir)
        ds, rep2 = A.emotion_from_labelled([(c.path, c.valence, c.arousal) for c in clips], render=True)
        ds.info["source"] = f"EMOPIA at {emopia_dir}: {len(clips)} clips rendered with FluidSynth, quadrant labels (+-0.6)"
    rep.merge(rep2)
    ds.info["skipped_files"] = rep.skipped
    if len(ds) == 0:
        raise DatasetError(f"no usable emotion rows; {rep.summary()}")
    return ds


def build(
    models: list[str],
    plan: Plan,
    cache: Path,
    *,
    corpus_dir: Path | None = None,
    deam_dir: Path | None = None,
    emopia_dir: Path | None = None,
    models_dir: Path | None = None,
) -> dict[str, Dataset]:
    """Build and cache the datasets of ``models``; returns them.

    ``corpus_dir`` replaces the music21 corpus for the symbolic models (and the renders);
    ``deam_dir``/``emopia_dir`` replace the cue-labelled renders for the emotion model. The dynamics
    rows' emotion input comes from the emotion model in ``models_dir`` (as on stage), so build
    dynamics after training emotion (``all`` does).
    """
    from tools.train import build_symbolic as B

    t0 = time.time()
    if corpus_dir is not None and not Path(corpus_dir).exists():
        raise DatasetError(f"dataset folder {corpus_dir} does not exist (give the folder holding your MIDI/MusicXML files)")
    labelled = deam_dir is not None or emopia_dir is not None
    if set(models) - {"harmony"} - ({"emotion"} if labelled else set()):  # harmony renders its own material
        multi, tunes, rep, desc = load_pieces(plan, cache, corpus_dir)
        if not multi and not tunes:
            raise DatasetError(f"no usable pieces ({rep.summary()})")
        log.info("%s; %s", desc, rep.summary())
    else:
        multi, tunes, rep, desc = [], [], SkipReport(), ""
    out: dict[str, Dataset] = {}
    s = plan.seed
    if "melody" in models:
        out["melody"] = B.build_melody(multi + tunes, seed=s, transpositions=plan.melody_transpositions)
        out["melody"].info["source"] = f"{desc}; top voice of each; {plan.melody_transpositions} random transpositions per piece"
    if "harmony" in models:
        from tools.train import build_chords

        out["harmony"] = build_chords.build_harmony(seed=s, renders=plan.chord_renders, seconds=plan.chord_seconds, workers=plan.workers)
    if "groove" in models:
        out["groove"] = B.build_groove(multi + tunes, seed=s, versions=plan.groove_versions)
        out["groove"].info["source"] = f"{desc}; 4/4 and paired 2/4 bars on a 16-step grid"
    for name, ds in out.items():  # save the symbolic sets before the (long) audio renders
        _save(ds, rep, cache)
    if "dynamics" in models or ("emotion" in models and not labelled):
        from tools.train import build_audio as A

        rng = np.random.default_rng(s)
        # pentatonic Chinese tunes (han*) have no clear major/minor, the valence cue: not rendered
        diatonic = [p for p in tunes if not p.name.startswith("han")] or tunes
        pool = A.balanced_modes(multi, plan.audio_pieces // 2, rng) + A.balanced_modes(diatonic, plan.audio_pieces - plan.audio_pieces // 2, rng)
        emo, dyn, arep = A.build_audio(
            pool, seed=s, renders=plan.renders, max_seconds=plan.audio_seconds, workers=plan.workers, models_dir=models_dir
        )
        if len(emo) == 0:
            raise DatasetError(f"audio rendering produced no rows ({arep.summary()})")
        src = (
            f"{len(pool)} corpus pieces (chorales and German folk songs, half major, half minor) x {plan.renders} FluidSynth renders of "
            f"{plan.audio_seconds:g} s (GM instrument, tempo 55-170, transposition, velocity, spread, accent, "
            f"articulation random), runtime FeatureContext features every 0.5 s after 5 s"
        )
        emo.info["source"] = src + "; cue-based labels (mode->valence; tempo, density, loudness->arousal)"
        dyn.info["source"] = src + (
            "; targets = the render's performance parameters (inverse rendering); VADI input = the emotion model "
            f"({dyn.info['emotion_sha256'][:12]}) as the engine follows it (the rows come from the Engine itself)"
        )
        if "emotion" in models:
            out["emotion"] = emo
        if "dynamics" in models:
            out["dynamics"] = dyn
    if "emotion" in models and labelled:
        out["emotion"] = labelled_emotion(deam_dir, emopia_dir, plan)
    for name in ("emotion", "dynamics"):
        if name in out:
            _save(out[name], rep, cache)
    log.info("build done in %.1f s", time.time() - t0)
    return out


def _save(ds: Dataset, rep: SkipReport, cache: Path) -> None:
    if len(ds) == 0:
        raise DatasetError(f"{ds.name}: the data holds no usable rows ({rep.summary()})")
    ds.info["skipped_files"] = rep.skipped + int(ds.info.get("skipped_renders", 0))
    ds.info["skipped_examples"] = rep.examples[:3]
    data_mod.save(ds, cache)


# --- train + convert --------------------------------------------------------------------------------


def split(ds: Dataset, plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    return split_by_piece(ds.groups, test_frac=TEST_FRAC, seed=plan.seed)


def train_one(ds: Dataset, plan: Plan, cache: Path) -> tuple[bytes, dict[str, Any]]:
    """Train, convert and evaluate one model. Returns the flatbuffer and its manifest entry."""
    from tools.train import convert, fit

    t0 = time.time()
    tr, te = split(ds, plan)
    trained = fit.train(ds, tr, seed=plan.seed, epochs=plan.epochs, max_steps=plan.max_steps)
    data = convert.to_int8(trained, ds.x[tr], seed=plan.seed)
    keras_path = cache / f"{ds.name}.keras"
    trained.model.save(str(keras_path))
    stats = {
        "input_mean": trained.input_mean.tolist(),
        "input_std": trained.input_std.tolist(),
        "output_mean": None if trained.output_mean is None else trained.output_mean.tolist(),
        "output_std": None if trained.output_std is None else trained.output_std.tolist(),
    }
    i, o = convert.check_model_bytes(data, ds.name)
    entry: dict[str, Any] = {
        "file": spec.BY_NAME[ds.name].filename,
        "sha256": convert.sha256_bytes(data),
        "n_in": spec.BY_NAME[ds.name].n_in,
        "n_out": spec.BY_NAME[ds.name].n_out,
        **stats,
        "input_quant": convert.quant_params(i),
        "output_quant": convert.quant_params(o),
        "layers": [spec.BY_NAME[ds.name].n_in, *spec.BY_NAME[ds.name].hidden, spec.BY_NAME[ds.name].n_out],
        "output_kind": _output_doc(ds.name),
        "fingerprint": fingerprint_mod.fingerprint(ds.name),
        "data": ds.info.get("source", ""),
        "rows": {"train": int(len(tr)), "test": int(len(te))},
        "pieces": {"train": int(len(np.unique(ds.groups[tr]))), "test": int(len(np.unique(ds.groups[te])))},
        "split": _split_doc(ds.name),
        "skipped_files": ds.info.get("skipped_files", 0),
        "seed": plan.seed,
        "epochs": trained.epochs,
        "trained_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "train_seconds": round(time.time() - t0, 1),
    }
    if ds.name == "dynamics":  # the emotion model its VADI inputs came from (a test checks it is the shipped one)
        entry["emotion_sha256"] = ds.info.get("emotion_sha256", "fallback")
    entry["metrics"] = evaluate_one(ds, plan, data, entry, trained.model)
    (cache / f"{ds.name}.stats.json").write_text(json.dumps(stats))
    return data, entry


def _split_doc(name: str) -> str:
    if name == "harmony":  # rendered accompaniments, each its own group
        return f"by piece, seeded ({TEST_FRAC:.0%} of pieces held out; 10% of training pieces for early stopping)"
    return (f"by tune, seeded ({TEST_FRAC:.0%} of tunes held out, files whose melodies open with the same "
            f"{TUNE_INTERVALS} intervals being one tune; 10% of training tunes for early stopping)")


def _output_doc(name: str) -> str:
    return {
        "emotion": "linear on standardised targets; runner de-standardises with output_mean/std",
        "melody": "softmax over MIDI notes 0..127 (in graph)",
        "harmony": "softmax over 64; 0..59 chords, 60 N.C., 61..63 reserved (logits fixed at -12, ~0)",
        "dynamics": "sigmoid (in graph): every output 0..1 in spec units; output_mean/std null",
        "groove": "sigmoid hit_prob (0..1) + 0.5*tanh micro_timing (-0.5..0.5), in graph",
    }[name]


def train(models: list[str], plan: Plan, cache: Path, out_dir: Path) -> dict[str, dict[str, Any]]:
    """Train + convert each model; write the .tflite files (tmp + rename), then the manifest last."""
    from tools.train import convert

    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, tuple[bytes, dict[str, Any]]] = {}
    for name in models:
        ds = data_mod.load(name, cache)
        results[name] = train_one(ds, plan, cache)
        log.info("%s: %s", name, results[name][1]["metrics"])
    for name, (data, _) in results.items():
        convert.write_model(data, name, out_dir)
    entries = {n: e for n, (_, e) in results.items()}
    write_manifest(out_dir, entries)
    size = convert.total_size(out_dir)
    log.info("models total %d bytes", size)
    return entries


def write_manifest(out_dir: Path, entries: dict[str, dict[str, Any]]) -> Path:
    """Merge ``entries`` into ``<out_dir>/manifest.json`` (format 1) and write it atomically."""
    path = out_dir / MANIFEST
    current: dict[str, Any] = {"format": 1, "models": {}}
    if path.is_file():
        try:
            loaded = json.loads(path.read_text())
            if isinstance(loaded, dict) and isinstance(loaded.get("models"), dict):
                current = loaded
        except ValueError:
            log.warning("%s unreadable: rewriting it", path)
    current["format"] = 1
    current["models"].update(entries)
    current["models"] = {n: current["models"][n] for n in spec.MODEL_NAMES if n in current["models"]}
    write_atomic(path, (json.dumps(current, indent=1) + "\n").encode())
    return path


# --- evaluate ---------------------------------------------------------------------------------------


def evaluate_one(ds: Dataset, plan: Plan, data: bytes | Path, entry: dict[str, Any], float_model: Any | None) -> dict[str, Any]:
    """Float vs INT8 agreement and task metrics (model INT8, model float, fallback, prior) on held-out pieces."""
    from tools.train import tflite_eval as TE

    tr, te = split(ds, plan)
    x, y = ds.x[te], ds.y[te]
    mean = np.asarray(entry["input_mean"], np.float32)
    std = np.asarray(entry["input_std"], np.float32)
    om = None if entry.get("output_mean") is None else np.asarray(entry["output_mean"], np.float32)
    osd = None if entry.get("output_std") is None else np.asarray(entry["output_std"], np.float32)
    it = TE.interpreter(data if isinstance(data, bytes) else str(data))
    q_net = TE.run_int8(it, x, mean, std)
    result: dict[str, Any] = {"held_out_rows": int(len(te))}
    if float_model is not None:
        f_net = np.asarray(float_model.predict((x - mean) / np.maximum(std, 1e-6), batch_size=1024, verbose=0), np.float32)
        result["int8_vs_float"] = TE.agreement(f_net, q_net)
        result["float"] = M.task_metrics(ds.name, y, TE.destandardise(f_net, om, osd))
    result["model"] = M.task_metrics(ds.name, y, TE.destandardise(q_net, om, osd))
    result["fallback"] = M.task_metrics(ds.name, y, M.fallback_predictions(ds.name, x))
    result["baseline"] = M.task_metrics(ds.name, y, M.baseline_predictions(ds.name, ds.y[tr], len(te)))
    key, higher = M.PRIMARY[ds.name]
    result["primary"] = {"metric": key, "higher_is_better": higher}
    result["beats_fallback"] = M.beats(ds.name, result["model"], result["fallback"])
    result["beats_baseline"] = M.beats(ds.name, result["model"], result["baseline"])
    if ds.name == "harmony":
        result["reserved_prob_max"] = float(TE.destandardise(q_net, om, osd)[:, spec.N_CHORD_CLASSES :].max())
    return result


def evaluate(models: list[str], plan: Plan, cache: Path, out_dir: Path, *, update_manifest: bool = False) -> dict[str, dict[str, Any]]:
    """Recompute every model's metrics from the cache and the shipped files (float model if cached)."""
    path = out_dir / MANIFEST
    if not path.is_file():
        raise ModelError(f"{path} not found: train first (python -m tools.train all)")
    manifest = json.loads(path.read_text())
    results = {}
    for name in models:
        entry = manifest["models"].get(name)
        if entry is None:
            raise ModelError(f"{path}: no entry for {name}")
        ds = data_mod.load(name, cache)
        float_model = None
        kpath = cache / f"{name}.keras"
        if kpath.is_file():
            import keras

            from tools.train.nets import CUSTOM_OBJECTS

            float_model = keras.models.load_model(str(kpath), custom_objects=CUSTOM_OBJECTS, compile=False)
        results[name] = evaluate_one(ds, plan, out_dir / entry["file"], entry, float_model)
        entry["metrics"] = results[name]
    if update_manifest:
        write_manifest(out_dir, {n: manifest["models"][n] for n in models})
    return results


def table(results: dict[str, dict[str, Any]]) -> str:
    """Markdown table: per model, INT8 vs float agreement and primary/secondary metrics."""
    rows = [
        "| model | INT8 vs float cosine | argmax agree | metric | INT8 model | float model | fallback | prior baseline | beats both |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        agree = r.get("int8_vs_float", {})
        verdict = "yes" if r["beats_fallback"] and r["beats_baseline"] else "NO"
        for j, k in enumerate(r["model"].keys()):
            f = r.get("float", {}).get(k)
            first = j == 0
            cos = f"{agree['cosine_mean']:.4f}" if first and agree else ""
            arg = f"{agree['argmax_agreement']:.3f}" if first and agree else ""
            rows.append(
                f"| {name if first else ''} | {cos} | {arg} | {k}{' (primary)' if k == r['primary']['metric'] else ''} | "
                f"{r['model'][k]:.3f} | {'' if f is None else f'{f:.3f}'} | {r['fallback'][k]:.3f} | "
                f"{r['baseline'][k]:.3f} | {verdict if first else ''} |"
            )
    return "\n".join(rows)


def plan_dict(plan: Plan) -> dict[str, Any]:
    return asdict(plan)
