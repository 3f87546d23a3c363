"""Progression memory through the whole engine: a rendered loop, run offline with the trained models.

The player repeats a 4-bar loop and leaves it once (``make_piece(departure=2)``). On a config grid at
the player's tempo whose beats are the player's (``on_grid``: the beat tracker is judged elsewhere),
the box must strike the loop's changes on the player's, from the second pass on, and still follow
the departure within a beat. Without the memory the same run strikes them a recognition lag late
(the reactive path), which the first assertion also shows.
"""

from __future__ import annotations

import pytest

from kelly_edge.config.loader import parse_config
from tools.evaluate import metrics
from tools.evaluate.cache import Cache
from tools.evaluate.pieces import make_piece
from tools.evaluate.run import DEV_LOOP_PIECES, DEV_LOOP_SECONDS, reference_of, render_piece
from tools.evaluate.systems import run_box

SEED, STYLE, TEXTURE, DEPARTURE = DEV_LOOP_PIECES[0]
PIECE = make_piece(SEED, seconds=DEV_LOOP_SECONDS, style=STYLE, texture=TEXTURE, tempo_path="steady",
                   departure=DEPARTURE, on_grid=True)


def follow(tmp_path_factory: pytest.TempPathFactory, memory: bool) -> dict:
    wav = render_piece(PIECE, Cache(tmp_path_factory.mktemp("loop-render")))
    bpm = 60.0 / (PIECE.beats[1] - PIECE.beats[0])
    config = parse_config(f"scheduler: {{budget_ms: 100}}\ntempo: {{source: config, bpm: {bpm:.4f}}}\n"
                          f"generator: {{progression_memory: {'true' if memory else 'false'}}}")
    perf, _ = run_box(wav, config)
    ref = reference_of(PIECE)
    assert ref.loop_pass is not None and ref.chords is not None and perf.chords is not None
    return metrics.loop_follow(ref.chords, ref.loop_pass, ref.beats, perf.chords)


@pytest.mark.slow
def test_from_the_second_pass_the_changes_land_on_the_players(tmp_path_factory: pytest.TempPathFactory) -> None:
    reactive = follow(tmp_path_factory, memory=False)
    assert reactive["loop_later_s"] > metrics.LOOP_WINDOW_S, reactive  # recognition alone is late on every pass
    result = follow(tmp_path_factory, memory=True)
    hits, total = result["loop_later_ok"]
    assert total >= 8
    assert abs(result["loop_later_s"]) <= metrics.LOOP_WINDOW_S, result
    assert hits >= total / 2, result
    assert result["loop_first_s"] > metrics.LOOP_WINDOW_S, result  # the first pass is heard before it can be remembered
    assert result["departure_beat"] == (1, 1), result  # the departure is followed within a beat
