"""The three players the evaluation compares: the box, random notes in the key, a transcription.

- ``box``: the whole box on the recording (``kelly_edge.engine.offline.run_file``, default config
  or the one given), read back from its MIDI file and its report's ``beats``/``tempo``/``key``/
  ``chords``.
- ``random``: the floor. Notes drawn uniformly from the reference key's scale (so it is never out
  of key), on a grid at the box's default 100 BPM with a random phase; a random diatonic triad per
  bar as its "chords". It is given the key, so its key score is not shown.
- ``transcription``: the ceiling for "notes that belong to what is heard": basic-pitch's
  transcription of the input itself (its model ships in its wheel). It has no beats, tempo or
  chords of its own. Transcriptions are cached by the audio's content.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from kelly_edge.models import spec
from tools.evaluate.cache import Cache, file_digest
from tools.evaluate.metrics import Performance, Reference
from tools.evaluate.pieces import degrees

log = logging.getLogger(__name__)

RANDOM_BPM = 100.0  # the box's default tempo: what it plays before it follows anyone
_QUALITY = {"maj": "maj", "min": "min", "7": "7", "m7": "min7", "dim": "dim"}
BOX_LABELS = {spec.chord_name(i): "N" if i == spec.NO_CHORD else
              f"{spec.PITCH_NAMES[i // len(spec.CHORD_QUALITIES)]}:{_QUALITY[spec.CHORD_QUALITIES[i % len(spec.CHORD_QUALITIES)]]}"
              for i in range(spec.N_CHORD_CLASSES)}
"""The report's chord names (``Am``, ``G7``, ``N.C.``) as mir_eval labels (``A:min``, ``G:7``, ``N``)."""


def run_box(wav: Path, config: Any | None = None) -> tuple[Performance, dict[str, Any]]:
    """The box's performance on ``wav`` and its run report."""
    from kelly_edge.config.schema import default_config
    from kelly_edge.engine.offline import run_file
    from kelly_edge.midi.notes import pair_notes
    from kelly_edge.midi.smf_read import read_smf

    config = config or default_config()
    with tempfile.TemporaryDirectory(prefix="kelly-eval-") as tmp:
        midi = Path(tmp) / "box.mid"
        report = run_file(config, wav, midi)
        notes, _ = pair_notes(read_smf(midi))
    wire = {int(ch) - 1: voice for voice, ch in report["voices"].items()}
    by_voice: dict[str, list[tuple[float, int]]] = {v: [] for v in report["voices"]}
    for n in notes:
        if n.channel in wire:
            by_voice[wire[n.channel]].append((n.start, n.note))
    perf = Performance(
        notes=by_voice, beats=np.array(report["beats"], float), downbeats=np.array(report["downbeats"], float),
        tempo=[(c["t"], c["bpm"]) for c in report["tempo"]], key=report["key"],
        chords=[(c["t"], BOX_LABELS[c["chord"]]) for c in report["chords"]],
    )
    return perf, report


def random_in_key(ref: Reference, seed: int) -> Performance:
    """Random scale notes for three voices on a 100 BPM grid (random phase), given the key."""
    rng = np.random.default_rng(seed)
    assert ref.key is not None
    tonic_name, mode = ref.key.split()
    import mir_eval

    tonic = mir_eval.key.KEY_TO_SEMITONE[tonic_name.lower()]
    major = mode == "major"
    scale = degrees(tonic, major)
    beat_s = 60.0 / RANDOM_BPM
    beats = np.arange(rng.uniform(0, beat_s), ref.duration, beat_s)
    notes: dict[str, list[tuple[float, int]]] = {"melody": [], "chord": [], "bass": []}
    chords: list[tuple[float, str]] = []
    qualities = ("maj", "min", "min", "maj", "maj", "min", "dim") if major else ("min", "dim", "maj", "min", "min", "maj", "maj")
    for i, t in enumerate(beats):
        notes["bass"].append((float(t), 36 + int(rng.choice(scale))))
        for pc in rng.choice(scale, size=3, replace=False):
            notes["chord"].append((float(t), 60 + int(pc)))
        for half in (0.0, 0.5):
            if rng.random() < 0.6:
                notes["melody"].append((float(t + half * beat_s), 72 + int(rng.choice(scale))))
        if i % 4 == 0:
            d = int(rng.integers(7))
            chords.append((float(t), f"{spec.PITCH_NAMES[scale[d]]}:{qualities[d]}"))
    return Performance(notes=notes, beats=beats, downbeats=beats[::4], tempo=[(0.0, RANDOM_BPM)], key=None, chords=chords)


BASIC_PITCH_MODEL = "nmp.tflite"


def transcription(wav: Path, cache: Cache) -> Performance | None:
    """basic-pitch's notes of ``wav`` as one voice ``all``; None (with a log line saying how to get
    it) when basic-pitch is not installed."""
    key = f"basic-pitch-0.4.0-{BASIC_PITCH_MODEL}-{file_digest(wav)}"
    hit = cache.get_json("transcriptions", key)
    if hit is None:
        try:
            from basic_pitch import ICASSP_2022_MODEL_PATH
            from basic_pitch.inference import Model, predict
        except ImportError:
            log.warning("no transcription ceiling: basic-pitch is not installed (make eval-deps)")
            return None
        model = Model(Path(ICASSP_2022_MODEL_PATH).parent / BASIC_PITCH_MODEL)
        _, _, events = predict(str(wav), model)
        hit = [[float(start), int(pitch)] for start, _end, pitch, _amp, _bends in events]
        cache.put_json("transcriptions", key, hit)
    notes = sorted((float(t), int(p)) for t, p in hit)
    return Performance(notes={"all": notes})

