"""Training rows for the symbolic models (melody, groove) from :class:`~tools.train.symbolic.Piece` s.

Inputs are laid out only by :mod:`kelly_edge.features.encode`, with values taken from the score:

- **melody**: each note of the top voice is a target; its inputs are the key, the chord of its beat,
  the previous three notes, its 16th position and the chroma heard in the ~1 s before it.
- **harmony** is learnt from rendered audio instead (:mod:`tools.train.build_chords`).
- **groove**: per 16-step bar, the top voice's onsets of the next bar are the target, from the heard
  onsets of the last two bars (lower voices; the tune itself for monophonic folk songs) and the
  box's own last bar.

Symbolic chroma is cleaner than audio chroma, so chroma inputs get audio-like leakage (energy on the
fifth and major third above, i.e. the 3rd and 5th harmonics) and a little noise; heard onset
strengths get random accents and noise. All randomness comes from one seeded generator.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from kelly_edge.features import encode
from kelly_edge.models import spec
from tools.train.cues import cue_vadi
from tools.train.data import Dataset
from tools.train.symbolic import Piece, Voice

log = logging.getLogger(__name__)

SLOTS_PER_QL = 4  # 16th-note grid
_TRIAD_WEIGHT_OUT = 0.6
_BASS_WEIGHT = 0.15


# --- shared helpers -------------------------------------------------------------------------------


def piano_roll(voices: list[Voice], n_slots: int) -> np.ndarray:
    """``(n_slots, 128) float32`` 1 where a pitch sounds in a 16th slot (any voice)."""
    roll = np.zeros((n_slots, 128), dtype=np.float32)
    for v in voices:
        a = np.floor(v.onset * SLOTS_PER_QL + 1e-6).astype(np.int64)
        b = np.maximum(a + 1, np.ceil((v.onset + v.dur) * SLOTS_PER_QL - 1e-6).astype(np.int64))
        for s, e, p in zip(a, b, v.pitch):
            roll[max(0, s) : min(n_slots, e), int(p)] = 1.0
    return roll


def fold(roll: np.ndarray) -> np.ndarray:
    """``(n, 12)`` pitch-class energy of a ``(n, 128)`` roll."""
    pc = np.zeros((roll.shape[0], 12), dtype=np.float32)
    for p in range(12):
        pc[:, p] = roll[:, p::12].sum(axis=1)
    return pc


def bass_fold(roll: np.ndarray) -> np.ndarray:
    """``(n, 12)`` one-hot pitch class of the lowest sounding note per slot (zeros when silent)."""
    out = np.zeros((roll.shape[0], 12), dtype=np.float32)
    sounding = roll.any(axis=1)
    low = np.argmax(roll > 0, axis=1)
    out[np.flatnonzero(sounding), low[sounding] % 12] = 1.0
    return out


def audio_like(chroma: np.ndarray, rng: np.random.Generator, *, noise: float = 0.05) -> np.ndarray:
    """Symbolic chroma ``(..., 12)`` made audio-like: + harmonics' leakage + noise, then max 1."""
    c = chroma + 0.3 * np.roll(chroma, 7, axis=-1) + 0.15 * np.roll(chroma, 4, axis=-1)
    c = c + noise * rng.random(c.shape, dtype=np.float32) * (c.max(axis=-1, keepdims=True) > 0)
    return max1(c)


def max1(x: np.ndarray) -> np.ndarray:
    """Scale so the max along the last axis is 1 (all-zero rows stay zero)."""
    m = x.max(axis=-1, keepdims=True)
    return (x / np.where(m > 1e-9, m, 1.0)).astype(np.float32)


_TEMPLATES = np.zeros((spec.N_CHORDS, 12), dtype=np.float32)
for _i in range(spec.N_CHORDS):
    _root, _q = spec.chord_of_index(_i)  # type: ignore[misc]
    for _iv in spec.CHORD_INTERVALS[_q]:
        _TEMPLATES[_i, (_root + _iv) % 12] = 1.0


def label_chords(chroma: np.ndarray, bass: np.ndarray) -> np.ndarray:
    """Chord class per row of ``chroma`` ``(n, 12)`` (duration-weighted), bass ``(n, 12)``: ``(n,) int64``.

    Template score = chord-tone energy - 0.6 x other energy + 0.15 x bass on the root, on chroma
    normalised to sum 1; ties go to the simpler chord (triads precede sevenths in the vocabulary).
    Silent rows are ``spec.NO_CHORD``.
    """
    tot = chroma.sum(axis=1, keepdims=True)
    c = chroma / np.where(tot > 0, tot, 1.0)
    btot = bass.sum(axis=1, keepdims=True)
    b = bass / np.where(btot > 0, btot, 1.0)
    inside = c @ _TEMPLATES.T
    outside = 1.0 - inside
    roots = np.repeat(np.arange(12), len(spec.CHORD_QUALITIES))
    score = inside - _TRIAD_WEIGHT_OUT * outside + _BASS_WEIGHT * b[:, roots]
    # prefer triads on (near-)ties: a seventh must earn its extra tone
    seventh = np.array([q in ("7", "m7") for _, q in (spec.chord_of_index(i) for i in range(spec.N_CHORDS))])  # type: ignore[misc]
    score = score - 1e-3 * seventh[None, :]
    lab = np.argmax(score, axis=1).astype(np.int64)
    lab[tot[:, 0] <= 0] = spec.NO_CHORD
    return lab


def transpose_chord(index: int, shift: int) -> int:
    rq = spec.chord_of_index(index)
    return index if rq is None else spec.chord_index((rq[0] + shift) % 12, rq[1])


@dataclass
class Version:
    """One rendering of a piece's performance parameters used for cue inputs."""

    tempo_bpm: float
    loudness: float


def _version(rng: np.random.Generator) -> Version:
    return Version(tempo_bpm=float(rng.uniform(60, 160)), loudness=float(rng.uniform(0.3, 0.95)))


def _nps(voice: Voice, tempo_bpm: float) -> float:
    """Notes per second of a voice at a tempo (onsets of distinct times)."""
    n = len(np.unique(voice.onset))
    span = max(1.0, float(voice.onset[-1] - voice.onset[0] + voice.dur[-1]))
    return n / (span * 60.0 / tempo_bpm)


def melody_line(v: Voice) -> Voice:
    """Monophonic line: at each onset keep the highest pitch."""
    keep = np.ones(len(v), dtype=bool)
    keep[1:] = v.onset[1:] > v.onset[:-1] + 1e-6  # rows are sorted (onset, -pitch)
    return Voice(v.onset[keep], v.dur[keep], v.pitch[keep], v.bar[keep], v.pos[keep])


TUNE_INTERVALS = 16
"""Files whose tunes open with the same this many melodic intervals are one tune."""


def tune_ids(pieces: list[Piece]) -> list[int]:
    """Per piece, the id of its tune: the index of the first piece whose melody opens with the same
    :data:`TUNE_INTERVALS` intervals (transposition-free). The corpus holds one chorale tune in
    several files (``bwv112.5`` and ``bwv112.5-sc``; 139 of the 413 chorale files share their opening
    with another), so held-out rows are chosen by tune: rows carry the tune id as their group."""
    first: dict[tuple[int, ...], int] = {}
    out = []
    for i, piece in enumerate(pieces):
        pitch = melody_line(piece.voices[0]).pitch.astype(np.int64)
        opening = tuple(np.diff(pitch)[:TUNE_INTERVALS].tolist())
        out.append(first.setdefault(opening, i))
    return out


# --- melody ---------------------------------------------------------------------------------------


def build_melody(pieces: list[Piece], *, seed: int, transpositions: int = 3) -> Dataset:
    """Next-note rows (see module doc). Each piece is used at ``transpositions`` random keys."""
    rng = np.random.default_rng(seed)
    s = spec.MELODY
    xs, ys, gs = [], [], []
    row = np.zeros(s.n_in, dtype=np.float32)
    tune = tune_ids(pieces)
    for gi, piece in enumerate(pieces):
        mel = melody_line(piece.voices[0])
        if len(mel) < 4:
            continue
        n_slots = int(np.ceil(piece.length_ql * SLOTS_PER_QL)) + 1
        everything = piano_roll(piece.voices, n_slots)
        pcs = fold(everything)
        # chord per beat: chorales (several voices) from all voices; tunes from the half bar of melody
        if len(piece.voices) > 1:
            span = SLOTS_PER_QL  # one beat
        else:
            span = max(1, int(round(piece.bar_ql * SLOTS_PER_QL / 2)))
        n_spans = n_slots // span + 1
        pad = np.zeros((n_spans * span, 12), dtype=np.float32)
        pad[: pcs.shape[0]] = pcs
        span_chroma = pad.reshape(n_spans, span, 12).sum(axis=1)
        bpad = np.zeros((n_spans * span, 12), dtype=np.float32)
        bpad[: pcs.shape[0]] = bass_fold(everything)
        chords = label_chords(span_chroma, bpad.reshape(n_spans, span, 12).sum(axis=1))
        heard_cum = np.vstack([np.zeros((1, 12), np.float32), np.cumsum(pcs, axis=0)])
        for _ in range(transpositions):
            lo, hi = int(mel.pitch.min()), int(mel.pitch.max())
            shift = int(rng.integers(max(-6, 24 - lo), min(6, 108 - hi) + 1)) if lo < hi else 0
            ver = _version(rng)
            vadi = cue_vadi(major=piece.major, tempo_bpm=ver.tempo_bpm, notes_per_s=_nps(mel, ver.tempo_bpm), loudness=ver.loudness)
            win = max(1, int(round(ver.tempo_bpm / 60.0 * SLOTS_PER_QL)))  # ~1 s of 16th slots
            p = mel.pitch.astype(np.int64) + shift
            for i in range(1, len(mel)):
                slot = int(np.floor(mel.onset[i] * SLOTS_PER_QL + 1e-6))
                heard = heard_cum[slot] - heard_cum[max(0, slot - win)]
                heard = max1(audio_like(np.roll(heard, shift), rng)) if heard.any() else heard
                chord = int(chords[min(slot // span, len(chords) - 1)])
                encode.encode_melody(
                    row,
                    vadi=vadi,
                    tonic=(piece.tonic + shift) % 12,
                    major=piece.major,
                    chord=transpose_chord(chord, shift),
                    prev_notes=tuple(int(q) for q in p[max(0, i - 3) : i]),
                    step=int(round(mel.pos[i] * SLOTS_PER_QL)) % spec.N_STEPS,
                    heard_chroma=heard,
                )
                xs.append(row.copy())
                ys.append(int(p[i]))
                gs.append(tune[gi])
    return _dataset("melody", xs, np.array(ys, dtype=np.int64), gs, pieces)


# --- groove ---------------------------------------------------------------------------------------


def bar_grid(voice: Voice, piece: Piece) -> np.ndarray | None:
    """``(n_bars, 16) float32`` onset counts per 16th step; 2/4 bars are paired into 16 steps.

    None for metres the 16-step grid cannot hold (3/4, 6/8, ...).
    """
    bar_ql = piece.bar_ql
    if abs(bar_ql - 4.0) < 1e-6:
        per, bars = 1, voice.bar
    elif abs(bar_ql - 2.0) < 1e-6:
        per, bars = 2, voice.bar
    else:
        return None
    n_src = int(piece.bar_starts.size)
    n = -(-n_src // per)  # ceil: the last (possibly half-filled) bar, no empty one after it
    step = np.rint(voice.pos * SLOTS_PER_QL).astype(np.int64) + (bars % per) * int(bar_ql * SLOTS_PER_QL)
    big = bars // per
    grid = np.zeros((n, spec.N_STEPS), dtype=np.float32)
    ok = (step >= 0) & (step < spec.N_STEPS) & (big < n)
    np.add.at(grid, (big[ok], step[ok]), 1.0)
    return grid


def build_groove(pieces: list[Piece], *, seed: int, versions: int = 2) -> Dataset:
    """Next-bar hit rows (see module doc). Micro-timing targets are 0: scores carry no timing."""
    rng = np.random.default_rng(seed)
    s = spec.GROOVE
    xs, ys, gs = [], [], []
    row = np.zeros(s.n_in, dtype=np.float32)
    tune = tune_ids(pieces)
    for gi, piece in enumerate(pieces):
        top = melody_line(piece.voices[0])
        box = bar_grid(top, piece)
        if box is None or box.shape[0] < 4:
            continue
        lower = [g for g in (bar_grid(v, piece) for v in piece.voices[1:]) if g is not None]
        heard = np.sum(lower, axis=0) if lower else box.copy()  # monophonic: the tune itself is heard
        box = (box > 0).astype(np.float32)
        for _ in range(versions):
            ver = _version(rng)
            vadi = cue_vadi(major=piece.major, tempo_bpm=ver.tempo_bpm, notes_per_s=_nps(top, ver.tempo_bpm), loudness=ver.loudness)
            accent = rng.uniform(0.6, 1.0, heard.shape).astype(np.float32)
            strength = heard * accent + 0.08 * rng.random(heard.shape, dtype=np.float32)
            bar_s = 4 * 60.0 / ver.tempo_bpm
            for b in range(2, box.shape[0]):
                pair = np.concatenate([strength[b - 2], strength[b - 1]])
                pair = pair / max(1e-9, float(pair.max()))
                onset_rate = float((heard[b - 2] > 0).sum() + (heard[b - 1] > 0).sum()) / (2 * bar_s)
                encode.encode_groove(
                    row,
                    vadi=vadi,
                    heard_bar=pair[16:],
                    heard_prev_bar=pair[:16],
                    tempo_bpm=ver.tempo_bpm,
                    onset_rate=onset_rate,
                    prev_hits=box[b - 1],
                )
                xs.append(row.copy())
                y = np.zeros(s.n_out, dtype=np.float32)
                y[: spec.N_STEPS] = box[b]
                ys.append(y)
                gs.append(tune[gi])
    return _dataset("groove", xs, np.array(ys, dtype=np.float32).reshape(-1, s.n_out), gs, pieces)


def _dataset(name: str, xs: list[np.ndarray], y: np.ndarray, gs: list[int], pieces: list[Piece]) -> Dataset:
    n_in = spec.BY_NAME[name].n_in
    x = np.array(xs, dtype=np.float32).reshape(-1, n_in)
    groups = np.array(gs, dtype=np.int64)
    info = {"rows": int(x.shape[0]), "pieces": int(len(np.unique(groups))), "files": len(pieces), "piece_names": [p.name for p in pieces][:5]}
    log.info("%s: %d rows from %d pieces", name, x.shape[0], info["pieces"])
    return Dataset(name, x, y, groups, info)
