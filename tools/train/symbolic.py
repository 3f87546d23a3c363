"""Symbolic music from the music21 corpus (or a user's folder), flattened to plain note arrays.

Every symbolic training set (melody, harmony, groove) and the audio renders start from here: a
:class:`Piece` is a list of voices, each a table of notes with onset, duration, MIDI pitch and the
position inside its bar, plus the piece's key. Keeping music21 objects out of the data builders
makes them fast, picklable (so parsing runs in worker processes) and testable on hand-made pieces.

A file that music21 cannot parse is skipped, counted and named in a :class:`SkipReport`, never fatal;
a folder with nothing usable raises :class:`DatasetError`.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from tools.datasets.common import DatasetError, SkipReport

log = logging.getLogger(__name__)

SYMBOLIC_SUFFIXES = (".mid", ".midi", ".mxl", ".musicxml", ".xml", ".abc", ".krn")


@dataclass
class Voice:
    """One voice's notes, sorted by onset. All arrays ``(n,)``; times in quarter notes (ql).

    ``bar`` is the index of the bar the note starts in (0 = first, possibly a pickup) and ``pos`` the
    onset's position inside that bar in ql (a pickup's notes sit at the end of their bar).
    """

    onset: np.ndarray  # float64 ql from the start of the piece
    dur: np.ndarray  # float64 ql
    pitch: np.ndarray  # int16 MIDI 0..127
    bar: np.ndarray  # int32
    pos: np.ndarray  # float64 ql inside the bar

    def __len__(self) -> int:
        return int(self.onset.shape[0])


@dataclass
class Piece:
    """A piece reduced to what the data builders need. ``voices[0]`` is the top (melody) voice."""

    name: str
    voices: list[Voice]
    bar_ql: float  # length of a full bar in ql (first time signature)
    bar_starts: np.ndarray  # (n_bars,) float64 ql where each bar starts (pickup bar: its actual start)
    tonic: int  # pitch class 0..11
    major: bool
    length_ql: float


def _voice_from_part(part: Any) -> Voice | None:
    """Notes of one music21 part (ties merged; chords split into their pitches)."""
    rows: list[tuple[float, float, int, int, float]] = []
    measures = list(part.getElementsByClass("Measure"))  # type: ignore[attr-defined]
    if not measures:
        return None
    for bi, m in enumerate(measures):
        bar = float(m.barDuration.quarterLength)
        pad = float(m.paddingLeft or 0.0)
        dur_m = float(m.duration.quarterLength)
        if bi == 0 and pad == 0.0 and 0 < dur_m < bar:
            pad = bar - dur_m  # an unmarked pickup bar
        for n in m.flatten().notes:
            onset = float(m.offset) + float(n.offset)
            pos = pad + float(n.offset)
            dur = float(n.duration.quarterLength)
            if dur <= 0:
                continue  # grace notes
            pitches = [p.midi for p in n.pitches]
            for p in pitches:
                if 0 <= p <= 127:
                    rows.append((onset, dur, int(p), bi, pos))
    if not rows:
        return None
    rows.sort(key=lambda r: (r[0], -r[2]))
    arr = np.array(rows, dtype=np.float64)
    return Voice(
        onset=arr[:, 0], dur=arr[:, 1], pitch=arr[:, 2].astype(np.int16), bar=arr[:, 3].astype(np.int32), pos=arr[:, 4]
    )


def piece_from_score(score: Any, name: str) -> Piece | None:
    """Reduce a music21 Score to a :class:`Piece`; None when it has no notes."""
    from music21 import stream

    parts = list(score.parts) if isinstance(score, stream.Score) and len(score.parts) else [score]  # type: ignore[attr-defined]
    voices = []
    bar_starts: np.ndarray | None = None
    bar_ql = 4.0
    for part in parts:
        try:
            part = part.stripTies()
            if not part.getElementsByClass("Measure"):
                part = part.makeMeasures()
        except Exception:  # music21 raises many types on odd files
            continue
        v = _voice_from_part(part)
        if v is None:
            continue
        voices.append(v)
        if bar_starts is None:
            ms = list(part.getElementsByClass("Measure"))
            bar_starts = np.array([float(m.offset) for m in ms], dtype=np.float64)
            bar_ql = float(ms[0].barDuration.quarterLength)
    if not voices or bar_starts is None:
        return None
    voices.sort(key=lambda v: -float(np.mean(v.pitch)))  # top voice first
    try:
        k = score.analyze("key")  # type: ignore[attr-defined]
        tonic, major = int(k.tonic.pitchClass), k.mode == "major"
    except Exception:
        tonic, major = 0, True
    length = max(float(v.onset[-1] + v.dur[-1]) for v in voices)
    return Piece(name=name, voices=voices, bar_ql=bar_ql, bar_starts=bar_starts, tonic=tonic, major=major, length_ql=length)


def _parse_path(path: str) -> tuple[list[Piece], list[tuple[str, str]]]:
    """Parse one file (a score, or an opus of many tunes). Returns pieces and (path, reason) skips."""
    import warnings

    from music21 import converter, stream

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = converter.parse(path)
    except Exception as err:  # corrupt/unsupported file: skip and count
        return [], [(path, f"unreadable ({type(err).__name__}: {str(err).splitlines()[0][:80] if str(err) else ''})")]
    scores = list(obj.scores) if isinstance(obj, stream.Opus) else [obj]
    pieces, skips = [], []
    stem = Path(path).stem
    for i, sc in enumerate(scores):
        label = f"{stem}#{i}" if len(scores) > 1 else stem
        try:
            p = piece_from_score(sc, label)
        except Exception as err:
            skips.append((f"{path}#{i}", f"cannot read notes ({type(err).__name__})"))
            continue
        if p is None:
            skips.append((f"{path}#{i}", "no notes"))
        else:
            pieces.append(p)
    return pieces, skips


def parse_files(paths: Sequence[str | os.PathLike[str]], *, workers: int = 2) -> tuple[list[Piece], SkipReport]:
    """Parse many files (in ``workers`` processes); unreadable ones are skipped and counted."""
    report = SkipReport()
    pieces: list[Piece] = []
    strs = [str(p) for p in paths]
    if workers > 1 and len(strs) > 1:
        ctx = mp.get_context("fork")
        with ctx.Pool(workers) as pool:
            results = pool.map(_parse_path, strs, chunksize=1)
    else:
        results = [_parse_path(p) for p in strs]
    for got, skips in results:
        pieces.extend(got)
        for path, reason in skips:
            report.add(path, reason)
    return pieces, report


def parse_each(paths: Sequence[str | os.PathLike[str]], *, workers: int = 2) -> list[tuple[list[Piece], SkipReport]]:
    """Like :func:`parse_files` but one ``(pieces, report)`` per input file (for per-file caching)."""
    strs = [str(p) for p in paths]
    if workers > 1 and len(strs) > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            results = pool.map(_parse_path, strs, chunksize=1)
    else:
        results = [_parse_path(p) for p in strs]
    out = []
    for got, skips in results:
        rep = SkipReport()
        for path, reason in skips:
            rep.add(path, reason)
        out.append((got, rep))
    return out


def files_in_folder(folder: str | os.PathLike[str], suffixes: Iterable[str] = SYMBOLIC_SUFFIXES) -> list[Path]:
    """Symbolic files under ``folder`` (recursive, sorted); DatasetError if missing or empty."""
    root = Path(folder)
    if not root.exists():
        raise DatasetError(f"dataset folder {root} does not exist (give the folder holding your MIDI/MusicXML files)")
    if not root.is_dir():
        raise DatasetError(f"dataset path {root} is not a folder")
    suf = tuple(s.lower() for s in suffixes)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suf)
    if not files:
        raise DatasetError(f"dataset folder {root} holds no {'/'.join(suf)} files")
    return files


def pieces_from_folder(folder: str | os.PathLike[str], *, workers: int = 2) -> tuple[list[Piece], SkipReport]:
    """All pieces in a user's folder; DatasetError when none is usable (the skips say why)."""
    files = files_in_folder(folder)
    pieces, report = parse_files(files, workers=workers)
    if not pieces:
        raise DatasetError(f"dataset folder {folder}: nothing usable in {len(files)} file(s); {report.summary()}")
    return pieces, report


# --- the offline music21 corpus ---------------------------------------------------------------

ESSEN_FULL = (
    "altdeu10", "altdeu20", "ballad10", "ballad20", "ballad30", "ballad40", "boehme10", "boehme20",
    "erk10", "erk20", "fink0", "kinder0", "han1", "han2", "lux", "zuccal0", "dva0", "lot",
)  # fmt: skip


def chorale_paths(limit: int | None = None) -> list[Path]:
    """Bach chorale files in the music21 corpus (four-part, real harmony), sorted by name."""
    from music21 import corpus

    paths = sorted(p for p in corpus.getComposer("bach") if p.name.startswith("bwv") and p.suffix in (".mxl", ".xml", ".krn"))
    return paths[:limit] if limit else paths


def essen_paths(names: Sequence[str] = ESSEN_FULL) -> list[Path]:
    """Essen folk-song collection files (monophonic tunes with keys and metres)."""
    from music21 import corpus

    want = set(names)
    return sorted(p for p in corpus.getCorePaths() if p.parent.name == "essenFolksong" and p.stem in want)
