"""MIDI thru's pieces: the byte-stream parser, the filter and channel remap, the player's note
tracker, the sink's releases, and the owner's hot-plug / voice-off / shutdown behaviour (with a
fake at the device seam; the real ports are in tests/live/test_live_jack_thru.py)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kelly_edge.errors import DeviceError
from kelly_edge.midi import messages as mm
from kelly_edge.midi.rtmidi_sink import ScheduledSink
from kelly_edge.midi.thru import (
    MidiParser,
    MidiThru,
    PlayerNotes,
    ThruFilter,
    ThruProcessor,
    as_bytes,
    thru_target,
)
from tests.live.live_fakes import FakeOutput, synth_state


def parse(*chunks: bytes, parser: MidiParser | None = None) -> list[bytes]:
    p = parser or MidiParser()
    out: list[bytes] = []
    for chunk in chunks:
        p.feed(chunk, lambda m: out.append(bytes(m)))
    return out


# --- the parser -------------------------------------------------------------------------------


def test_running_status_is_expanded_into_whole_messages() -> None:
    assert parse(bytes([0x90, 60, 100, 62, 90, 64, 0, 0xC1, 5, 7])) == [
        bytes([0x90, 60, 100]), bytes([0x90, 62, 90]), bytes([0x90, 64, 0]), bytes([0xC1, 5]), bytes([0xC1, 7])]


def test_a_message_split_across_packets_and_running_status_across_packets() -> None:
    assert parse(b"\x90", b"\x3c", b"\x64\x3e", b"\x50") == [b"\x90\x3c\x64", b"\x90\x3e\x50"]


def test_sysex_split_across_packets_comes_out_whole_with_realtime_bytes_taken_out() -> None:
    got = parse(b"\xf0\x43\x10", b"\x4c\xf8\x00", b"\x00\xfe\x7e\x00", b"\xf7\x80\x3c\x00")
    assert got == [b"\xf8", b"\xfe", b"\xf0\x43\x10\x4c\x00\x00\x7e\x00\xf7", b"\x80\x3c\x00"]


def test_realtime_between_a_status_and_its_data_does_not_break_the_message() -> None:
    assert parse(b"\xb0\xf8\x40\xfa\x7f") == [b"\xf8", b"\xfa", b"\xb0\x40\x7f"]


def test_sysex_cancels_running_status_and_system_common_too() -> None:
    p = MidiParser()
    assert parse(b"\x90\x3c\x64\xf0\x01\xf7\x3e\x40", parser=p) == [b"\x90\x3c\x64", b"\xf0\x01\xf7"]
    assert p.garbage == 2  # the data after the sysex has no status
    assert parse(b"\x90\x3c\x64\xf3\x05\x3e\x40", parser=p) == [b"\x90\x3c\x64", b"\xf3\x05"]


def test_garbage_is_counted_and_skipped() -> None:
    p = MidiParser()
    # data with no status, undefined statuses, a lone EOX, a note cut short by the next status
    got = parse(b"\x10\x20\xf4\xf5\xf9\xfd\xf7\x90\x3c\xb0\x07\x64", parser=p)
    assert got == [b"\xb0\x07\x64"]
    assert p.garbage == 2 + 4 + 1 + 2


def test_a_sysex_interrupted_by_a_status_is_dropped_not_passed_half() -> None:
    p = MidiParser()
    assert parse(b"\xf0\x43\x10\x4c\x90\x3c\x64", parser=p) == [b"\x90\x3c\x64"]
    assert p.garbage == 4


def test_a_sysex_longer_than_the_buffer_is_dropped_and_counted() -> None:
    p = MidiParser(max_sysex=16)
    assert parse(b"\xf0" + bytes(range(20)) + b"\xf7\xf0\x01\x02\xf7", parser=p) == [b"\xf0\x01\x02\xf7"]
    assert p.sysex_dropped == 1


def test_system_common_and_tune_request() -> None:
    assert parse(b"\xf2\x10\x20\xf6\xf1\x33") == [b"\xf2\x10\x20", b"\xf6", b"\xf1\x33"]


_channel = st.integers(0, 15)
_data = st.integers(0, 127)
_channel_msg = st.one_of(
    st.tuples(st.sampled_from([0x80, 0x90, 0xA0, 0xB0, 0xE0]), _channel, _data, _data).map(
        lambda t: bytes([t[0] | t[1], t[2], t[3]])),
    st.tuples(st.sampled_from([0xC0, 0xD0]), _channel, _data).map(lambda t: bytes([t[0] | t[1], t[2]])),
)
_sysex = st.lists(_data, max_size=40).map(lambda d: bytes([0xF0, *d, 0xF7]))
_common = st.sampled_from([b"\xf2\x01\x02", b"\xf3\x04", b"\xf6", b"\xf1\x10"])
_message = st.one_of(_channel_msg, _channel_msg, _sysex, _common)


def _running_status(messages: list[bytes]) -> bytes:
    """A sender's wire stream: a channel status repeated only when it changes."""
    out = bytearray()
    running = 0
    for m in messages:
        if m[0] < 0xF0:
            if m[0] != running:
                out.append(m[0])
            out += m[1:]
            running = m[0]
        else:
            out += m
            running = 0
    return bytes(out)


@settings(max_examples=300, deadline=None)
@given(st.lists(_message, max_size=30), st.data())
def test_any_stream_cut_anywhere_with_realtime_anywhere_parses_back(messages: list[bytes], data: st.DataObject) -> None:
    wire = bytearray(_running_status(messages))
    realtime = data.draw(st.lists(st.tuples(st.integers(0, len(wire)), st.sampled_from([0xF8, 0xFA, 0xFC, 0xFE])),
                                  max_size=10))
    for pos, b in sorted(realtime, reverse=True):
        wire.insert(pos, b)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))
    chunks = [bytes(wire[a:b]) for a, b in zip([0, *cuts], [*cuts, len(wire)])]
    p = MidiParser()
    got = parse(*chunks, parser=p)
    assert [m for m in got if m[0] < 0xF8] == messages
    assert [m[0] for m in got if m[0] >= 0xF8] == [b for b in wire if b >= 0xF8]  # in their order
    assert p.garbage == 0 and p.sysex_dropped == 0


# --- filter and remap -------------------------------------------------------------------------


def run_thru(settings_: ThruFilter, *chunks: bytes) -> tuple[list[bytes], ThruProcessor]:
    proc = ThruProcessor(settings_)
    out: list[bytes] = []
    for chunk in chunks:
        proc.feed(chunk, lambda m, s: out.append(as_bytes(m, s)))
    return out, proc


def test_clock_transport_and_active_sensing_are_dropped_unless_asked() -> None:
    stream = b"\xfa\xf8\x90\x3c\x64\xf8\xfe\xf2\x00\x01\xfb\xfc\xff"
    out, proc = run_thru(ThruFilter(), stream)
    assert out == [b"\x90\x3c\x64", b"\xff"]  # System Reset is not a clock: it passes
    assert proc.filtered == 7
    out, _ = run_thru(ThruFilter(clock=True), stream)
    assert out == [b"\xfa", b"\xf8", b"\x90\x3c\x64", b"\xf8", b"\xf2\x00\x01", b"\xfb", b"\xfc", b"\xff"]
    out, _ = run_thru(ThruFilter(active_sensing=True), stream)
    assert out == [b"\x90\x3c\x64", b"\xfe", b"\xff"]


def test_channel_remap_moves_channel_messages_only() -> None:
    out, _ = run_thru(ThruFilter(channel=9), b"\x90\x3c\x64\x3e\x50\xb3\x40\x7f\xc5\x02\xf0\x7e\x01\xf7\xf8")
    assert out == [b"\x99\x3c\x64", b"\x99\x3e\x50", b"\xb9\x40\x7f", b"\xc9\x02", b"\xf0\x7e\x01\xf7"]


def test_filter_from_config_takes_the_1_to_16_channel() -> None:
    midi = SimpleNamespace(thru_clock=False, thru_active_sensing=True, thru_channel=16)
    assert ThruFilter.from_config(midi) == ThruFilter(clock=False, active_sensing=True, channel=15)


def test_stopped_processor_passes_nothing() -> None:
    proc = ThruProcessor(ThruFilter())
    out: list[bytes] = []
    proc.stop()
    proc.feed(b"\x90\x3c\x64", lambda m, s: out.append(as_bytes(m, s)))
    assert out == [] and proc.notes.sounding == 0


# --- the player's notes -----------------------------------------------------------------------


def test_tracker_follows_notes_pedal_and_remap() -> None:
    played = b"\x90\x3c\x64\x3e\x64\x3e\x00" + b"\x91\x40\x10\xb2\x40\x7f" + b"\x92\x43\x50\x82\x43\x00"
    _, proc = run_thru(ThruFilter(channel=4), played)
    notes = proc.notes
    assert sorted(notes.held()) == [(4, 0x3C), (4, 0x40)]  # remapped: every note on channel 5 (wire 4)
    release = notes.release_messages()
    assert release == [mm.note_off(4, 0x3C), mm.note_off(4, 0x40), mm.sustain_off(4)]
    assert notes.sounding == 0 and notes.release_messages() == []


def test_all_notes_off_from_the_controller_clears_its_channel() -> None:
    _, proc = run_thru(ThruFilter(), b"\x90\x3c\x64\x91\x3c\x64\xb0\x7b\x00")
    assert proc.notes.held() == [(1, 0x3C)]


_note_event = st.tuples(st.booleans(), st.integers(0, 15), st.integers(0, 127), st.integers(1, 127))


@settings(max_examples=200, deadline=None)
@given(st.lists(_note_event, max_size=60), st.one_of(st.none(), st.integers(0, 15)))
def test_release_leaves_a_synth_silent_whatever_was_played(events: list[tuple[bool, int, int, int]],
                                                           channel: int | None) -> None:
    proc = ThruProcessor(ThruFilter(channel=channel))
    synth: list[bytes] = []
    for on, ch, note, vel in events:
        msg = mm.note_on(ch, note, vel) if on else mm.note_off(ch, note)
        proc.feed(msg, lambda m, s: synth.append(as_bytes(m, s)))
    assert proc.notes.sounding == len(synth_state(synth)[0])
    synth += proc.notes.release_messages()
    assert synth_state(synth)[0] == set()


# --- the sink's side --------------------------------------------------------------------------


def _sink(out: FakeOutput) -> ScheduledSink:
    base = time.monotonic()
    return ScheduledSink(out, to_wall=lambda t: base + t, retry_s=0.05)


def test_panic_and_close_release_the_players_notes_but_not_as_the_box_s() -> None:
    out = FakeOutput()
    sink = _sink(out)
    proc = ThruProcessor(ThruFilter())
    sink.add_player(proc.notes)
    sink.start()
    write = lambda m, s: sink.send_through(as_bytes(m, s))  # noqa: E731
    proc.feed(b"\x91\x3c\x64\xb1\x40\x7f", write)
    assert out.messages() == [b"\x91\x3c\x64", b"\xb1\x40\x7f"]
    assert sink.sounding == 0 and sink.sent == 0  # not the box's note
    sink.panic()
    assert out.messages()[2:] == [mm.note_off(1, 0x3C), mm.sustain_off(1)]
    proc.feed(b"\x91\x3e\x64", write)
    sink.close()
    assert mm.note_off(1, 0x3E) in out.messages()[-4:]
    assert synth_state(out.messages())[0] == set()


def test_release_player_sends_only_the_players_note_offs() -> None:
    out = FakeOutput()
    sink = _sink(out)
    proc = ThruProcessor(ThruFilter())
    sink.add_player(proc.notes)
    sink.start()
    try:
        sink.send_now(mm.note_on(0, 50, 90))  # the box's own note
        proc.feed(b"\x90\x3c\x64", lambda m, s: sink.send_through(as_bytes(m, s)))
        sink.release_player(proc.notes)
        assert out.messages()[-1] == mm.note_off(0, 0x3C)
        assert synth_state(out.messages())[0] == {(0, 50)}  # the box's note still sounds
    finally:
        sink.close()


def test_notes_held_while_the_output_was_gone_are_released_when_it_is_back() -> None:
    out = FakeOutput()
    sink = _sink(out)
    proc = ThruProcessor(ThruFilter())
    sink.add_player(proc.notes)
    sink.start()
    try:
        proc.feed(b"\x90\x3c\x64", lambda m, s: sink.send_through(as_bytes(m, s)))
        out.plugged = False
        assert _wait(lambda: not sink.connected)
        sink.panic()  # nothing can go out now: the note is kept for the reconnection
        assert proc.notes.sounding == 1
        out.plugged = True
        assert _wait(lambda: mm.note_off(0, 0x3C) in out.messages())
    finally:
        sink.close()


def _wait(cond, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return bool(cond())


# --- the owner --------------------------------------------------------------------------------


class FakeSource:
    """The controller's port at the device seam: ``plugged`` False = unplugged."""

    def __init__(self, proc: ThruProcessor, write) -> None:
        self.name = "fake keys"
        self.plugged = True
        self.proc, self.write = proc, write
        self.opened = 0
        self.closed = False

    def open(self) -> None:
        if not self.plugged:
            raise DeviceError("no MIDI input port matches midi.thru_port 'keys' (inputs: 'other')")
        self.opened += 1

    def present(self) -> bool:
        return self.plugged

    def reopen(self) -> None:
        self.open()

    def close(self) -> None:
        self.closed = True

    def play(self, data: bytes) -> None:
        if self.plugged:
            self.proc.feed(data, self.write)


def _owner(plugged: bool = True, voice: str | None = None) -> tuple[MidiThru, FakeSource, FakeOutput, ScheduledSink]:
    out = FakeOutput()
    sink = _sink(out)
    sink.start()
    proc = ThruProcessor(ThruFilter())
    source = FakeSource(proc, lambda m, s: sink.send_through(as_bytes(m, s)))
    source.plugged = plugged
    thru = MidiThru(proc, source, sink, voice=voice, retry_s=0.05)
    return thru, source, out, sink


def test_a_missing_controller_is_one_line_naming_the_key_and_thru_starts_when_it_appears(caplog) -> None:
    thru, source, out, sink = _owner(plugged=False)
    with caplog.at_level("WARNING"):
        thru.start()
        time.sleep(0.2)
    try:
        lines = [r.getMessage() for r in caplog.records if "thru" in r.getMessage()]
        assert len(lines) == 1 and "midi.thru_port" in lines[0] and "kelly-edge devices" in lines[0], lines
        assert not thru.connected
        source.plugged = True
        assert _wait(lambda: thru.connected)
        source.play(b"\x90\x3c\x64")
        assert out.messages()[-1] == b"\x90\x3c\x64"
    finally:
        thru.close()
        sink.close()


def test_an_unplugged_controller_releases_the_players_notes_and_resumes_when_back(caplog) -> None:
    thru, source, out, sink = _owner()
    thru.start()
    try:
        source.play(b"\x90\x3c\x64\xb0\x40\x7f")
        with caplog.at_level("WARNING"):
            source.plugged = False
            assert _wait(lambda: not thru.connected)
            assert out.messages()[-2:] == [mm.note_off(0, 0x3C), mm.sustain_off(0)]
            source.plugged = True
            assert _wait(lambda: thru.connected)
        assert sum("lost" in r.getMessage() for r in caplog.records) == 1
        assert sum("is back" in r.getMessage() for r in caplog.records) == 1
        source.play(b"\x90\x3e\x64")
        assert out.messages()[-1] == b"\x90\x3e\x64"
        assert thru.status()["losses"] == 1
    finally:
        thru.close()
        sink.close()


def test_switching_the_thru_voice_off_releases_the_players_notes_once() -> None:
    thru, source, out, sink = _owner(voice="bass")
    thru.start()
    try:
        source.play(b"\x92\x28\x64")
        thru.follow_voice(True)
        assert out.messages()[-1] == b"\x92\x28\x64"
        thru.follow_voice(False)
        assert out.messages()[-1] == mm.note_off(2, 0x28)
        n = len(out.messages())
        thru.follow_voice(False)
        assert len(out.messages()) == n
    finally:
        thru.close()
        sink.close()


def test_shutdown_order_stops_thru_before_the_last_panic() -> None:
    thru, source, out, sink = _owner()
    thru.start()
    source.play(b"\x90\x3c\x64")
    thru.close()  # as LiveLoop's shutdown does, before the sink's close
    source.play(b"\x90\x3e\x64")  # a key pressed during the shutdown does not pass
    sink.close()
    msgs = out.messages()
    assert b"\x90\x3e\x64" not in msgs
    assert mm.note_off(0, 0x3C) in msgs and synth_state(msgs)[0] == set()
    assert source.closed


def test_thru_target_is_the_port_text_of_the_voice_it_joins() -> None:
    generator = SimpleNamespace(melody=SimpleNamespace(port=""), chord=SimpleNamespace(port=" poly "),
                                bass=SimpleNamespace(port="bass synth"))
    want = {"port": "", "melody": "", "chord": "poly", "bass": "bass synth"}  # "" = midi.port's destination
    for to, expected in want.items():
        config = SimpleNamespace(midi=SimpleNamespace(port="volca", thru_to=to), generator=generator)
        assert thru_target(config) == expected


def test_generator_says_whether_a_voice_plays() -> None:
    from kelly_edge.generate.generator import Generator
    from kelly_edge.midi.sinks import RecordingSink
    from tests.generate.gen_harness import Settings

    gen = Generator(Settings(), RecordingSink())
    assert gen.voice_enabled("bass")
    gen.set_voice_enabled("bass", False, 0.0)
    assert not gen.voice_enabled("bass")
    with pytest.raises(ValueError):
        gen.voice_enabled("drums")


def test_the_status_snapshot_shows_the_thru_state() -> None:
    from kelly_edge.status.snapshot import live_extras

    thru, source, _, sink = _owner()
    thru.start()
    try:
        source.play(b"\x90\x3c\x64\xf8")
        extras = live_extras({"midi_connected": True, "midi_thru": thru.status()}, backend="jack",
                             sample_rate=48000, last_error=None)
    finally:
        thru.close()
        sink.close()
    shown = extras["midi"]["thru"]
    assert shown["input"] == "fake keys" and shown["connected"] is True
    assert shown["passed"] == 1 and shown["filtered"] == 1 and shown["player_sounding"] == 1
    assert "thru" not in live_extras({"midi_thru": None}, backend="jack", sample_rate=48000, last_error=None)["midi"]


def test_a_panic_of_the_box_alone_leaves_the_players_notes_sounding() -> None:
    """Audio lost or a clock Stop silences the box (``players=False``); the keyboard plays on."""
    out = FakeOutput()
    sink = _sink(out)
    proc = ThruProcessor(ThruFilter())
    sink.add_player(proc.notes)
    sink.start()
    try:
        proc.feed(b"\x91\x3c\x64", lambda m, s: sink.send_through(as_bytes(m, s)))
        sink.panic(players=False)
        assert mm.note_off(1, 0x3C) not in out.messages() and proc.notes.sounding == 1
    finally:
        sink.close()
    assert mm.note_off(1, 0x3C) in out.messages()
