"""Sounding-note bookkeeping, panic messages and the stream checker."""

from __future__ import annotations

from kelly_edge.midi import messages as mm
from kelly_edge.midi.notes import ActiveNotes, pair_notes


def test_active_notes_tracks_per_channel_and_note() -> None:
    a = ActiveNotes()
    a.on(0, 60)
    a.on(0, 64)
    a.on(5, 60)
    assert a.is_on(0, 60) and a.is_on(5, 60) and not a.is_on(1, 60)
    assert a.sounding() == [(0, 60), (0, 64), (5, 60)]
    assert a.off(0, 60) is True
    assert a.off(0, 60) is False
    assert a.sounding() == [(0, 64), (5, 60)]
    assert a.channels_used == (0, 5)
    a.clear()
    assert a.sounding() == [] and a.count == 0
    assert a.channels_used == (0, 5)
    a.reset()
    assert a.channels_used == ()


def test_observe_follows_raw_messages_including_velocity_zero_note_on() -> None:
    a = ActiveNotes()
    a.observe(mm.note_on(2, 50, 90))
    a.observe(mm.control_change(2, 1, 3))
    assert a.sounding() == [(2, 50)]
    a.observe(mm.note_on(2, 50, 0))
    assert a.sounding() == []
    a.observe(mm.note_on(2, 51, 90))
    a.observe(mm.note_off(2, 51))
    assert a.sounding() == []


def test_panic_messages_release_every_note_then_reset_every_used_channel() -> None:
    a = ActiveNotes()
    a.on(1, 60)
    a.on(3, 40)
    a.off(3, 40)  # channel 3 was used, nothing sounds there now
    msgs = a.panic_messages(channels=[9])
    assert msgs[0] == mm.note_off(1, 60)
    tail = msgs[1:]
    for ch in (1, 3, 9):
        for m in (mm.all_notes_off(ch), mm.all_sound_off(ch), mm.sustain_off(ch)):
            assert m in tail
    assert len(tail) == 9
    # the state is untouched until the caller clears it
    assert a.is_on(1, 60)


def test_pair_notes_pairs_and_reports_problems() -> None:
    clean = [(0.0, mm.note_on(0, 60, 80)), (0.5, mm.note_off(0, 60)), (0.5, mm.note_on(0, 60, 70)), (1.0, mm.note_on(0, 60, 0))]
    notes, problems = pair_notes(clean)
    assert problems == []
    assert [(n.start, n.end, n.velocity) for n in notes] == [(0.0, 0.5, 80), (0.5, 1.0, 70)]

    bad = [
        (0.0, mm.note_on(0, 60, 80)),
        (0.1, mm.note_on(0, 60, 80)),  # already sounding
        (0.05, mm.note_off(0, 61)),  # backwards and orphan
        (0.2, mm.note_on(1, 40, 10)),  # never released
    ]
    _, problems = pair_notes(bad)
    text = "\n".join(problems)
    assert "while it is sounding" in text
    assert "backwards" in text
    assert "no note sounding" in text
    assert "never released" in text
