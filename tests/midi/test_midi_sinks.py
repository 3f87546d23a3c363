"""Sinks: the Protocol, the recorder, and the SMF file written by FileSink, read back with mido."""

from __future__ import annotations

import os
from pathlib import Path

import mido
import pytest

from kelly_edge.errors import OutputError
from kelly_edge.midi import messages as mm
from kelly_edge.midi import smf
from kelly_edge.midi.sinks import FileSink, MidiSink, RecordingSink


def read_back(path: Path) -> tuple[mido.MidiFile, list[tuple[int, float, mido.Message]]]:
    """(file, [(absolute tick, seconds under the file's tempo map, message)]) for non-meta messages."""
    mid = mido.MidiFile(str(path))
    out = []
    tick = 0
    secs = 0.0
    tempo = 500_000  # SMF default until a tempo event
    for track in mid.tracks:
        for msg in track:
            secs += mido.tick2second(msg.time, mid.ticks_per_beat, tempo)
            tick += msg.time
            if msg.type == "set_tempo":
                tempo = msg.tempo
            elif not msg.is_meta:
                out.append((tick, secs, msg))
    return mid, out


def test_sinks_satisfy_the_protocol(tmp_path: Path) -> None:
    assert isinstance(RecordingSink(), MidiSink)
    assert isinstance(FileSink(tmp_path / "x.mid"), MidiSink)


def test_recording_sink_keeps_events_and_tempos() -> None:
    s = RecordingSink()
    s.send(0.0, mm.note_on(0, 60, 9))
    s.set_tempo(0.5, 90.0)
    s.close()
    s.close()
    assert s.events == [(0.0, mm.note_on(0, 60, 9))]
    assert s.tempos == [(0.5, 90.0)]
    with pytest.raises(RuntimeError):
        s.send(1.0, mm.note_off(0, 60))


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "00"), (0x40, "40"), (0x7F, "7f"), (0x80, "8100"), (0x2000, "c000"), (0x3FFF, "ff7f"),
        (0x4000, "818000"), (0x100000, "c08000"), (0x1FFFFF, "ffff7f"), (0x200000, "81808000"),
        (0x0FFFFFFF, "ffffff7f"),
    ],
)
def test_vlq_matches_the_smf_specification_examples(value: int, encoded: str) -> None:
    assert smf.vlq(value).hex() == encoded


def test_vlq_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        smf.vlq(-1)
    with pytest.raises(ValueError):
        smf.vlq(0x10000000)


def test_events_land_on_the_nearest_tick_at_a_fixed_tempo(tmp_path: Path) -> None:
    path = tmp_path / "fixed.mid"
    ppq, bpm = 480, 100.0
    times = [0.0, 0.0004, 0.1234567, 0.5, 1.0, 2.71828, 10.0001]
    with FileSink(path, ppq=ppq, bpm=bpm) as sink:
        for i, t in enumerate(times):
            sink.send(t, mm.note_on(0, 40 + i, 100))
            sink.send(t + 0.05, mm.note_off(0, 40 + i))
    mid, got = read_back(path)
    assert mid.type in (0, 1) and mid.ticks_per_beat == ppq
    ons = [(tick, secs) for tick, secs, m in got if m.type == "note_on"]
    tempo = round(60_000_000 / bpm)
    tick_s = tempo / 1e6 / ppq
    for (tick, secs), t in zip(ons, times):
        assert tick == round(t / tick_s)
        assert abs(secs - t) <= tick_s / 2 + 1e-9
        assert secs == pytest.approx(mido.tick2second(tick, ppq, tempo))


def test_tempo_changes_are_honoured(tmp_path: Path) -> None:
    path = tmp_path / "tempo.mid"
    ppq = 480
    sink = FileSink(path, ppq=ppq, bpm=120.0)
    events = []
    t = 0.0
    tempo_changes = {0.9: 90.0, 2.03: 173.0, 3.5: 61.5}
    while t < 5.0:
        for tc, bpm in tempo_changes.items():
            if t <= tc < t + 0.137:
                sink.set_tempo(tc, bpm)
        events.append((t, mm.note_on(1, 60, 64)))
        events.append((t + 0.0713, mm.note_off(1, 60)))
        sink.send(t, mm.note_on(1, 60, 64))
        sink.send(t + 0.0713, mm.note_off(1, 60))
        t += 0.137
    sink.close()
    mid, got = read_back(path)
    tempos = [m.tempo for m in mid.tracks[0] if m.type == "set_tempo"]
    assert tempos == [smf.tempo_us(b) for b in (120.0, 90.0, 173.0, 61.5)]
    assert len(got) == len(events)
    slowest_tick_s = smf.tempo_us(61.5) / 1e6 / ppq
    for (tick, secs, msg), (t_sent, raw) in zip(got, events):
        assert bytes(msg.bytes()) == raw
        assert abs(secs - t_sent) <= slowest_tick_s / 2 + 1e-9
    # mido's own playback timing (which applies the tempo map) agrees
    play_t = 0.0
    played = []
    for msg in mid:
        play_t += msg.time
        if not msg.is_meta:
            played.append(play_t)
    assert played == pytest.approx([s for _, s, _ in got], abs=1e-9)


def test_a_tempo_change_at_zero_replaces_the_initial_tempo(tmp_path: Path) -> None:
    path = tmp_path / "t0.mid"
    sink = FileSink(path, bpm=120.0)
    sink.set_tempo(0.0, 60.0)
    sink.send(1.0, mm.note_on(0, 60, 1))
    sink.send(2.0, mm.note_off(0, 60))
    sink.close()
    mid, got = read_back(path)
    assert [m.tempo for m in mid.tracks[0] if m.type == "set_tempo"] == [1_000_000]
    assert [tick for tick, _, _ in got] == [480, 960]


def test_note_pairing_and_same_time_order_are_preserved(tmp_path: Path) -> None:
    path = tmp_path / "pairs.mid"
    sent = [
        (0.0, mm.note_on(0, 60, 100)),
        (0.5, mm.note_off(0, 60)),
        (0.5, mm.note_on(0, 60, 90)),  # re-strike at the same instant: the off must stay first
        (0.5, mm.control_change(0, 1, 20)),
        (0.75, mm.note_on(2, 36, 50)),
        (1.0, mm.note_off(0, 60)),
        (1.0, mm.note_off(2, 36)),
    ]
    with FileSink(path) as sink:
        for t, m in sent:
            sink.send(t, m)
    _, got = read_back(path)
    assert [bytes(m.bytes()) for _, _, m in got] == [m for _, m in sent]


def test_system_messages_clock_is_skipped_sysex_kept(tmp_path: Path) -> None:
    path = tmp_path / "sys.mid"
    with FileSink(path) as sink:
        sink.send(0.0, b"\xf8")
        sink.send(0.1, bytes([0xF0, 0x7E, 0x7F, 0x09, 0x01, 0xF7]))
        sink.send(0.2, mm.note_on(0, 60, 1))
        sink.send(0.3, mm.note_off(0, 60))
    _, got = read_back(path)
    assert [m.type for _, _, m in got] == ["sysex", "note_on", "note_off"]
    assert list(got[0][2].data) == [0x7E, 0x7F, 0x09, 0x01]


def test_malformed_messages_fail_at_send(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "bad.mid")
    with pytest.raises(ValueError):
        sink.send(0.0, b"\x3c\x40")
    with pytest.raises(ValueError):
        sink.send(0.0, b"\x90\x3c")
    with pytest.raises(ValueError):
        sink.send(0.0, b"")
    with pytest.raises(ValueError):
        sink.set_tempo(0.0, 0.0)
    sink.set_tempo(1.0, 100.0)
    with pytest.raises(ValueError, match="before"):
        sink.set_tempo(0.5, 100.0)


def test_file_is_written_atomically_and_close_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "out.mid"
    sink = FileSink(path)
    sink.send(0.0, mm.note_on(0, 60, 1))
    sink.send(0.1, mm.note_off(0, 60))
    assert not path.exists()  # nothing until close
    sink.close()
    first = path.read_bytes()
    sink.close()
    assert path.read_bytes() == first
    assert sorted(os.listdir(tmp_path)) == ["out.mid"]  # no temp file left behind
    with pytest.raises(RuntimeError):
        sink.send(0.2, mm.note_on(0, 60, 1))


def test_missing_folder_raises_output_error_early(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        FileSink(tmp_path / "nope" / "out.mid")


def test_folder_vanishing_before_close_raises_output_error(tmp_path: Path) -> None:
    folder = tmp_path / "gone"
    folder.mkdir()
    sink = FileSink(folder / "out.mid")
    sink.send(0.0, mm.note_on(0, 60, 1))
    folder.rmdir()
    with pytest.raises(OutputError, match="out.mid"):
        sink.close()


def test_empty_run_still_writes_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mid"
    FileSink(path, bpm=77.0).close()
    mid, got = read_back(path)
    assert got == []
    assert [m.tempo for m in mid.tracks[0] if m.type == "set_tempo"] == [smf.tempo_us(77.0)]
    assert mid.tracks[0][-1].type == "end_of_track"
