"""The box's beats on rendered music with known beats, scored by mir_eval (an independent judge).

The pieces are written note by note in :mod:`tools.beat_pieces` (band and solo piano, a tempo
change, an accelerando; one held-out piece) and rendered with FluidSynth; the engine runs each
as ``run --input`` does. The thresholds (beat F-measure after the first 4 s, per piece, and the
tempo within 4 %) sit just below what was measured, so the test fails when tracking gets worse.
The full table: ``python -m tools.beat_pieces``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import beat_pieces

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("beat-pieces")


@pytest.mark.parametrize("piece", beat_pieces.suite_pieces(), ids=lambda p: p.name)
def test_the_box_plays_on_the_rendered_beat(piece: beat_pieces.Piece, folder: Path) -> None:
    score = beat_pieces.score_piece(piece, folder, seconds=30.0)
    assert score.beat_f >= beat_pieces.SUITE[piece.name], score
    assert score.tempo_error <= beat_pieces.TEMPO_TOLERANCE, score
