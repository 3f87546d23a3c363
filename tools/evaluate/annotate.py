"""Annotate the real recordings with essentia: ``python -m tools.evaluate.annotate [--keep N]``.

For each excerpt (see ``recordings.py``), at 44.1 kHz as essentia's extractors expect:

- key: ``KeyExtractor`` with four profiles (krumhansl, temperley, edma, bgate); ``key_agreed``
  only when all four name the same key, else the key is kept for the record but not scored;
- beats: ``RhythmExtractor2013`` with its ``multifeature`` method (the reference) and its
  ``degara`` method (a second opinion); ``beats_agreement`` is mir_eval's F-measure between them;
- chords: HPCP frames (``SpectralPeaks`` -> ``HPCP``) into ``ChordsDetectionBeats`` on the beats
  (one chord a beat, the reference) and into ``ChordsDetection`` over 2 s windows (a second
  opinion); ``chords_agreement`` is the majmin agreement of the two. Consecutive equal chords are
  merged, and a chord shorter than :data:`MIN_CHORD_S` between two spans of one chord is taken
  as a flicker of it (per-beat labels flicker).

It writes ``annotations/<name>.json`` (with the versions and settings, so anyone can remake it)
for the recordings chosen: with ``--keep N``, the N whose analysers agree best (all four keys
first, then the beat agreement), preferring different albums. Run it once; the evaluation only
reads the files. ``--dev`` does the same for the real-dev set (other packages' music, see
``recordings.py``) into ``annotations/dev/``, keeping only excerpts whose two beat trackers agree
(F >= ``BEATS_AGREE``) and whose tempo is in :data:`DEV_BPM` (half of the evaluation's scored
recordings are 107-133 BPM and half 161.6: up to 160 until 2026-12, which left real-dev no fast
piece; a 200 BPM reading is a double-time count the judge would hold against a tactus), at
most two from one package while others are left. ``--wav FILE --out ANNOTATION.json`` annotates one file the same way (the demo's
player chords, ``kelly_edge/data/demo-chords.json``, were made so).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from kelly_edge.fileio import write_atomic
from tools.evaluate.cache import Cache
from tools.evaluate.recordings import (BEATS_AGREE, EXCERPT_S, Recording, TooShort, annotation_path, candidates,
                                       dev_candidates, excerpt)

log = logging.getLogger(__name__)

PROFILES = ("krumhansl", "temperley", "edma", "bgate")
ESSENTIA_RATE = 44100
FRAME, HOP = 4096, 2048
DEV_BPM = (60.0, 180.0)  # real-dev keeps excerpts whose reference tempo is in this range
MIN_CHORD_S = 1.0  # a shorter chord between two spans of one chord is a flicker of it


def _essentia_label(name: str) -> str:
    """Essentia chord name (``A``, ``C#m``) as a mir_eval label (``A:maj``, ``C#:min``)."""
    if name.endswith("m"):
        return f"{name[:-1]}:min"
    return f"{name}:maj"


def _hpcp(audio: np.ndarray) -> np.ndarray:
    import essentia.standard as es

    window, spectrum = es.Windowing(type="blackmanharris62"), es.Spectrum()
    peaks = es.SpectralPeaks(orderBy="magnitude", magnitudeThreshold=1e-5, minFrequency=40, maxFrequency=5000,
                             maxPeaks=60, sampleRate=ESSENTIA_RATE)
    hpcp = es.HPCP(size=12, referenceFrequency=440, harmonics=8, bandPreset=True, minFrequency=40,
                   maxFrequency=5000, weightType="cosine", nonLinear=False, windowSize=1.0, sampleRate=ESSENTIA_RATE)
    frames = []
    for frame in es.FrameGenerator(audio, frameSize=FRAME, hopSize=HOP, startFromZero=True):
        freqs, mags = peaks(spectrum(window(frame)))
        frames.append(hpcp(freqs, mags))
    return np.array(frames, dtype=np.float32)


def _merge(times: list[float], labels: list[str], end: float, min_s: float = 0.0) -> list[dict[str, Any]]:
    """Chord changes of per-beat (or per-frame) labels: equal neighbours merged, and a chord held
    for less than ``min_s`` between two spans of one chord relabelled as that chord (essentia's
    per-beat chords flicker to a neighbour of the harmony for a beat and back)."""
    spans: list[list[Any]] = []  # [start, end, label]
    for i, (t, lab) in enumerate(zip(times, labels)):
        t_end = times[i + 1] if i + 1 < len(times) else end
        if spans and spans[-1][2] == lab:
            spans[-1][1] = t_end
        else:
            spans.append([float(t), float(t_end), lab])
    if min_s > 0.0:  # A, a short B, A again: B was a flicker of A
        labels_now = [sp[2] for sp in spans]
        for i in range(1, len(spans) - 1):
            if spans[i][1] - spans[i][0] < min_s and labels_now[i - 1] == labels_now[i + 1]:
                spans[i][2] = labels_now[i - 1]
        kept: list[list[Any]] = []
        for span in spans:
            if kept and kept[-1][2] == span[2]:
                kept[-1][1] = span[1]
            else:
                kept.append(span)
        spans = kept
    return [{"t": round(start, 3), "chord": lab} for start, _, lab in spans]


def annotate(rec: Recording, cache: Cache) -> dict[str, Any]:
    """The annotation of one recording's excerpt, with where it came from."""
    wav = excerpt(rec, cache, sample_rate=ESSENTIA_RATE)
    source = {"package": rec.package, "path": str(rec.path), "offset": rec.offset, "seconds": EXCERPT_S}
    if rec.member:
        source["member"] = rec.member
    return {"name": rec.name, "source": source, **analyse(wav)}


def analyse(wav: Path) -> dict[str, Any]:
    """Key, beats and chords of a WAV file (any rate: essentia resamples it to 44.1 kHz)."""
    import essentia
    import essentia.standard as es
    import mir_eval

    from tools.evaluate.metrics import chords_majmin

    audio = es.MonoLoader(filename=str(wav), sampleRate=ESSENTIA_RATE)()
    duration = round(len(audio) / ESSENTIA_RATE, 3)
    keys = {}
    for profile in PROFILES:
        key, scale, strength = es.KeyExtractor(profileType=profile, sampleRate=ESSENTIA_RATE)(audio)
        keys[profile] = {"key": f"{key} {scale}", "strength": round(float(strength), 3)}
    names = {k["key"] for k in keys.values()}
    bpm, beats, confidence, _, _ = es.RhythmExtractor2013(method="multifeature")(audio)
    bpm2, beats2, _, _, _ = es.RhythmExtractor2013(method="degara")(audio)
    beats_f = float(mir_eval.beat.f_measure(np.asarray(beats, float), np.asarray(beats2, float)))
    pcp = _hpcp(audio)
    ticks = np.asarray(beats, float)
    by_beat, _ = es.ChordsDetectionBeats(hopSize=HOP, sampleRate=ESSENTIA_RATE)(pcp, ticks)
    chords = _merge([0.0] + list(ticks[1 : len(by_beat)]), [_essentia_label(c) for c in by_beat], duration, MIN_CHORD_S)
    by_frame, _ = es.ChordsDetection(hopSize=HOP, windowSize=2.0, sampleRate=ESSENTIA_RATE)(pcp)
    frame_t = np.arange(len(by_frame)) * HOP / ESSENTIA_RATE
    second = _merge(list(frame_t), [_essentia_label(c) for c in by_frame], duration)
    segments = [(c["t"], chords[i + 1]["t"] if i + 1 < len(chords) else duration, c["chord"]) for i, c in enumerate(chords)]
    agreement = chords_majmin(segments, [(c["t"], c["chord"]) for c in second], duration)
    first_key = keys[PROFILES[0]]["key"]
    return {
        "duration": duration,
        "made_with": {
            "essentia": essentia.__version__,
            "key": f"KeyExtractor(profileType in {list(PROFILES)}), 44.1 kHz mono",
            "beats": "RhythmExtractor2013(method='multifeature'); second opinion method='degara'",
            "chords": f"HPCP(12, 8 harmonics) on {FRAME}/{HOP} frames -> ChordsDetectionBeats on the beats, "
                      f"a chord shorter than {MIN_CHORD_S:g} s between two spans of one chord relabelled as it; "
                      "second opinion ChordsDetection(windowSize=2 s)",
        },
        "key": first_key,
        "key_agreed": len(names) == 1,
        "key_profiles": keys,
        "bpm": round(float(bpm), 2),
        "bpm_degara": round(float(bpm2), 2),
        "beat_confidence": round(float(confidence), 3),
        "beats": [round(float(t), 3) for t in beats],
        "beats_agreement": round(beats_f, 3),
        "chords": chords,
        "chords_agreement": round(agreement, 3),
        "use": True,
    }


def _keep_dev(results: list[dict[str, Any]], keep: int) -> int:
    """Write the real-dev annotations: beats agreed, best agreement first, at most two a package
    while other packages are left."""
    agreed = sorted((a for a in results if a["beats_agreement"] >= BEATS_AGREE and DEV_BPM[0] <= a["bpm"] <= DEV_BPM[1]),
                    key=lambda a: -a["beats_agreement"])
    kept: list[dict[str, Any]] = []
    per: dict[str, int] = {}
    for limit in (2, keep):
        for ann in agreed:
            pkg = ann["source"]["package"]
            if len(kept) < keep and ann not in kept and per.get(pkg, 0) < limit:
                kept.append(ann)
                per[pkg] = per.get(pkg, 0) + 1
    for ann in kept:
        write_atomic(annotation_path(ann["name"], dev=True), (json.dumps(ann, indent=1) + "\n").encode())
    log.info("real-dev: %d of %d agree; kept %d: %s", len(agreed), len(results), len(kept),
             ", ".join(f"{a['name']} ({a['bpm']:.0f} BPM, F {a['beats_agreement']:.2f})" for a in kept))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.evaluate.annotate", description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=int, default=10, help="how many recordings to keep (best agreement first)")
    parser.add_argument("--dev", action="store_true",
                        help="the real-dev set (other packages) into annotations/dev/")
    parser.add_argument("--wav", type=Path, help="annotate this one file instead (e.g. the demo) into --out")
    parser.add_argument("--out", type=Path, help="with --wav: the annotation file to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.wav is not None:
        if args.out is None:
            parser.error("--wav needs --out ANNOTATION.json")
        ann = {"name": args.wav.stem, "source": {"path": str(args.wav)}, **analyse(args.wav)}
        write_atomic(args.out, (json.dumps(ann, indent=1) + "\n").encode())
        log.info("%s: key %s, %.1f BPM, %d chord changes -> %s", args.wav, ann["key"], ann["bpm"], len(ann["chords"]), args.out)
        return 0
    cache = Cache()
    results = []
    for rec in (dev_candidates() if args.dev else candidates()):
        try:
            ann = annotate(rec, cache)
        except FileNotFoundError as err:
            print(err, file=sys.stderr)
            return 2
        except TooShort as err:
            log.info("skipped %s", err)
            continue
        log.info("%-28s key %-10s agreed %-5s %6.1f BPM beats-agree %.2f chords-agree %.2f", rec.name, ann["key"],
                 ann["key_agreed"], ann["bpm"], ann["beats_agreement"], ann["chords_agreement"])
        results.append(ann)
    if args.dev:  # the tracker's dev set: beats are what it is for
        return _keep_dev(results, args.keep)
    results.sort(key=lambda a: (not a["key_agreed"], -a["beats_agreement"]))
    kept: list[dict[str, Any]] = []
    albums: dict[str, int] = {}
    for ann in results:  # at most half from one album while others are left
        album = ann["name"].split("-")[0]
        if len(kept) < args.keep and albums.get(album, 0) < max(args.keep // 2, 1):
            kept.append(ann)
            albums[album] = albums.get(album, 0) + 1
    for ann in results:
        if len(kept) < args.keep and ann not in kept:
            kept.append(ann)
    for ann in kept:
        write_atomic(annotation_path(ann["name"]), (json.dumps(ann, indent=1) + "\n").encode())
    log.info("kept %d: %s", len(kept), ", ".join(a["name"] for a in kept))
    return 0


if __name__ == "__main__":
    sys.exit(main())
