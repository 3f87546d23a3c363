"""The evaluation: the judge scores what it should, and the box stays above the suite's floor.

The judge is checked first (an oracle that plays the piece's own chords on its own beats scores
1; random notes score low; a double tempo is a miss), then the small set is run through the box
and every score is held to ``thresholds.THRESHOLDS``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kelly_edge.generate import theory
from kelly_edge.models import spec
from tests.evaluate.thresholds import THRESHOLDS
from tools.evaluate import metrics
from tools.evaluate.cache import Cache
from tools.evaluate.metrics import Performance
from tools.evaluate.pieces import SEED_BASE, arpeggio_notes, make_piece
from tools.evaluate.recordings import annotated, missing_hint
from tools.evaluate.run import METRIC_ROWS, evaluate, heldout_seeds, markdown, reference_of, render_piece
from tools.evaluate.systems import BOX_LABELS, random_in_key
from tools.render import load_wav_mono

PIECE = make_piece(SEED_BASE + 501, seconds=16.0, style="issue", texture="strum", tempo_path="jump")


def oracle(piece=PIECE) -> Performance:
    """The piece's own parts as the three voices, its beats, tempo path, key and chords."""
    beats = np.array(piece.beats)
    notes = {"melody": [(on, p) for on, _, ch, p, _ in piece.notes if ch == 2],
             "chord": [(on, p) for on, _, ch, p, _ in piece.notes if ch == 0],
             "bass": [(on, p) for on, _, ch, p, _ in piece.notes if ch == 1]}
    tempo = [(float(t), 60.0 / float(d)) for t, d in zip(beats[:-1], np.diff(beats))]
    return Performance(notes=notes, beats=beats, downbeats=np.array(piece.downbeats), tempo=tempo, key=piece.key,
                       chords=[(s, lab) for s, _, lab in piece.chords])


def test_an_oracle_scores_full_marks_and_random_notes_do_not() -> None:
    ref = reference_of(PIECE)
    best = metrics.score(ref, oracle())
    assert best["beat_f"] == pytest.approx(1.0) and best["tempo_ok"] == 1.0 and best["key"] == 1.0
    assert best["downbeat_f"] == pytest.approx(1.0)
    assert best["chords_majmin"] == pytest.approx(1.0)
    for voice in ("chord", "bass"):
        hits, total = best[f"tone_{voice}"]
        assert total > 10 and hits == total
    hits, total = best["on_beat"]
    assert hits / total > 0.45  # strumming: the down strokes on the beat, the up strokes between
    floor = metrics.score(ref, random_in_key(ref, seed=1))
    hits, total = floor["tone_all"]
    assert 0.2 < hits / total < 0.7  # scale tones: some are chord tones, most are not
    assert floor["chords_majmin"] < 0.5 and floor["beat_f"] < 0.6


def test_bar_lines_a_beat_off_score_no_downbeats_though_every_beat_lands() -> None:
    ref = reference_of(PIECE)
    perf = oracle()
    beats = np.array(PIECE.beats)
    perf.downbeats = beats[1::4]  # the bar starting on beat 2
    s = metrics.score(ref, perf)
    assert s["beat_f"] == pytest.approx(1.0) and s["downbeat_f"] == 0.0


def test_a_double_tempo_and_a_late_chord_are_misses() -> None:
    ref = reference_of(PIECE)
    perf = oracle()
    perf.tempo = [(t, 2 * bpm) for t, bpm in perf.tempo]
    assert metrics.score(ref, perf)["tempo_ok"] == 0.0
    late = [(s + 2 * (PIECE.beats[1] - PIECE.beats[0]), lab) for s, _, lab in PIECE.chords]  # two beats late
    assert 0.3 < metrics.chords_majmin(PIECE.chords, late, PIECE.duration) < 0.7


LOOP = make_piece(SEED_BASE + 600, seconds=40.0, style="pop", texture="block", tempo_path="steady", departure=2)


def test_a_loop_piece_knows_its_passes_and_its_departure() -> None:
    assert LOOP.loop_pass is not None and len(LOOP.loop_pass) == len(LOOP.chords)
    assert LOOP.loop_pass[:4] == (0, 0, 0, 0) and LOOP.loop_pass[4:8] == (1, 1, 1, 1)
    left = [i for i, p in enumerate(LOOP.loop_pass) if p < 0]
    assert left == [9, 10]  # the third pass's second and third chords
    loop = [lab for _, _, lab in LOOP.chords[:4]]
    for i in left:  # neither the loop's chord there nor the one before
        assert LOOP.chords[i][2] not in (loop[i % 4], LOOP.chords[i - 1][2])
    after = [lab for _, _, lab in LOOP.chords[11:]]
    assert len(after) >= 3 and after == (loop[3:] + loop * 2)[: len(after)]  # then the loop again
    assert make_piece(SEED_BASE + 1).loop_pass is not None and make_piece(SEED_BASE + 0).loop_pass is None  # 12-bar blues


def test_loop_changes_are_timed_against_the_players_and_a_departure_is_followed_or_not() -> None:
    ref = reference_of(LOOP)
    beat = LOOP.beats[1] - LOOP.beats[0]
    on_time = metrics.score(ref, oracle(LOOP))
    assert on_time["loop_later_s"] == pytest.approx(0.0) and on_time["loop_first_s"] == pytest.approx(0.0)
    hits, total = on_time["loop_later_ok"]
    assert hits == total >= 8 and on_time["departure_beat"] == (1, 1)
    late = [(s + 0.4, lab) for s, _, lab in LOOP.chords]  # a recognition lag behind
    scored = metrics.loop_follow(LOOP.chords, LOOP.loop_pass, ref.beats, late)
    assert scored["loop_later_s"] == pytest.approx(0.4) and scored["loop_later_ok"] == (0, total)
    assert scored["departure_beat"] == (1, 1)  # 0.4 s is within a beat (0.7 s)
    loop = [lab for _, _, lab in LOOP.chords[:4]]
    kept_on = [(s, loop[i % 4]) for i, (s, _, _) in enumerate(LOOP.chords)]  # never hears the departure
    scored = metrics.loop_follow(LOOP.chords, LOOP.loop_pass, ref.beats, kept_on)
    assert scored["departure_beat"] == (0, 1)
    slow = [(s + 1.5 * beat if p < 0 else s, lab) for (s, _, lab), p in zip(LOOP.chords, LOOP.loop_pass)]
    assert metrics.loop_follow(LOOP.chords, LOOP.loop_pass, ref.beats, slow)["departure_beat"] == (0, 1)


def test_notes_just_after_a_change_get_a_grace() -> None:
    chords = [(0.0, 6.0, "C:maj"), (6.0, 12.0, "A:min")]
    wrong_then_right = [(5.0, 64), (6.2, 64), (7.0, 69), (8.0, 71)]  # E in C; E just after the change; A; B
    assert metrics.chord_tone_counts(wrong_then_right, chords) == (2, 3)
    on_the_change = [(5.97, 69), (5.9, 69)]  # A struck 30 ms before the change to Am: on it; 100 ms: not
    assert metrics.chord_tone_counts(on_the_change, chords) == (0, 1)


def test_every_box_chord_name_is_the_mir_eval_chord_of_the_same_notes() -> None:
    for index in range(spec.N_CHORD_CLASSES):
        label = BOX_LABELS[spec.chord_name(index)]
        assert metrics.label_pcs(label) == frozenset(theory.chord_pitch_classes(index)), label


def test_the_piece_writer_knows_its_beats_and_chords() -> None:
    beats = np.diff(PIECE.beats)
    half = len(beats) // 2
    assert abs(np.median(beats[:half]) / np.median(beats[half + 4 :]) - 1) > 0.1  # the tempo jumps
    starts = [s for s, _, _ in PIECE.chords]
    ends = [e for _, e, _ in PIECE.chords]
    assert starts[1:] == ends[:-1] and set(starts) <= set(PIECE.beats) | {PIECE.beats[-1]}
    labels = {lab for _, _, lab in PIECE.chords}
    assert len(labels) == 4 and PIECE.key.endswith("minor")  # i - VI - iv - v


def test_the_arpeggio_has_the_chords_root_in_the_left_hand_whatever_the_voicing() -> None:
    # F#m voiced near D4 is A3 C#4 F#4 (first inversion): the left hand still plays F#, not A
    assert arpeggio_notes([57, 61, 66], 6) == [54, 57, 61, 66, 78]
    assert arpeggio_notes([60, 64, 67], 0) == [48, 60, 64, 67, 72]  # root position: C3 .. C5
    for seed in range(SEED_BASE, SEED_BASE + 60):
        piece = make_piece(seed, texture="arpeggio", seconds=8.0)
        for start, end, label in piece.chords:
            sounding = sorted(p for on, _, ch, p, _ in piece.notes if ch == 0 and start <= on < end)
            assert sounding[0] % 12 == metrics.chord_family(label)[0], (piece.name, label)  # the lowest is the root
            assert {p % 12 for p in sounding} <= metrics.label_pcs(label)  # (a short chord may not reach its 7th)


def test_the_held_out_list_still_names_the_pieces_its_seeds_make() -> None:
    listed = heldout_seeds()
    assert len(listed) >= 10
    for seed, name in listed:
        assert make_piece(seed).name == name


def test_a_rendered_piece_sounds_for_its_length(tmp_path: Path) -> None:
    wav = render_piece(PIECE, Cache(tmp_path))
    x, rate = load_wav_mono(wav)
    assert x.size / rate > PIECE.duration - 1.0  # (FluidSynth may ring on a little after the end)
    assert np.sqrt(np.mean(x[: rate * 10] ** 2)) > 0.01
    assert render_piece(PIECE, Cache(tmp_path)) == wav  # cached by content


def test_the_real_recordings_are_annotated_and_installed() -> None:
    recs = annotated()
    assert len(recs) >= 10
    assert all(ref.key is not None for _, ref, _ in recs)  # kept only where the four key profiles agree
    for rec, _, ann in recs:
        assert rec.path.is_file(), missing_hint()
        assert ann["made_with"]["essentia"]


@pytest.mark.slow
def test_the_box_stays_above_the_suite_floor(tmp_path_factory: pytest.TempPathFactory) -> None:
    result = evaluate("small", systems=("box", "random"), cache=Cache(tmp_path_factory.mktemp("eval-cache")))
    table = result["table"]
    failures = []
    for group, floors in THRESHOLDS.items():
        for metric, floor in floors.items():
            value = table[group]["box"][metric]
            if value is None or value < floor:
                failures.append(f"{group} {metric}: {value} < {floor}")
    assert not failures, "the box plays along worse than before:\n" + "\n".join(failures) + "\n" + markdown(result)


def test_a_bad_before_file_is_one_line_before_anything_runs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from tools.evaluate.__main__ import main

    assert main(["--set", "small", "--before", str(tmp_path / "none.json"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "none.json" in err[0] and not (tmp_path / "table.md").exists()


def test_the_table_shows_the_box_before_beside_now() -> None:
    cell = {"n": 2, **{m: 0.5 for m, _ in METRIC_ROWS}}
    result = {"set": "small", "table": {"real": {"box": dict(cell, beat_f=0.9), "random": cell}}}
    before = {"set": "small", "commit": "abc", "table": {"real": {"box": dict(cell, beat_f=0.2)}}}
    md = markdown(result, before)
    assert "| metric | box before (abc) | box now | random in key (floor) |" in md
    assert "| beat F-measure (after 4 s) | 0.20 | 0.90 | 0.50 |" in md
    later = {"set": "small", "commit": "def", "table": {"real": {"box": dict(cell, beat_f=0.6)}}}
    md = markdown(result, [before, later])  # several earlier runs, oldest first
    assert "| metric | box before (abc) | box before (def) | box now | random in key (floor) |" in md
    assert "| beat F-measure (after 4 s) | 0.20 | 0.60 | 0.90 | 0.50 |" in md
