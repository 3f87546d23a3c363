"""HarmonyPredictor rows: rendered accompaniment (:mod:`tools.train.accompaniment`) -> "the chord now".

Each accompaniment is rendered with FluidSynth and fed hop by hop through the runtime's own
:class:`~kelly_edge.features.context.FeatureContext`; on every 16th step of its known tempo
(after a 1 s warm-up) a row is laid out by the runtime encoder
(:func:`kelly_edge.features.encode.encode_harmony`) and labelled with the chord sounding at that
instant. The key context is the context's own held key, errors included: what the box has on
stage. One group per accompaniment (the split holds whole renders out).
"""

from __future__ import annotations

import logging
import multiprocessing as mp

import numpy as np

from kelly_edge.features import encode
from kelly_edge.models import spec
from tools.train import accompaniment as acc_mod
from tools.train.data import Dataset

log = logging.getLogger(__name__)

WARMUP_S = 1.0


def rows_of(acc: acc_mod.Accompaniment, samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x (n, 128), y (n,) chord labels, t (n,) seconds)`` on every 16th step of ``acc``."""
    from kelly_edge.features.context import FeatureContext

    ctx = FeatureContext(sample_rate=sample_rate)
    h = ctx.hop_length
    hop_s = h / sample_rate
    step_s = 15.0 / acc.tempo_bpm
    row = np.zeros(spec.HARMONY.n_in, dtype=np.float32)
    xs, ys, ts = [], [], []
    next_k = int(np.ceil(WARMUP_S / step_s))
    for i in range(samples.shape[0] // h):
        t = (i + 1) * hop_s
        ctx.update(samples[i * h : (i + 1) * h], step=int(t / step_s) % spec.N_STEPS)
        if t >= next_k * step_s:
            next_k += 1
            encode.encode_harmony_context(row, ctx)
            xs.append(row.copy())
            ys.append(acc.chord_at(t))
            ts.append(t)
    return np.array(xs, np.float32).reshape(-1, spec.HARMONY.n_in), np.array(ys, np.int64), np.array(ts)


_ROLLED = tuple(spec.HARMONY.input_slice(n) for n in (
    "chroma_short", "chroma_window", "bass_short", "bass_chroma", "chroma_long", "tonic", "chroma_now", "bass_now"))


def transposed(x: np.ndarray, y: np.ndarray, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and labels moved ``shift`` semitones up: every pitch-class input (chroma, bass, the
    tonic one-hot) rolled, chord roots moved; mode and key clarity unchanged. Transposing the
    audio would give (nearly) these rows: the augmentation multiplies the keys each texture is heard in."""
    out = x.copy()
    for part in _ROLLED:
        out[:, part] = np.roll(x[:, part], shift, axis=1)
    roots = y // len(spec.CHORD_QUALITIES)
    moved = ((roots + shift) % 12) * len(spec.CHORD_QUALITIES) + y % len(spec.CHORD_QUALITIES)
    return out, np.where(y >= spec.N_CHORDS, y, moved)


def augment(ds: Dataset, *, shifts: int, seed: int) -> Dataset:
    """``ds`` plus ``shifts`` random transpositions (1..11 semitones, per render) of every row."""
    rng = np.random.default_rng(seed)
    xs, ys, gs = [ds.x], [ds.y], [ds.groups]
    for g in np.unique(ds.groups):
        rows = ds.groups == g
        for k in rng.permutation(np.arange(1, 12))[:shifts]:
            x, y = transposed(ds.x[rows], ds.y[rows], int(k))
            xs.append(x)
            ys.append(y)
            gs.append(ds.groups[rows])
    info = dict(ds.info, rows=int(sum(len(v) for v in ys)), transpositions=shifts)
    info["source"] = ds.info.get("source", "") + f"; each render also at {shifts} random transpositions (rows rolled, roots moved)"
    return Dataset(ds.name, np.concatenate(xs), np.concatenate(ys), np.concatenate(gs), info)


def _task(args: tuple[int, bool, float]) -> tuple[np.ndarray, np.ndarray, str] | str:
    seed, held_out, seconds = args
    from tools.render import RenderError

    acc = acc_mod.make(seed, held_out=held_out, seconds=seconds)
    try:
        x = acc_mod.render(acc)
    except (RenderError, OSError, ValueError) as err:
        return f"accompaniment {seed}: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
    xs, ys, _ = rows_of(acc, x, 22050)
    return xs, ys, acc.texture


def build_harmony(*, seed: int, renders: int, seconds: float = acc_mod.SECONDS, workers: int = 2, shifts: int = 5) -> Dataset:
    """The harmony dataset from ``renders`` seeded accompaniments (training textures only), each
    also at ``shifts`` transpositions (:func:`augment`)."""
    seeds = [seed * 100_003 + i for i in range(renders)]
    tasks = [(s, False, seconds) for s in seeds]
    if workers > 1 and len(tasks) > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            results = list(pool.imap(_task, tasks, chunksize=1))
    else:
        results = [_task(t) for t in tasks]
    xs, ys, gs, skipped, textures = [], [], [], [], {}
    for g, r in enumerate(results):
        if isinstance(r, str):
            skipped.append(r)
            continue
        xs.append(r[0])
        ys.append(r[1])
        gs.append(np.full(len(r[1]), g, np.int64))
        textures[r[2]] = textures.get(r[2], 0) + 1
    x = np.concatenate(xs) if xs else np.zeros((0, spec.HARMONY.n_in), np.float32)
    y = np.concatenate(ys) if ys else np.zeros(0, np.int64)
    info = {
        "rows": int(len(y)),
        "pieces": len(xs),
        "skipped_renders": len(skipped),
        "textures": textures,
        "source": (
            f"{len(xs)} rendered accompaniments of {seconds:g} s (tools/train/accompaniment.py: random progressions in all "
            f"keys, textures {', '.join(acc_mod.TEXTURES)}, bass/drums/melody random, 60-160 BPM), runtime FeatureContext "
            "features on every 16th step, labelled with the chord sounding then"
        ),
    }
    log.info("harmony: %d rows from %d renders (%d skipped)", len(y), len(xs), len(skipped))
    ds = Dataset("harmony", x, y, np.concatenate(gs) if gs else np.zeros(0, np.int64), info)
    return augment(ds, shifts=shifts, seed=seed) if shifts and len(ds) else ds
