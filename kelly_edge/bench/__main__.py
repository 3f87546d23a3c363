"""``python -m kelly_edge.bench [--seconds N] [--json OUT.json] [--wav FILE.wav]`` until the CLI wires it."""

from __future__ import annotations

import argparse
import sys

from kelly_edge.bench import bench_main
from kelly_edge.errors import KellyEdgeError

if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="kelly-edge bench")
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--json", dest="json_out")
    p.add_argument("--wav")
    a = p.parse_args()
    try:
        sys.exit(bench_main(a.seconds, a.json_out, a.wav))
    except KellyEdgeError as err:
        print(f"kelly-edge: error: {err}", file=sys.stderr)
        sys.exit(2)
