"""``python -m kelly_edge.live``: the live commands on their own, with the CLI's error contract.

The same entry points the main ``kelly-edge`` CLI calls (``run`` without ``--input``, ``devices``,
``calibrate``); the live tests start the box through this module so they exercise a real process
(signals, exit codes, stderr) without depending on the main CLI's wiring.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from kelly_edge.errors import KellyEdgeError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kelly_edge.live")
    parser.add_argument("--debug", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--config")
    run.add_argument("--duration", type=float)
    run.add_argument("--report")
    run.add_argument("--trace", action="store_true")
    sub.add_parser("devices")
    cal = sub.add_parser("calibrate")
    cal.add_argument("--config")
    cal.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, format="kelly-edge: %(message)s",
                        stream=sys.stderr)
    from kelly_edge.live.commands import calibrate_main, devices_main, live_main

    try:
        if args.command == "devices":
            return devices_main()
        from kelly_edge.config import default_config, load_config

        config = load_config(args.config) if args.config else default_config()
        if args.command == "calibrate":
            return calibrate_main(config, args.seconds)
        return live_main(config, args)
    except KellyEdgeError as err:
        for line in getattr(err, "messages", None) or [str(err)]:
            print(f"kelly-edge: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as err:
        if args.debug:
            raise
        print(f"kelly-edge: internal error: {type(err).__name__}: {err} (rerun with --debug for details)", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
