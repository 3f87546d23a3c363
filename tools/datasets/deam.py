"""DEAM (MediaEval Database for Emotional Analysis in Music) reader.

Layout (as distributed)::

    <root>/MEMD_audio/<song_id>.mp3            (or .wav)
    <root>/annotations/.../static_annotations_averaged_songs_1_2000.csv
    <root>/annotations/.../static_annotations_averaged_songs_2000_2058.csv

The CSVs have columns ``song_id, valence_mean, valence_std, arousal_mean, arousal_std`` (the
released files put a space before each header name; both spellings are accepted) on DEAM's 1..9
scale, mapped here to -1..1 as ``(x - 5) / 4``. Songs whose audio is missing or unreadable are
skipped and counted; a root that does not exist, or holds no annotations or no matching audio,
raises :class:`~tools.datasets.common.DatasetError` with what to fix.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from tools.datasets.common import DatasetError, SkipReport

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".mp3", ".wav", ".flac", ".ogg")
CSV_GLOB = "static_annotations_averaged_songs_*.csv"


@dataclass(frozen=True)
class DeamSong:
    """One annotated song: its audio file and the static valence/arousal means in -1..1."""

    song_id: str
    path: Path
    valence: float
    arousal: float


def scale_1_9(x: float) -> float:
    """DEAM's 1..9 rating to -1..1 (5 is neutral)."""
    return max(-1.0, min(1.0, (float(x) - 5.0) / 4.0))


def audio_readable(path: Path) -> str | None:
    """None if ``path`` decodes (first 0.1 s), else the reason it does not."""
    try:
        if path.stat().st_size == 0:
            return "empty file"
        if path.suffix.lower() == ".wav":
            import wave

            with wave.open(str(path), "rb") as w:
                if w.getnframes() <= 0:
                    return "no audio frames"
                w.readframes(1)
            return None
        import librosa

        y, _ = librosa.load(str(path), sr=None, mono=True, duration=0.1)
        return None if y.size else "no audio frames"
    except Exception as err:  # decoders raise many types on corrupt data
        return f"unreadable audio ({type(err).__name__})"


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh, skipinitialspace=True))
    return [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in rows]


def load_deam(root: str | os.PathLike[str], *, check_audio: bool = True) -> tuple[list[DeamSong], SkipReport]:
    """Annotated songs under ``root`` and the report of skipped ones."""
    base = Path(root)
    if not base.is_dir():
        raise DatasetError(f"DEAM folder {base} does not exist (give the folder holding MEMD_audio/ and annotations/)")
    csvs = sorted(base.rglob(CSV_GLOB))
    if not csvs:
        raise DatasetError(f"DEAM folder {base}: no annotations ({CSV_GLOB}) found")
    audio_dir = base / "MEMD_audio"
    audio: dict[str, Path] = {}
    for p in sorted((audio_dir if audio_dir.is_dir() else base).rglob("*")):
        if p.suffix.lower() in AUDIO_SUFFIXES:
            audio.setdefault(p.stem, p)
    if not audio:
        raise DatasetError(f"DEAM folder {base}: no audio files ({'/'.join(AUDIO_SUFFIXES)}) under {audio_dir}")
    report = SkipReport()
    songs: list[DeamSong] = []
    for c in csvs:
        for row in _read_csv(c):
            sid = row.get("song_id", "")
            try:
                v, a = scale_1_9(float(row["valence_mean"])), scale_1_9(float(row["arousal_mean"]))
            except (KeyError, ValueError):
                report.add(f"{c}:{sid or '?'}", "missing or non-numeric valence_mean/arousal_mean")
                continue
            path = audio.get(sid)
            if path is None:
                report.add(f"song {sid}", "no audio file")
                continue
            reason = audio_readable(path) if check_audio else None
            if reason:
                report.add(str(path), reason)
                continue
            songs.append(DeamSong(sid, path, v, a))
    if not songs:
        raise DatasetError(f"DEAM folder {base}: no usable songs; {report.summary()}")
    log.info("DEAM: %d songs, %s", len(songs), report.summary())
    return songs, report
