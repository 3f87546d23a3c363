"""EMOPIA (emotion-labelled pop piano MIDI clips) reader.

Layout (as distributed)::

    <root>/midis/Q1_<youtube-id>_<clip>.mid  ...
    <root>/label.csv        columns ID,4Q,annotator   (ID = file stem, 4Q = quadrant 1..4)

Quadrants of Russell's circumplex: Q1 = +valence +arousal (happy), Q2 = -valence +arousal (tense),
Q3 = -valence -arousal (sad), Q4 = +valence -arousal (calm). They become valence/arousal targets of
+-0.6 (signs only: EMOPIA rates quadrants, not magnitudes). When ``label.csv`` is missing the
quadrant is read from the file name's ``Q<n>_`` prefix. Corrupt MIDI files are skipped and counted.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from tools.datasets.common import DatasetError, SkipReport

log = logging.getLogger(__name__)

QUADRANT_SIGNS = {1: (1.0, 1.0), 2: (-1.0, 1.0), 3: (-1.0, -1.0), 4: (1.0, -1.0)}
MAGNITUDE = 0.6
_PREFIX = re.compile(r"^Q([1-4])_")


@dataclass(frozen=True)
class EmopiaClip:
    """One clip: its MIDI file, quadrant 1..4 and the valence/arousal it implies (-1..1)."""

    clip_id: str
    path: Path
    quadrant: int
    valence: float
    arousal: float


def quadrant_va(q: int) -> tuple[float, float]:
    """Valence and arousal targets of a quadrant 1..4."""
    sv, sa = QUADRANT_SIGNS[q]
    return MAGNITUDE * sv, MAGNITUDE * sa


def midi_readable(path: Path) -> str | None:
    """None if ``path`` parses as a MIDI file with at least one note, else why not."""
    import mido

    try:
        mid = mido.MidiFile(str(path))
        if not any(m.type == "note_on" and m.velocity > 0 for tr in mid.tracks for m in tr):
            return "no notes"
        return None
    except Exception as err:  # mido raises OSError/ValueError/EOFError/KeyError on bad bytes
        return f"corrupt MIDI ({type(err).__name__})"


def _labels(root: Path) -> dict[str, int]:
    found = sorted(root.rglob("label.csv"))
    if not found:
        return {}
    out: dict[str, int] = {}
    with found[0].open(newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh, skipinitialspace=True):
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            try:
                q = int(row["4Q"].lstrip("Qq"))
            except (KeyError, ValueError):
                continue
            if q in QUADRANT_SIGNS and row.get("ID"):
                out[row["ID"]] = q
    return out


def load_emopia(root: str | os.PathLike[str]) -> tuple[list[EmopiaClip], SkipReport]:
    """Labelled clips under ``root`` and the report of skipped ones."""
    base = Path(root)
    if not base.is_dir():
        raise DatasetError(f"EMOPIA folder {base} does not exist (give the folder holding midis/ and label.csv)")
    files = sorted(p for p in base.rglob("*") if p.suffix.lower() in (".mid", ".midi"))
    if not files:
        raise DatasetError(f"EMOPIA folder {base} holds no .mid files")
    labels = _labels(base)
    report = SkipReport()
    clips: list[EmopiaClip] = []
    for path in files:
        q = labels.get(path.stem)
        if q is None:
            m = _PREFIX.match(path.name)
            q = int(m.group(1)) if m else None
        if q is None:
            report.add(str(path), "no quadrant label (not in label.csv, no Q<n>_ prefix)")
            continue
        reason = midi_readable(path)
        if reason:
            report.add(str(path), reason)
            continue
        v, a = quadrant_va(q)
        clips.append(EmopiaClip(path.stem, path, q, v, a))
    if not clips:
        raise DatasetError(f"EMOPIA folder {base}: no usable clips; {report.summary()}")
    log.info("EMOPIA: %d clips, %s", len(clips), report.summary())
    return clips, report
