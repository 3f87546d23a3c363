"""Real recordings from outside the project: excerpts of music Debian ships, and their annotations.

The music is Warzone 2100's soundtracks (Debian package ``warzone2100-music``: three albums by two
composers, their licences beside them), installed by ``make test`` (TEST_DEBS).
An excerpt is :data:`EXCERPT_S` seconds from a fixed offset, decoded with libsndfile (soundfile),
mixed to mono and resampled; the excerpts are cached by the source's content and the bounds.

The ground truth comes from an analyser nobody here wrote (essentia; see ``annotate.py``), stored
as one small JSON file per excerpt in ``annotations/``. Where its own analysers disagree the field
is marked and not scored: a key only when all four key profiles agree, beats only when its two beat
trackers agree (F >= :data:`BEATS_AGREE`).

A second set, ``real-dev`` (:func:`dev_candidates`, annotations in ``annotations/dev/``), comes from
other Debian packages of game music (hyperrogue-music, singularity-music, nexuiz-music, asc-music;
all in main; GPL-2+ or CC-BY-SA-3.0: see each package's copyright file). It is the real music
the tracker is tuned on; the warzone2100 recordings stay an evaluation set nobody tunes on.
``make evaluate`` installs its packages (EVAL_DEBS); the suite does not use it.
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
DEV_ANNOTATIONS = ANNOTATIONS / "dev"
DEV_SOURCES = (  # (package, glob of its music files, offset s): real-dev's candidates
    ("hyperrogue-music", "/usr/share/hyperrogue/music/*.ogg", 15.0),  # tracks of about a minute
    ("singularity-music", "/usr/share/games/singularity/music/*.ogg", 45.0),
    ("asc-music", "/usr/share/games/asc/music/*.mp3", 45.0),
    ("nexuiz-music", "/usr/share/games/nexuiz/data/music.pk3", 45.0),  # a zip of Ogg files
    ("wesnoth-1.16-music", "/usr/share/games/wesnoth/1.16/data/core/music/*.ogg", 45.0),  # orchestral, as the evaluation's
)


@dataclass(frozen=True)
class Recording:
    name: str
    path: Path  # the source file, as the package installs it
    offset: float  # s into the file where the excerpt starts
    package: str = PACKAGE
    member: str = ""  # inside ``path`` when it is a zip archive (nexuiz's music.pk3)


def candidates() -> list[Recording]:
    """Every soundtrack file of the package, excerpted from 45 s in (past the intros)."""
    files = sorted(MUSIC_DIR.glob("albums/*/*.opus"))
    return [Recording(f"{p.parent.name.split('_')[0]}-{p.stem}", p, 45.0) for p in files]


def dev_candidates() -> list[Recording]:
    """Every music file of the real-dev packages that are installed, named ``<package>-<file>``."""
    import zipfile

    out = []
    for package, pattern, offset in DEV_SOURCES:
        short = package.removesuffix("-music")
        for path in sorted(Path("/").glob(pattern.lstrip("/"))):
            if path.suffix == ".pk3":
                with zipfile.ZipFile(path) as z:
                    members = sorted(n for n in z.namelist() if n.endswith(".ogg"))
                out += [Recording(f"{short}-{Path(m).stem}", path, offset, package, m) for m in members]
            else:
                stem = path.stem.lower().replace(" ", "-")
                out.append(Recording(f"{short}-{stem}", path, offset, package))
    return out


def missing_hint(package: str = PACKAGE) -> str:
    how = "make test installs it" if package == PACKAGE else "make evaluate installs it"
    return f"the real recordings need Debian's {package} (apt-get install {package}; {how})"


def _source_bytes(rec: Recording) -> bytes:
    if not rec.member:
        return rec.path.read_bytes()
    import zipfile

    with zipfile.ZipFile(rec.path) as z:
        return z.read(rec.member)


def excerpt(rec: Recording, cache: Cache, *, sample_rate: int = SAMPLE_RATE) -> Path:
    """A mono 16-bit WAV of the excerpt at ``sample_rate``, made once per content."""
    import soundfile as sf
    import soxr

    if not rec.path.is_file():
        raise FileNotFoundError(f"{rec.path}: not found; {missing_hint(rec.package)}")
    import io

    data = _source_bytes(rec)
    with sf.SoundFile(io.BytesIO(data)) as f:
        # checked before the cache: an excerpt cut short once stays out
        if f.frames < (rec.offset + EXCERPT_S) * f.samplerate:
            raise TooShort(f"{rec.name}: {f.frames / f.samplerate:.0f} s, too short for a {EXCERPT_S:g} s excerpt from {rec.offset:g} s")
        out = cache.path("excerpts", digest(data, f"{rec.offset}:{EXCERPT_S}:{sample_rate}"), ".wav")
        if out.is_file():
            return out
        f.seek(int(rec.offset * f.samplerate))
        x = f.read(int(EXCERPT_S * f.samplerate), dtype="float32", always_2d=True).mean(axis=1)
        rate = f.samplerate
    y = soxr.resample(x, rate, sample_rate).astype(np.float32)
    y *= 0.9 / max(float(np.max(np.abs(y))), 1e-6)
    tmp = out.with_suffix(".tmp.wav")
    sf.write(str(tmp), y, sample_rate, subtype="PCM_16")
    tmp.replace(out)
    return out


class TooShort(ValueError):
    """A recording that ends before its excerpt would (a candidate to skip, not an error)."""


def annotation_path(name: str, *, dev: bool = False) -> Path:
    return (DEV_ANNOTATIONS if dev else ANNOTATIONS) / f"{name}.json"


def annotated(*, dev: bool = False) -> list[tuple[Recording, Reference, dict]]:
    """The recordings that have an annotation file kept for evaluation, with their references
    (``dev``: the real-dev set's, in ``annotations/dev/``)."""
    out = []
    for path in sorted((DEV_ANNOTATIONS if dev else ANNOTATIONS).glob("*.json")):
        ann = json.loads(path.read_text())
        if not ann.get("use", True):
            continue
        src = ann["source"]
        rec = Recording(ann["name"], Path(src["path"]), float(src["offset"]), src.get("package", PACKAGE),
                        src.get("member", ""))
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
