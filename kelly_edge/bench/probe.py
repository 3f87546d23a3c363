"""The measured subprocess: ``kelly-edge run --input`` with two observation points.

``python -m kelly_edge.bench.probe MARKS.json -- <kelly-edge arguments>`` runs the real command
line (:func:`kelly_edge.cli.main`) after hooking :class:`~kelly_edge.engine.engine.Engine`:

- the first ``process_hop`` records the wall-clock time (``time.time()``, comparable with the
  parent's clock just before it spawned this process) and the RSS, then unhooks itself so the
  remaining hops run the unmodified method;
- ``Engine.close`` (end of the audio, before the MIDI file is written) records the RSS, the peak
  RSS, and which heavy modules (TensorFlow, librosa, keras) were ever imported.

The marks are written to MARKS.json. Nothing else differs from ``kelly-edge run``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

HEAVY = ("tensorflow", "librosa", "keras", "torch", "scipy")


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main(argv: list[str]) -> int:
    marks_path, rest = argv[0], argv[2:] if len(argv) > 1 and argv[1] == "--" else argv[1:]
    from kelly_edge.engine.engine import Engine

    marks: dict[str, Any] = {}
    original_hop, original_close = Engine.process_hop, Engine.close

    def first_hop(self: Engine, hop: Any) -> None:
        original_hop(self, hop)
        marks["first_hop_wall"] = time.time()
        marks["rss_start_kb"] = _status_kb("VmRSS")
        Engine.process_hop = original_hop  # type: ignore[method-assign]

    def close(self: Engine) -> None:
        if not self.closed:
            marks["rss_end_kb"] = _status_kb("VmRSS")
            marks["audio_s"] = self.time_s
        original_close(self)

    Engine.process_hop = first_hop  # type: ignore[method-assign]
    Engine.close = close  # type: ignore[method-assign]
    from kelly_edge.cli import main as cli_main

    code = cli_main(rest)
    marks["rss_peak_kb"] = _status_kb("VmHWM")
    marks["heavy_modules"] = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in HEAVY})
    marks["exit_code"] = code
    with open(marks_path, "w", encoding="utf-8") as fh:
        json.dump(marks, fh)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
