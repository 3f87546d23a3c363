"""Rendered-audio rows for the EmotionRecognizer and the DynamicsEngine.

Each task renders one corpus piece with FluidSynth (``tools.render.render_midi``) as a chosen
*performance*: GM instrument, tempo, transposition, base velocity, velocity spread, accent depth on
strong 16ths and articulation (note length ratio). The WAV is fed hop by hop through the box's own
:class:`~kelly_edge.engine.engine.Engine` (its FeatureContext, and its emotion model followed as on
stage), and after a warm-up a row is taken every ``every_s`` seconds with the runtime's encoders.
The WAV is deleted right away.

Labels:

- **emotion** (cue-based, documented in :mod:`tools.train.cues`): valence/arousal/dominance/intensity
  from the piece's mode and the performance's tempo, note density and velocity; families from the
  runtime thesaurus; ``tonal``/``key_corr``/``descriptors`` are the heard evidence passed through.
- **dynamics** ("inverse rendering"): the net is asked for the performance parameters the audio
  was rendered with, so the box plays back at the player's dynamics: velocity = base velocity/127,
  velocity_spread = spread/30, accent = accent/40, length = articulation ratio. The expression
  outputs are fixed, documented rules of those measured parameters (not measured themselves):
  cc11 = velocity; cc74 = 0.15 + 0.7 x velocity; cc1 = 0.5 x length x (1 - tempo cue);
  cc64 = clip((length - 0.7) / 0.3, 0, 1); voice_balance = 0.8, 0.55, 0.65 (constants);
  humanize = spread / 30; reserved = 0.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kelly_edge.features import encode
from kelly_edge.models import spec
from tools.train.cues import cue_vadi, families
from tools.train.data import Dataset
from tools.train.symbolic import Piece, SkipReport

log = logging.getLogger(__name__)

PROGRAMS = (0, 4, 11, 19, 24, 25, 40, 42, 48, 56, 65, 71, 73)
"""GM programs used: piano, e-piano, vibraphone, organ, nylon/steel guitar, violin, cello,
strings, trumpet, alto sax, clarinet, flute."""


@dataclass
class Performance:
    """How one render is played (all chosen by a seeded generator)."""

    program: int
    tempo_bpm: float
    transpose: int
    velocity: int  # base MIDI velocity 1..127
    spread: float  # random velocity spread, velocity units 0..30 (std)
    accent: float  # extra velocity on beats (steps 0, 4, 8, 12), 0..40
    length: float  # note length / notated length, 0.3..1
    gain_db: float  # input gain offset applied by the feature context


def random_performance(rng: np.random.Generator) -> Performance:
    return Performance(
        program=int(rng.choice(PROGRAMS)),
        tempo_bpm=float(rng.uniform(55, 170)),
        transpose=int(rng.integers(-5, 7)),
        velocity=int(rng.integers(30, 121)),
        spread=float(rng.uniform(0, 30)),
        accent=float(rng.uniform(0, 40)),
        length=float(rng.uniform(0.3, 1.0)),
        gain_db=float(rng.uniform(-2, 2)),
    )


def write_midi(piece: Piece, perf: Performance, path: Path, *, seed: int, max_seconds: float) -> float:
    """Write the performance of ``piece`` as a type-0 MIDI file; returns its notes per second."""
    import mido

    rng = np.random.default_rng(seed)
    tpb = 480
    spb = 60.0 / perf.tempo_bpm
    events: list[tuple[int, int, int, int]] = []  # (tick, order, note, velocity) order 0 = off first
    onsets = set()
    for v in piece.voices:
        for onset, dur, pitch, pos in zip(v.onset, v.dur, v.pitch, v.pos):
            if onset * spb >= max_seconds:
                continue
            note = int(pitch) + perf.transpose
            if not 0 <= note <= 127:
                continue
            step = int(round(pos * 4)) % 16
            vel = perf.velocity + (perf.accent if step % 4 == 0 else 0.0) + perf.spread * rng.standard_normal()
            vel = int(min(127, max(1, round(vel))))
            start = int(round(onset * tpb))
            end = start + max(1, int(round(dur * perf.length * tpb)))
            events.append((start, 1, note, vel))
            events.append((end, 0, note, 0))
            onsets.add(start)
    events.sort()
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=int(round(spb * 1e6)), time=0))
    track.append(mido.Message("program_change", program=perf.program, channel=0, time=0))
    last = 0
    for tick, kind, note, vel in events:
        track.append(mido.Message("note_on" if kind else "note_off", note=note, velocity=vel if kind else 0, time=tick - last))
        last = tick
    end_tick = last + tpb
    track.append(mido.Message("control_change", control=120, value=0, time=end_tick - last))
    track.append(mido.MetaMessage("end_of_track", time=0))
    mf = mido.MidiFile(type=0, ticks_per_beat=tpb)
    mf.tracks.append(track)
    mf.save(str(path))
    played = min(max_seconds, (last / tpb) * spb) or 1.0
    return len(onsets) / max(1.0, played)


@dataclass
class Task:
    piece: Piece
    perf: Performance
    group: int
    seed: int
    max_seconds: float
    warmup_s: float
    every_s: float
    sample_rate: int
    models_dir: Path | None = None  # the models the engine runs (its emotion makes the dynamics VADI)


def emotion_targets(x_emotion: np.ndarray, vadi: np.ndarray) -> np.ndarray:
    """``(64,)`` emotion target: cue VADI, its families, and the heard evidence passed through."""
    s = spec.EMOTION
    y = np.zeros(s.n_out, dtype=np.float32)
    y[spec.Emo.VADI] = vadi
    y[spec.Emo.FAMILIES] = families(vadi)
    y[spec.Emo.TONAL] = x_emotion[s.input_slice("chroma_long")]
    y[spec.Emo.KEY_CORR] = x_emotion[s.input_slice("key_corr")]
    y[spec.Emo.DESCRIPTORS] = x_emotion[s.input_slice("descriptors")]
    return y


def dynamics_targets(perf: Performance) -> np.ndarray:
    """``(16,)`` dynamics target from the known performance (see module doc for each rule)."""
    y = np.zeros(spec.DYNAMICS.n_out, dtype=np.float32)
    vel = perf.velocity / 127.0
    tempo_cue = min(1.0, max(0.0, (perf.tempo_bpm - 55.0) / 115.0))
    y[0] = vel
    y[1] = perf.spread / 30.0
    y[2] = perf.accent / 40.0
    y[3] = perf.length
    y[4] = 0.5 * perf.length * (1.0 - tempo_cue)
    y[5] = vel
    y[6] = 0.15 + 0.7 * vel
    y[7] = min(1.0, max(0.0, (perf.length - 0.7) / 0.3))
    y[8:11] = (0.8, 0.55, 0.65)
    y[11] = perf.spread / 30.0
    return y


STAGE_CONFIG = "tempo: {{bpm: {bpm:.3f}, source: config}}\naudio: {{input_gain_db: {gain:.4f}}}\nscheduler: {{budget_ms: 100}}"
"""The box's default config at the render's known tempo and gain; the wide model budget keeps the
emotion model from being deferred (a loaded build machine would otherwise change the rows)."""


def features_from_audio(
    samples: np.ndarray, sample_rate: int, *, tempo_bpm: float | None, warmup_s: float, every_s: float, gain_db: float = 0.0,
    models_dir: Path | None = None,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Run the box's own :class:`~kelly_edge.engine.engine.Engine` over ``samples`` ``(n,) float32``
    and sample what its models are given, every ``every_s`` after ``warmup_s``.

    Returns ``(emotion_input (128,), dynamics_descriptor_parts, followed_vadi (4,))`` triples: the
    emotion encoder's input from the engine's FeatureContext; ``(descriptors (16,), accents (16,))``
    stacked as ``(2, 16)``; and the engine's ``emotion_vadi``, the VADI the dynamics model is given
    on stage (the emotion model in ``models_dir`` run every 16th, smoothed and intent-blended by the
    engine itself; the default config has no intent). The grid runs at ``tempo_bpm`` (the box's
    starting 100 BPM when unknown). Driving the engine rather than a copy of its emotion path keeps
    training and stage the same code.
    """
    from kelly_edge.config.loader import parse_config
    from kelly_edge.config.schema import default_config
    from kelly_edge.engine.engine import Engine
    from kelly_edge.midi.sinks import RecordingSink
    from kelly_edge.models.runner import load_all

    bpm = tempo_bpm or default_config().tempo.bpm
    config = parse_config(STAGE_CONFIG.format(bpm=bpm, gain=gain_db))
    engine = Engine(config, RecordingSink(), sample_rate=sample_rate, models=load_all(models_dir or models_folder()))
    ctx = engine.ctx
    h = engine.hop_length
    x_e = np.zeros(spec.EMOTION.n_in, dtype=np.float32)
    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    next_t = warmup_s
    for i in range(samples.shape[0] // h):
        engine.process_hop(samples[i * h : (i + 1) * h])
        if engine.time_s >= next_t:
            next_t += every_s
            if ctx.silent and ctx.descriptors[spec.Desc.INDEX["silence"]] > 0.9:
                continue  # the piece has ended: nothing to learn from
            encode.encode_emotion(
                x_e,
                mel_summary=ctx.mel_summary,
                chroma_window=ctx.chroma_window,
                chroma_long=ctx.chroma_long,
                key_corr=ctx.key_corr,
                tonic=ctx.tonic,
                descriptors=ctx.descriptors,
            )
            rows.append((x_e.copy(), np.stack([ctx.descriptors, ctx.heard_bar]).astype(np.float32), engine.emotion_vadi.copy()))
    engine.close()
    return rows


def models_folder() -> Path:
    """The folder the box loads its models from by default (the bundled ``models_tflite``)."""
    from kelly_edge.config.schema import default_config, models_dir

    return models_dir(default_config())


def emotion_sha256(models_dir: Path | None) -> str:
    """sha256 of the emotion model the box loads from ``models_dir`` (default :func:`models_folder`),
    ``"fallback"`` when it would use the fallback: what the dynamics rows were made with."""
    from kelly_edge.models.runner import load_model, sha256_of

    loaded = load_model(spec.EMOTION, models_dir or models_folder())
    return sha256_of(Path(loaded.reason)) if loaded.status == "trained" else "fallback"


def _run_task(task: Task) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray], int, str | None]:
    """Render, extract, label one performance. Returns (xe, ye, xd, yd, group, error)."""
    from tools.render import RenderError, load_wav_mono, render_midi

    p = task.perf
    xe: list[np.ndarray] = []
    ye: list[np.ndarray] = []
    xd: list[np.ndarray] = []
    yd: list[np.ndarray] = []
    with tempfile.TemporaryDirectory(prefix="kelly-train-") as tmp:
        mid = Path(tmp) / "perf.mid"
        wav = Path(tmp) / "perf.wav"
        try:
            nps = write_midi(task.piece, p, mid, seed=task.seed, max_seconds=task.max_seconds)
            render_midi(mid, wav, sample_rate=task.sample_rate, max_seconds=task.max_seconds, timeout_s=60.0)
            samples, sr = load_wav_mono(wav)
        except (RenderError, OSError, ValueError) as err:
            return xe, ye, xd, yd, task.group, f"{task.piece.name}: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
    vadi = cue_vadi(major=task.piece.major, tempo_bpm=p.tempo_bpm, notes_per_s=nps, loudness=p.velocity / 127.0)
    y_dyn = dynamics_targets(p)
    x_d = np.zeros(spec.DYNAMICS.n_in, dtype=np.float32)
    for x_e, parts, followed in features_from_audio(
        samples, sr, tempo_bpm=p.tempo_bpm, warmup_s=task.warmup_s, every_s=task.every_s, gain_db=p.gain_db, models_dir=task.models_dir
    ):
        xe.append(x_e)
        ye.append(emotion_targets(x_e, vadi))
        # the dynamics net gets the VADI the engine hands it on stage (the trained emotion model's,
        # smoothed and intent-blended by the engine), never the cue label itself: that would leak
        # the velocity target
        encode.encode_dynamics(x_d, vadi=followed, descriptors=parts[0], accents=parts[1])
        xd.append(x_d.copy())
        yd.append(y_dyn)
    return xe, ye, xd, yd, task.group, None


def build_audio(
    pieces: list[Piece],
    *,
    seed: int,
    renders: int,
    max_seconds: float,
    warmup_s: float = 5.0,
    every_s: float = 0.5,
    sample_rate: int = 22050,
    workers: int = 2,
    models_dir: Path | None = None,
) -> tuple[Dataset, Dataset, SkipReport]:
    """Emotion and dynamics datasets from ``renders`` random performances of each piece; the
    dynamics inputs carry the emotion model in ``models_dir`` (default the bundled one) as the
    engine follows it."""
    from tools.train.build_symbolic import tune_ids

    rng = np.random.default_rng(seed)
    tune = tune_ids(pieces)  # rows are grouped by tune: two files of one chorale never straddle the split
    tasks = [
        Task(pc, random_performance(rng), tune[gi], int(rng.integers(1 << 31)), max_seconds, warmup_s, every_s, sample_rate, models_dir)
        for gi, pc in enumerate(pieces)
        for _ in range(renders)
    ]
    report = SkipReport()
    xe, ye, xd, yd, ge = [], [], [], [], []
    if workers > 1 and len(tasks) > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            results = list(pool.imap(_run_task, tasks, chunksize=1))
    else:
        results = [_run_task(t) for t in tasks]
    for a, b, c, d, g, err in results:
        if err is not None:
            report.add(err.split(":")[0], err)
            continue
        xe.extend(a)
        ye.extend(b)
        xd.extend(c)
        yd.extend(d)
        ge.extend([g] * len(a))
    groups = np.array(ge, dtype=np.int64)
    info = {
        "rows": len(xe),
        "pieces": int(len(np.unique(groups))),
        "renders": len(tasks),
        "audio_seconds": float(len(tasks) * max_seconds),
        "skipped_renders": report.skipped,
        "performances": [asdict(t.perf) for t in tasks[:3]],
    }
    emo = Dataset("emotion", np.array(xe, np.float32).reshape(-1, spec.EMOTION.n_in), np.array(ye, np.float32).reshape(-1, spec.EMOTION.n_out), groups, dict(info))
    dyn_info = dict(info, emotion_sha256=emotion_sha256(models_dir))  # the emotion model its VADI inputs came from
    dyn = Dataset("dynamics", np.array(xd, np.float32).reshape(-1, spec.DYNAMICS.n_in), np.array(yd, np.float32).reshape(-1, spec.DYNAMICS.n_out), groups.copy(), dyn_info)
    log.info("audio: %d rows from %d renders (%d skipped)", len(xe), len(tasks), report.skipped)
    return emo, dyn, report


def balanced_modes(pieces: list[Piece], n: int, rng: np.random.Generator) -> list[Piece]:
    """Up to ``n`` pieces, half major and half minor (as available), in a seeded order."""
    major = [p for p in pieces if p.major]
    minor = [p for p in pieces if not p.major]
    rng.shuffle(major)  # type: ignore[arg-type]
    rng.shuffle(minor)  # type: ignore[arg-type]
    half = n // 2
    out = major[:half] + minor[: n - half]
    return out




# --- labelled sets users own (DEAM audio, EMOPIA MIDI) ------------------------------------------


def labelled_targets(x_emotion: np.ndarray, valence: float, arousal: float) -> np.ndarray:
    """Emotion target from *rated* valence/arousal; dominance unknown (0), intensity = distance."""
    inten = min(1.0, float(np.hypot(valence, arousal)) / np.sqrt(2.0) + 0.1)
    return emotion_targets(x_emotion, np.array([valence, arousal, 0.0, inten], dtype=np.float32))


def emotion_from_labelled(
    items: list[tuple[Path, float, float]],
    *,
    render: bool,
    sample_rate: int = 22050,
    max_seconds: float = 45.0,
    warmup_s: float = 5.0,
    every_s: float = 0.5,
) -> tuple[Dataset, SkipReport]:
    """Emotion rows from ``(path, valence, arousal)`` items: audio files, or MIDI rendered first.

    Files that cannot be decoded or rendered are skipped and counted. One group per file.
    """
    from tools.render import RenderError, load_wav_mono, render_midi

    report = SkipReport()
    xe, ye, ge = [], [], []
    for gi, (path, v, a) in enumerate(items):
        try:
            if render:
                with tempfile.TemporaryDirectory(prefix="kelly-train-") as tmp:
                    wav = Path(tmp) / "clip.wav"
                    render_midi(path, wav, sample_rate=sample_rate, max_seconds=max_seconds, timeout_s=60.0)
                    samples, sr = load_wav_mono(wav)
            else:
                import librosa

                y, rate = librosa.load(str(path), sr=sample_rate, mono=True, duration=max_seconds)
                samples, sr = y.astype(np.float32), int(rate)
        except (RenderError, OSError, ValueError, EOFError, RuntimeError) as err:
            report.add(str(path), f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
            continue
        for x_e, _, _ in features_from_audio(samples, sr, tempo_bpm=None, warmup_s=warmup_s, every_s=every_s):
            xe.append(x_e)
            ye.append(labelled_targets(x_e, v, a))
            ge.append(gi)
    ds = Dataset(
        "emotion",
        np.array(xe, np.float32).reshape(-1, spec.EMOTION.n_in),
        np.array(ye, np.float32).reshape(-1, spec.EMOTION.n_out),
        np.array(ge, np.int64),
        {"rows": len(xe), "pieces": len(items) - report.skipped, "skipped_files": report.skipped},
    )
    return ds, report
