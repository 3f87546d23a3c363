"""``kelly-edge bench``: measure the per-hop cost, the alternatives and the process, in one run.

Imported only by the bench command (and its tests): nothing on the box's run path imports it.
The entry point is :func:`kelly_edge.bench.main.bench_main`; it is re-exported lazily here so that
``python -m kelly_edge.bench.probe`` (the measured subprocess) does not pay for the bench itself.
"""

from __future__ import annotations

from typing import Any

__all__ = ["bench_main"]


def bench_main(seconds: float, json_out: str | None, wav: str | None, **kwargs: Any) -> int:
    """See :func:`kelly_edge.bench.main.bench_main`."""
    from kelly_edge.bench.main import bench_main as _main

    return _main(seconds, json_out, wav, **kwargs)
