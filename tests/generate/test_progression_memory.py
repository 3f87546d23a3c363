"""ProgressionMemory on synthetic per-beat chord streams: loops of 2, 4 and 8 bars, a departure,
noise in recognition. The flow is the box's: before beat b is played the memory has heard beats up
to b - 1 and is asked for beat b."""

from __future__ import annotations

import numpy as np
import pytest

from kelly_edge.generate.progression import ProgressionMemory
from kelly_edge.models import spec

CONFIDENT = 0.6  # the confidence the generator acts on (generator.PROGRESSION_CONFIDENCE)


def ch(name: str) -> int:
    """'C', 'Am', 'G7', 'F#m7', 'Bdim' -> chord class index."""
    names = {"C": 0, "C#": 1, "Db": 1, "D": 2, "Eb": 3, "E": 4, "F": 5, "F#": 6, "G": 7, "Ab": 8, "A": 9,
             "Bb": 10, "B": 11}
    root = name[:2] if name[:2] in names else name[:1]
    quality = {"": "maj", "m": "min", "7": "7", "m7": "m7", "dim": "dim"}[name[len(root):]]
    return spec.chord_index(names[root], quality)


def beats_of(bars: list[str], *, per_bar: int = 1) -> list[int]:
    """A progression of chords, ``per_bar`` per bar (1: whole bars, 2: half bars), one entry per beat."""
    out = []
    for name in bars:
        out += [ch(name)] * (4 // per_bar)
    return out


def play(stream: list[int], confidences: list[float] | None = None, memory: ProgressionMemory | None = None
         ) -> list[tuple[int, float]]:
    """predict(b) before observe(b, ...) for every beat; returns the predictions."""
    m = memory or ProgressionMemory()
    out = []
    for b, c in enumerate(stream):
        out.append(m.predict(b))
        m.observe(b, c, 0.9 if confidences is None else confidences[b])
    return out


def changes(stream: list[int]) -> list[int]:
    return [b for b in range(1, len(stream)) if stream[b] != stream[b - 1]]


LOOPS = {  # name: (one pass, beat by beat; its period; whether a part of it repeats inside the pass)
    "2 bars, one chord a bar": (beats_of(["C", "G"]), 8, False),
    "2 bars, two chords a bar": (beats_of(["Am", "F", "C", "G"], per_bar=2), 8, False),
    "4 bars": (beats_of(["C", "Am", "F", "G7"]), 16, False),
    "4 bars, changes on beats 1 and 3": (beats_of(["Dm7", "G7", "C", "A7", "Dm", "G", "C", "C"], per_bar=2), 16, True),
    "8 bars with a repeated 2-bar figure": (beats_of(["C", "G", "C", "G", "C", "G", "Am", "F"]), 32, True),
    "8 bars": (beats_of(["Am", "F", "C", "G", "Am", "F", "E7", "E7"]), 32, True),
}


@pytest.mark.parametrize("name", list(LOOPS))
def test_from_the_second_pass_every_change_is_predicted_on_its_beat(name: str) -> None:
    loop, period, repeats_inside = LOOPS[name]
    assert len(loop) == period
    stream = loop * 4
    preds = play(stream)
    start = period + 4  # a bar into the second pass: one bar of it matched the first
    for b in changes(stream):
        if b >= start:
            assert preds[b][0] == stream[b] and preds[b][1] >= CONFIDENT, (name, b, preds[b], stream[b])
    # and no confident prediction from then on is wrong, change or not
    wrong = [b for b in range(start, len(stream)) if preds[b][1] >= CONFIDENT and preds[b][0] != stream[b]]
    assert wrong == []
    # the first pass alone predicts nothing confident unless a part of it repeats inside it
    if not repeats_inside:
        assert all(c < CONFIDENT for _, c in preds[:period])


def test_the_locked_period_is_the_loop_not_a_multiple() -> None:
    m = ProgressionMemory()
    play(beats_of(["C", "G"]) * 6, memory=m)
    assert m.period_beats == 8
    m = ProgressionMemory()
    play(beats_of(["C", "Am", "F", "G"]) * 3, memory=m)
    assert m.period_beats == 16


def test_a_held_chord_never_predicts_a_change() -> None:
    stream = [ch("C")] * 64
    preds = play(stream)
    assert all(c < CONFIDENT or p == ch("C") for p, c in preds)


def test_after_a_departure_recognition_is_followed_from_the_next_beat() -> None:
    loop = beats_of(["C", "Am", "F", "G"])
    other = beats_of(["Dm", "Em", "F", "Bb", "Dm", "E7", "Am", "D"], per_bar=2)
    stream = loop * 3 + other * 2
    d = 3 * len(loop)  # the first beat off the loop (Dm where C was due)
    preds = play(stream)
    assert preds[d - 1] == (ch("G"), pytest.approx(preds[d - 1][1])) and preds[d - 1][1] >= CONFIDENT
    assert preds[d][0] == ch("C")  # the departure itself cannot be foreseen
    # from the beat after, nothing confident contradicts what the player plays
    for b in range(d + 1, len(stream)):
        p, c = preds[b]
        assert c < CONFIDENT or p == stream[b], (b, p, c, stream[b])
    assert all(c < CONFIDENT for _, c in preds[d + 1 : d + 8])


def test_a_new_loop_after_a_departure_is_learnt_in_turn() -> None:
    first = beats_of(["C", "Am", "F", "G"])
    second = beats_of(["Em", "C", "D", "B7"])
    stream = first * 3 + second * 3
    preds = play(stream)
    start = 3 * len(first) + len(second) + 4
    for b in changes(stream):
        if b >= start:
            assert preds[b][0] == stream[b] and preds[b][1] >= CONFIDENT, b


def test_low_confidence_beats_neither_confirm_nor_break_the_loop() -> None:
    loop = beats_of(["C", "Am", "F", "G"])
    stream = loop * 5
    rng = np.random.default_rng(1)
    conf = [0.9] * len(stream)
    noisy = list(stream)
    for b in rng.choice(len(stream), size=len(stream) // 5, replace=False):  # 20 % of beats unsure
        conf[b] = 0.2
        noisy[b] = int(rng.integers(0, spec.N_CHORDS))
    preds = []
    m = ProgressionMemory()
    for b in range(len(stream)):
        preds.append(m.predict(b))
        m.observe(b, noisy[b], conf[b])
    late = [b for b in changes(stream) if b >= 2 * len(loop)]  # from the third pass
    hits = [preds[b][0] == stream[b] and preds[b][1] >= CONFIDENT for b in late]
    assert np.mean(hits) >= 0.9, hits
    assert all(c < CONFIDENT or p == stream[b] for b, (p, c) in enumerate(preds))


def test_a_confident_slip_drops_the_prediction_for_one_beat_only() -> None:
    loop = beats_of(["C", "Am", "F", "G"])
    stream = loop * 5
    heard = list(stream)
    slips = [37, 53, 70]  # a wrong chord recognised with confidence, inside bars
    for b in slips:
        heard[b] = ch("Eb")
    preds = []
    m = ProgressionMemory()
    for b in range(len(stream)):
        preds.append(m.predict(b))
        m.observe(b, heard[b], 0.9)
    for b in slips:
        assert preds[b + 1][1] < CONFIDENT  # dropped at once
        assert preds[b + 2][0] == stream[b + 2] and preds[b + 2][1] >= CONFIDENT  # back the beat after
    # the slips are forgotten: a pass later the same beats are predicted right
    for b in range(2 * len(loop), len(stream)):
        p, c = preds[b]
        assert c < CONFIDENT or p == stream[b], b
    later = [b for b in changes(stream) if b >= 2 * len(loop)]
    assert all(preds[b][0] == stream[b] and preds[b][1] >= CONFIDENT for b in later)


def test_sevenths_count_as_their_triads_when_matching() -> None:
    loop = beats_of(["C", "Am", "F", "G"])
    heard = beats_of(["C", "Am", "F", "G"]) + beats_of(["C", "Am7", "F", "G7"]) * 3
    preds = []
    m = ProgressionMemory()
    for b, c in enumerate(heard):
        preds.append(m.predict(b))
        m.observe(b, c, 0.9)
    stream = loop * 4
    for b in changes(stream):
        if b >= len(loop) + 4:
            assert preds[b][1] >= CONFIDENT, b


def test_skipped_beats_count_as_not_heard_and_reset_forgets() -> None:
    m = ProgressionMemory()
    loop = beats_of(["C", "G"])
    for b, c in enumerate(loop * 3):
        if b % 5 != 3:  # beats never observed (a closed gate, a skipped step)
            m.observe(b, c, 0.9)
    assert m.period_beats == 8
    assert m.predict(24) == (ch("C"), pytest.approx(m.predict(24)[1]))
    m.reset()
    assert m.period_beats == 0 and m.predict(24) == (spec.NO_CHORD, 0.0)


def test_bad_period_range_is_rejected() -> None:
    with pytest.raises(ValueError, match="bars 5..3"):
        ProgressionMemory(min_bars=5, max_bars=3)


@pytest.mark.parametrize("bars_off", [1, 2])
def test_a_one_off_departure_is_never_replayed_and_the_loop_resumes(bars_off: int) -> None:
    """The player leaves the loop for a bar or two of one pass, then plays it on. The memory had
    re-locked at twice the loop (its last pass held the departure, the pass before did not) and
    played the departure's chords again a pass later."""
    loop = beats_of(["Am", "G", "F", "E"])
    departed = beats_of(["Am", "Dm", "Em", "E"][: 1 + bars_off] + ["F", "E"][bars_off - 1 :])
    assert len(departed) == len(loop)
    stream = loop * 2 + departed + loop * 3
    d0, d1 = 2 * len(loop) + 4, 2 * len(loop) + 4 * (1 + bars_off)  # the departure's beats
    preds = play(stream)
    wrong = [b for b in range(d1, len(stream)) if preds[b][1] >= CONFIDENT and preds[b][0] != stream[b]]
    assert wrong == [], (wrong, [spec.chord_name(preds[b][0]) for b in wrong])
    # the pass after the departure's is predicted again, at the latest from its second bar
    start = 4 * len(loop) + 4
    for b in changes(stream):
        if b >= start:
            assert preds[b][0] == stream[b] and preds[b][1] >= CONFIDENT, (b, spec.chord_name(preds[b][0]))
    assert d0 < d1
