"""The piano roll's MIDI reader reads back what the writer wrote, and what other writers write."""

from __future__ import annotations

from pathlib import Path

import mido
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kelly_edge.midi.smf import TempoMap, build_smf
from kelly_edge.midi.smf_read import MidiFileError, read_smf


def test_reads_back_the_writer_under_tempo_changes(tmp_path: Path) -> None:
    events = [(0.0, bytes((0x90, 60, 100))), (0.75, bytes((0x80, 60, 0))), (1.3, bytes((0x91, 64, 90))),
              (2.9, bytes((0xB1, 11, 70))), (3.3, bytes((0x81, 64, 0))), (5.0, bytes((0xC2, 5)))]
    tempos = [(1.0, 90.0), (3.0, 140.0)]
    path = tmp_path / "w.mid"
    path.write_bytes(build_smf(events, ppq=480, initial_bpm=120.0, tempo_changes=tempos))
    got = read_smf(path)
    tmap = TempoMap(ppq=480, initial_bpm=120.0, changes=tempos)
    assert [m for _, m in got] == [m for _, m in events]
    for (t, _), (t_got, _) in zip(events, got):
        assert t_got == pytest.approx(tmap.seconds_of(tmap.tick_of(t)), abs=1e-9)
        assert t_got == pytest.approx(t, abs=0.002)  # within a tick of the time asked for


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 30), st.integers(0, 15), st.integers(0, 127), st.integers(1, 127)), max_size=40),
       st.floats(40, 240))
def test_agrees_with_mido(tmp_path_factory: pytest.TempPathFactory, notes: list[tuple[float, int, int, int]], bpm: float) -> None:
    events = sorted(((t, bytes((0x90 | ch, p, v))) for t, ch, p, v in notes), key=lambda e: e[0])
    path = tmp_path_factory.mktemp("h") / "m.mid"
    path.write_bytes(build_smf(events, initial_bpm=bpm))
    ours = read_smf(path)
    theirs, t = [], 0.0
    for msg in mido.MidiFile(str(path)):
        t += msg.time
        if not msg.is_meta:
            theirs.append((t, bytes(msg.bytes())))
    assert [m for _, m in ours] == [m for _, m in theirs]
    assert all(a == pytest.approx(b, abs=1e-6) for (a, _), (b, _) in zip(ours, theirs))


def test_reads_format_1_with_running_status(tmp_path: Path) -> None:
    mid = mido.MidiFile(type=1, ticks_per_beat=96)
    conductor, piano = mido.MidiTrack(), mido.MidiTrack()
    conductor.append(mido.MetaMessage("set_tempo", tempo=1_000_000, time=0))  # 60 BPM: a beat is a second
    conductor.append(mido.MetaMessage("set_tempo", tempo=500_000, time=192))  # 120 BPM after 2 s
    piano.append(mido.Message("note_on", note=60, velocity=80, time=96))  # 1 s
    piano.append(mido.Message("note_on", note=60, velocity=0, time=96))  # 2 s
    piano.append(mido.Message("note_on", note=62, velocity=80, time=96))  # 2.5 s (now at 120 BPM)
    mid.tracks += [conductor, piano]
    path = tmp_path / "f1.mid"
    mid.save(str(path))
    data = bytearray(path.read_bytes())
    # mido writes running status already when allowed; make sure the file uses it at least once
    assert data.count(bytes((0x90,))) <= 2
    got = read_smf(path)
    assert [(round(t, 6), m) for t, m in got] == [(1.0, bytes((0x90, 60, 80))), (2.0, bytes((0x90, 60, 0))),
                                                  (2.5, bytes((0x90, 62, 80)))]


def test_hand_written_running_status(tmp_path: Path) -> None:
    track = bytes([0x00, 0x90, 60, 100, 0x60, 62, 100, 0x60, 60, 0, 0x00, 0xFF, 0x2F, 0x00])  # 0x60 = 96 ticks
    header = b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big") + (96).to_bytes(2, "big")
    path = tmp_path / "rs.mid"
    path.write_bytes(header + b"MTrk" + len(track).to_bytes(4, "big") + track)
    assert read_smf(path) == [(0.0, bytes((0x90, 60, 100))), (0.5, bytes((0x90, 62, 100))), (1.0, bytes((0x90, 60, 0)))]


def test_bad_files_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(MidiFileError, match="file not found"):
        read_smf(tmp_path / "none.mid")
    junk = tmp_path / "junk.mid"
    junk.write_bytes(b"RIFF....WAVE")
    with pytest.raises(MidiFileError, match="not a Standard MIDI File"):
        read_smf(junk)
    good = build_smf([(0.0, bytes((0x90, 60, 100))), (1.0, bytes((0x80, 60, 0)))])
    cut = tmp_path / "cut.mid"
    cut.write_bytes(good[:-6])
    with pytest.raises(MidiFileError, match="malformed|truncated"):
        read_smf(cut)
