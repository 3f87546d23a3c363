"""Issue 13 item 4 on all ten real recordings (not only the small set's two): the box's report
``key`` against essentia's annotation (all four of its key profiles agreed on each), judged by
mir_eval. A major/minor flip is the parallel (weighted score 0.2) or the relative key (0.3).

Measured when this was written (``python -m tools.evaluate --no-transcription``, real group): 9 of
10 exact, weighted 0.92; the one miss is a parallel flip, legacy-track13 (F major heard as F
minor). It is listed in :data:`KNOWN_FLIPS` so that a new flip fails here, and so does fixing it
(the list must then shrink): the flip is still open (issue 13 item 4).
"""

from __future__ import annotations

import numpy as np
import pytest

from tools.evaluate import metrics
from tools.evaluate.cache import Cache
from tools.evaluate.recordings import annotated, excerpt
from tools.evaluate.run import judge_config
from tools.evaluate.systems import run_box

pytestmark = pytest.mark.slow

FLIP_SCORES = (0.2, 0.3)  # mir_eval: parallel, relative
KNOWN_FLIPS = {"legacy-track13": "F minor"}
WEIGHTED_MIN = 0.9


@pytest.fixture(scope="module")
def keys() -> dict[str, tuple[str, str]]:
    """``{recording: (annotated key, the box's report key)}``."""
    cache, config = Cache(), judge_config()
    out = {}
    for rec, ref, _ in annotated():
        perf, _ = run_box(excerpt(rec, cache), config)
        out[ref.name] = (ref.key, perf.key)
    return out


def test_no_new_major_minor_flips_on_real_recordings(keys: dict[str, tuple[str, str]]) -> None:
    assert len(keys) >= 10
    flips = {name: est for name, (ref, est) in keys.items() if metrics.key_score(ref, est) in FLIP_SCORES}
    assert flips == KNOWN_FLIPS, f"major/minor flips {flips}, known {KNOWN_FLIPS} (annotated: {keys})"


def test_real_recording_key_score(keys: dict[str, tuple[str, str]]) -> None:
    score = float(np.mean([metrics.key_score(ref, est) for ref, est in keys.values()]))
    assert score >= WEIGHTED_MIN, keys
