"""The JACK MIDI out's merge of MIDI thru with the box's own events, in its process callback,
against a fake port and client (the real server: tests/live/test_live_jack_thru.py): every event
whole, offsets never going back, the controller's in the order played and at the offset played
(unless a box event already went later), the box's never made late by the controller's, and no
memory kept by the callback."""

from __future__ import annotations

import tracemalloc
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kelly_edge.midi.jack_sink import JackMidiOutput
from kelly_edge.midi.thru import MidiParser, ThruFilter, ThruProcessor
from tests.midi.test_midi_jack_queue import FakeClient, FakePort


class FakeInPort:
    """A JACK MIDI input port: the events of the coming period, as ``(offset, bytes)``."""

    def __init__(self) -> None:
        self.pending: list[tuple[int, bytes]] = []

    def incoming_midi_events(self) -> Any:
        events, self.pending = self.pending, []
        for offset, data in events:
            yield offset, memoryview(data)


def _output(start: int = 0, **thru: Any) -> tuple[JackMidiOutput, FakePort, FakeInPort, FakeClient, ThruProcessor]:
    proc = ThruProcessor(ThruFilter(**thru))
    out = JackMidiOutput(port="synth", thru=proc, thru_port="keys")
    port, inport, client = FakePort(), FakeInPort(), FakeClient(start)
    out._port, out._thru_in, out._client = port, inport, client  # the hardware edge
    return out, port, inport, client, proc


def _whole(message: bytes) -> bool:
    got: list[bytes] = []
    MidiParser().feed(message, lambda m: got.append(bytes(m)))
    return got == [message]


def test_a_sysex_cut_across_periods_leaves_whole_in_the_period_it_completes() -> None:
    out, port, inport, client, _ = _output(0, channel=2)
    inport.pending = [(5, b"\xf0\x01\x02"), (100, b"\x90\x3c\x64")]
    out.schedule(50, b"\x90\x30\x40")
    out._process(480)
    # the note the controller played inside the unfinished sysex cancels it (a status ends a sysex)
    assert port.events() == [(50, b"\x90\x30\x40"), (100, b"\x92\x3c\x64")]
    inport.pending = [(10, b"\xf0\x7e\x01"), (20, b"\x02\xf8\x03")]
    client.last_frame_time = 480
    out.schedule(480 + 15, b"\x80\x30\x00")
    out._process(480)
    assert port.events() == [(15, b"\x80\x30\x00")]  # the clock byte is filtered; the sysex goes on
    inport.pending = [(7, b"\x04\xf7")]
    client.last_frame_time = 960
    out.schedule(960 + 3, b"\x90\x31\x40")
    out._process(480)
    assert port.events() == [(3, b"\x90\x31\x40"), (7, b"\xf0\x7e\x01\x02\x03\x04\xf7")]
    assert out.late == 0 and out.thru_written == 2


_box = st.lists(st.tuples(st.integers(0, 479), st.sampled_from([b"\x90\x30\x40", b"\x80\x30\x00", b"\xf8"])),
                max_size=12)
_keys = st.lists(st.tuples(st.integers(0, 479), st.sampled_from(
    [b"\x91\x3c\x64", b"\x3e\x50", b"\xf0\x01\x02", b"\x03\xf7", b"\xf0\x05\xf7", b"\xb1\x40\x7f", b"\xfe"])),
    max_size=12)


@settings(max_examples=300, deadline=None)
@given(_box, _keys, st.lists(st.booleans(), max_size=4))
def test_merge_keeps_every_event_whole_in_order_and_the_box_on_time(box: list[tuple[int, bytes]],
                                                                    keys: list[tuple[int, bytes]],
                                                                    nows: list[bool]) -> None:
    out, port, inport, client, proc = _output(4800, active_sensing=True)
    box = sorted(box, key=lambda e: e[0])
    for offset, msg in box:
        out.schedule(4800 + offset, msg)
    for now in nows:
        if now:
            out.send(b"\xb0\x7b\x00")
    keys = sorted(keys, key=lambda e: e[0])
    inport.pending = list(keys)
    expected: list[tuple[int, bytes]] = []  # (offset of the JACK event that completed it, message)
    ref = ThruProcessor(ThruFilter(active_sensing=True))
    for offset, data in keys:
        ref.feed(data, lambda m, s, o=offset: expected.append((o, bytes([s]) + bytes(m[1:]))))
    out._process(480)
    written = port.events()
    offsets = [o for o, _ in written]
    assert offsets == sorted(offsets)
    assert all(_whole(m) for _, m in written)
    box_out = [m for _, m in written if m in {b"\x90\x30\x40", b"\x80\x30\x00", b"\xf8"}]
    assert box_out == [m for _, m in box]
    assert [(o, m) for o, m in written if m[0] & 0x0F == 1 or m[0] in (0xF0, 0xFE)] == expected  # as played
    assert out.late == 0  # the controller's messages never push the box's late
    assert len(written) == len(box) + sum(nows) + len(expected)


def test_the_callback_keeps_no_memory_with_thru() -> None:
    out, port, inport, client, _ = _output(0)
    frame = 0
    for _ in range(100):  # warm up
        inport.pending = [(3, b"\x90\x3c\x64"), (9, b"\xf0\x01\x02\x03\xf7"), (12, b"\xf8")]
        out.schedule(frame + 5, b"\x90\x30\x40")
        client.last_frame_time = frame
        out._process(480)
        frame += 480
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(3000):
            inport.pending = [(3, b"\x90\x3c\x64"), (9, b"\xf0\x01\x02\x03\xf7"), (12, b"\xf8")]
            out.schedule(frame + 5, b"\x90\x30\x40")
            client.last_frame_time = frame
            out._process(480)
            frame += 480
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename")
                if stat.size_diff > 0 and "test_midi" not in str(stat.traceback))
    assert grown < 4096, f"{grown} bytes kept after 3000 periods"
    assert out.thru_written == 2 * 3100 and out.late == 0
