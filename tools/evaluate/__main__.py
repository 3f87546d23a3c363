"""``python -m tools.evaluate``: how well the box plays along, as a table (markdown + JSON).

    python -m tools.evaluate                  # the full set: rendered (dev, held-out) + real recordings
    python -m tools.evaluate --set small      # the suite's small set
    python -m tools.evaluate --no-transcription --groups rendered-heldout
    python -m tools.evaluate --no-transcription --groups real-dev   # the tracker's real tuning set (make evaluate)

Writes ``OUT/table.md`` and ``OUT/results.json`` (per-piece scores too) and prints the table,
with the box's figures before issue 13 (``before.json``, made by this command on main) beside.
Renders, excerpts and transcriptions are cached under ``$KELLY_EVAL_CACHE`` (default
``~/.cache/kelly-edge/evaluate``), so a re-run only runs the box again.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from kelly_edge.errors import KellyEdgeError
from kelly_edge.fileio import write_atomic
from tools.evaluate.run import SYSTEMS, evaluate, markdown

BEFORE = Path(__file__).with_name("before.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("full", "small"), default="full", help="which material (default: full)")
    parser.add_argument("--groups", nargs="+", choices=("rendered-dev", "rendered-heldout", "real", "real-dev"),
                        help="only these groups (default: all but real-dev, the tuning set of real recordings)")
    parser.add_argument("--no-transcription", action="store_true", help="skip the basic-pitch ceiling")
    parser.add_argument("--config", metavar="CONFIG.yaml", help="the box's config (default: built-in defaults with a 100 ms model budget, see run.JUDGE_CONFIG)")
    parser.add_argument("--out", metavar="DIR", default="out/evaluate", help="where table.md and results.json go")
    parser.add_argument("--before", metavar="RESULTS.json", nargs="+", default=[str(BEFORE)],
                        help="earlier runs' results.json: their box columns are shown beside today's, in this order "
                             "(default: the figures of main before issue 13, tools/evaluate/before.json; '' for none)")
    parser.add_argument("--commit", metavar="NAME", help="what was evaluated (e.g. a git commit), saved in results.json")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    systems = [s for s in SYSTEMS if not (s == "transcription" and args.no_transcription)]
    before: list[dict] = []
    for path in (p for p in args.before if p):
        try:
            before.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as err:
            print(f"python -m tools.evaluate: --before {path}: cannot read it ({err})", file=sys.stderr)
            return 2
    config = None
    try:
        if args.config:
            from kelly_edge.config.loader import load_config

            config = load_config(args.config)
        result = evaluate(args.set, systems=systems, config=config, groups=args.groups)
    except (KellyEdgeError, FileNotFoundError, RuntimeError) as err:
        print(f"python -m tools.evaluate: {err}", file=sys.stderr)
        return 2
    if args.commit:
        result["commit"] = args.commit
    before = [b for b in before if b.get("set") == result["set"]]  # another set's figures are not comparable
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown(result, before)
    write_atomic(out / "table.md", table.encode())
    write_atomic(out / "results.json", (json.dumps(result, indent=1) + "\n").encode())
    print(table)
    print(f"{result['seconds']:.0f} s; wrote {out / 'table.md'} and {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
