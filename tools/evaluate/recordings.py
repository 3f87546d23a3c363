"""Real recordings from outside the project: excerpts of music Debian ships, and their annotations.

The music is Warzone 2100's soundtracks (Debian package ``warzone2100-music``: three albums by two
composers, their licences beside them), installed by ``make test`` (TEST_DEBS).
An excerpt is :data:`EXCERPT_S` seconds from a fixed offset, decoded with libsndfile (soundfile),
mixed to mono and resampled; the excerpts are cached by the source's content and the bounds.

The ground truth comes from an analyser nobody here wrote (essentia; see ``annotate.py``), stored
as one small JSON file per excerpt in ``annotations/``. Where its own analysers disagree the field
is marked and not scored: a key only when all four key profiles agree, beats only when its two beat
trackers agree (F >= :data:`BEATS_AGREE`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools.evaluate.cache import Cache, digest
from tools.evaluate.metrics import Reference

PACKAGE = "warzone2100-music"
MUSIC_DIR = Path("/usr/share/games/warzone2100/music")
ANNOTATIONS = Path(__file__).with_name("annotations")
EXCERPT_S = 30.0
SAMPLE_RATE = 22050
BEATS_AGREE = 0.8


@dataclass(frozen=True)
class Recording:
    name: str
    path: Path  # the source file, as the package installs it
    offset: float  # s into the file where the excerpt starts


def candidates() -> list[Recording]:
    """Every soundtrack file of the package, excerpted from 45 s in (past the intros)."""
    files = sorted(MUSIC_DIR.glob("albums/*/*.opus"))
    return [Recording(f"{p.parent.name.split('_')[0]}-{p.stem}", p, 45.0) for p in files]


def missing_hint() -> str:
    return f"the real recordings need Debian's {PACKAGE} (apt-get install {PACKAGE}; make test installs it)"


def excerpt(rec: Recording, cache: Cache, *, sample_rate: int = SAMPLE_RATE) -> Path:
    """A mono 16-bit WAV of the excerpt at ``sample_rate``, made once per content."""
    import soundfile as sf
    import soxr

    if not rec.path.is_file():
        raise FileNotFoundError(f"{rec.path}: not found; {missing_hint()}")
    key = digest(rec.path.read_bytes(), f"{rec.offset}:{EXCERPT_S}:{sample_rate}")
    out = cache.path("excerpts", key, ".wav")
    if out.is_file():
        return out
    with sf.SoundFile(str(rec.path)) as f:
        f.seek(int(rec.offset * f.samplerate))
        x = f.read(int(EXCERPT_S * f.samplerate), dtype="float32", always_2d=True).mean(axis=1)
        rate = f.samplerate
    y = soxr.resample(x, rate, sample_rate).astype(np.float32)
    y *= 0.9 / max(float(np.max(np.abs(y))), 1e-6)
    tmp = out.with_suffix(".tmp.wav")
    sf.write(str(tmp), y, sample_rate, subtype="PCM_16")
    tmp.replace(out)
    return out


def annotation_path(name: str) -> Path:
    return ANNOTATIONS / f"{name}.json"


def annotated() -> list[tuple[Recording, Reference, dict]]:
    """The recordings that have an annotation file kept for evaluation, with their references."""
    out = []
    by_name = {r.name: r for r in candidates()}
    for path in sorted(ANNOTATIONS.glob("*.json")):
        ann = json.loads(path.read_text())
        if not ann.get("use", True):
            continue
        rec = by_name.get(ann["name"]) or Recording(ann["name"], Path(ann["source"]["path"]), float(ann["source"]["offset"]))
        chords = ann["chords"]
        segments = [(c["t"], chords[i + 1]["t"] if i + 1 < len(chords) else ann["duration"], c["chord"])
                    for i, c in enumerate(chords)]
        ref = Reference(
            name=ann["name"], duration=float(ann["duration"]),
            beats=np.array(ann["beats"], float) if ann["beats_agreement"] >= BEATS_AGREE else None,
            key=ann["key"] if ann["key_agreed"] else None,
            chords=segments,
        )
        out.append((rec, ref, ann))
    return out
