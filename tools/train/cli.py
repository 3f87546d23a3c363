"""``python -m tools.train build|train|evaluate|all``: the reproducible model pipeline.

Examples::

    python -m tools.train all                      # full rebuild into models_tflite/ (~2-core hour budget)
    python -m tools.train all --smoke --out /tmp/m  # tiny run: all five through conversion
    python -m tools.train evaluate                 # print the per-model table from the cache
    python -m tools.train build --models harmony --corpus-dir ~/midi   # your own MIDI/MusicXML

Errors a user can cause (missing dataset folder, nothing usable, a model disagreeing with the spec)
print one line and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from kelly_edge.errors import KellyEdgeError
from kelly_edge.models import spec


def _models(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in spec.BY_NAME]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown model(s) {', '.join(bad)}; choose from {', '.join(spec.MODEL_NAMES)}")
    return [n for n in spec.MODEL_NAMES if n in names]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.train", description=__doc__.split("\n")[0])
    p.add_argument("command", choices=("build", "train", "evaluate", "all"))
    p.add_argument("--out", type=Path, default=Path("models_tflite"), help="folder for the .tflite files and manifest.json")
    p.add_argument("--smoke", action="store_true", help="tiny subset, a few steps (tests)")
    p.add_argument("--models", type=_models, default=list(spec.MODEL_NAMES), help="comma list, default all five")
    p.add_argument("--data-cache", type=Path, default=None, help="dataset cache (default build/train_cache, or build/train_cache_smoke)")
    p.add_argument("--corpus-dir", type=Path, default=None, help="train the symbolic models on your own MIDI/MusicXML folder")
    p.add_argument("--deam", type=Path, default=None, help="train the emotion model on your DEAM copy (audio + ratings)")
    p.add_argument("--emopia", type=Path, default=None, help="train the emotion model on your EMOPIA copy (MIDI + quadrants)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="override the plan's epoch count")
    p.add_argument("--audio-pieces", type=int, default=None, help="emotion/dynamics: corpus pieces rendered (default 200)")
    p.add_argument("--renders", type=int, default=None, help="emotion/dynamics: renders per piece (default 4)")
    p.add_argument("--chorales", type=int, default=None, help="parse only the first N chorales (default all)")
    p.add_argument("--chord-renders", type=int, default=None, help="harmony: rendered accompaniments (default 400)")
    p.add_argument("--write-readme", action="store_true", help="evaluate: also put the table into <out>/README.md")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose or not args.smoke else logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tools.train import pipeline as P

    plan = P.Plan.smoke(args.seed) if args.smoke else P.Plan.full(args.seed)
    if args.epochs is not None:
        plan.epochs = args.epochs
    for name in ("audio_pieces", "renders", "chorales", "chord_renders"):
        if getattr(args, name) is not None:
            setattr(plan, name, getattr(args, name))
    cache = args.data_cache or Path("build/train_cache_smoke" if args.smoke else "build/train_cache")
    t0 = time.time()
    try:
        stages = [args.models]
        if args.command == "all" and "emotion" in args.models and "dynamics" in args.models:
            # dynamics learns from the emotion model's output, as on stage: the one just trained
            stages = [[m for m in args.models if m != "dynamics"], ["dynamics"]]
        results = {}
        for models in stages:
            if args.command in ("build", "all"):
                P.build(models, plan, cache, corpus_dir=args.corpus_dir, deam_dir=args.deam, emopia_dir=args.emopia,
                        models_dir=args.out)
            if args.command in ("train", "all"):
                entries = P.train(models, plan, cache, args.out)
                results.update({n: e["metrics"] for n, e in entries.items()})
        if args.command == "evaluate":
            results = P.evaluate(args.models, plan, cache, args.out, update_manifest=args.write_readme)
        if args.command in ("evaluate", "train", "all"):
            text = P.table({n: results[n] for n in spec.MODEL_NAMES if n in results})
            print(text)
            if args.write_readme or args.command == "all":
                from tools.train.readme import update_readme

                update_readme(args.out, text, time.time() - t0 if args.command == "all" else None)
    except KellyEdgeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"done in {time.time() - t0:.0f} s", file=sys.stderr)
    return 0
