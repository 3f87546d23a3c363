"""The JACK MIDI out's hand-over queue and process callback, against a fake port and client (the
real server is exercised in tests/live/test_live_jack_midi.py): events at their own offset, in
order, late ones clamped and counted, a flush drops what was handed over, 32-bit frame wrap,
and no memory kept by the callback."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kelly_edge.midi.jack_sink import NOW, WRAP, EventQueue, JackMidiOutput, frame_delta


class FakePort:
    """A JACK MIDI output port buffer: what was reserved at which offset, refusing disorder as JACK does."""

    def __init__(self) -> None:
        self.cycles: list[list[tuple[int, bytes]]] = []
        self._bufs: list[tuple[int, bytearray]] = []

    def clear_buffer(self) -> None:
        self.cycles.append([])
        self._bufs = []

    def reserve_midi_event(self, offset: int, size: int) -> Any:
        if self._bufs and offset < self._bufs[-1][0]:
            return memoryview(bytearray(0))  # JACK refuses out-of-order events
        buf = bytearray(size)
        self._bufs.append((offset, buf))
        return memoryview(buf)

    def events(self) -> list[tuple[int, bytes]]:
        return [(off, bytes(buf)) for off, buf in self._bufs]


class FakeClient:
    def __init__(self, start: int) -> None:
        self.last_frame_time = start


def _output(start: int = 1000) -> tuple[JackMidiOutput, FakePort, FakeClient]:
    out = JackMidiOutput(port="synth")
    port, client = FakePort(), FakeClient(start)
    out._port, out._client = port, client  # the hardware edge: a fake JACK port and client
    return out, port, client


def test_events_are_written_at_their_own_offset_across_periods() -> None:
    out, port, client = _output(1000)
    for frame, note in ((1010, 60), (1200, 61), (1479, 62), (1480, 63), (1900, 64)):
        assert out.schedule(frame, bytes([0x90, note, 100]))
    out._process(480)
    assert port.events() == [(10, b"\x90\x3c\x64"), (200, b"\x90\x3d\x64"), (479, b"\x90\x3e\x64")]
    client.last_frame_time = 1480
    out._process(480)
    assert port.events() == [(0, b"\x90\x3f\x64"), (420, b"\x90\x40\x64")]
    assert out.late == 0 and out.written == 5 and out.queue.pending == 0


def test_late_and_out_of_order_events_are_clamped_and_counted() -> None:
    out, port, client = _output(1000)
    out.schedule(990, b"\x90\x3c\x64")  # 10 frames too late
    out.schedule(1100, b"\x90\x3d\x64")
    out.schedule(1050, b"\x80\x3d\x00")  # before the previous one
    out.send(b"\xb0\x7b\x00")  # as soon as possible: after what is already queued
    out._process(480)
    assert port.events() == [(0, b"\x90\x3c\x64"), (100, b"\x90\x3d\x64"), (100, b"\x80\x3d\x00"),
                             (100, b"\xb0\x7b\x00")]
    assert out.late == 2 and sorted(out.lateness_frames().tolist()) == [10, 50]


def test_a_flush_drops_what_was_scheduled_and_keeps_immediate_messages() -> None:
    out, port, client = _output(1000)
    out.schedule(1100, b"\x90\x3c\x64")
    out.send(b"\xfc")  # a Stop sent at once: a panic right after must not take it back
    out.schedule(1300, b"\x90\x3d\x64")
    out.flush()
    out.send(b"\xb0\x7b\x00")
    out._process(480)
    assert port.events() == [(0, b"\xfc"), (0, b"\xb0\x7b\x00")]
    assert out.flushed == 2 and out.queue.pending == 0


def test_frames_compare_across_the_32_bit_wrap() -> None:
    start = WRAP - 100
    out, port, client = _output(start)
    out.schedule((start + 50) % WRAP, b"\xf8")
    out.schedule((start + 300) % WRAP, b"\xf8")  # after the wrap: a small number
    out._process(480)
    assert [off for off, _ in port.events()] == [50, 300]
    assert frame_delta(5, WRAP - 5) == 10 and frame_delta(WRAP - 5, 5) == -10


def test_the_queue_refuses_when_full_or_too_long_and_recovers() -> None:
    q = EventQueue(slots=4, width=3)
    assert all(q.push(i, b"\xf8") for i in range(4))
    assert not q.push(5, b"\xf8")
    assert not q.push(5, b"\xf0\x01\x02\xf7")  # longer than a slot
    assert q.refused == 2
    q.head = 2  # the consumer took two
    assert q.push(6, b"\x90\x3c\x64") and q.pending == 3
    with pytest.raises(ValueError):
        EventQueue(slots=6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3000), st.integers(1, 3)), min_size=1, max_size=60))
def test_every_event_comes_out_once_in_order_and_never_early(events: list[tuple[int, int]]) -> None:
    out, port, client = _output(0)
    events = sorted(events, key=lambda e: e[0])
    for i, (frame, size) in enumerate(events):
        assert out.schedule(frame, bytes([0xF8]) * size if size == 1 else bytes([0x90, i % 128, 1][:size]))
    written: list[tuple[int, int]] = []  # (absolute frame, size)
    for cycle in range(8):
        client.last_frame_time = cycle * 480
        out._process(480)
        written += [(cycle * 480 + off, len(data)) for off, data in port.events()]
    assert [size for _, size in written] == [size for _, size in events]
    assert [frame for frame, _ in written] == [frame for frame, _ in events]  # none late, none early
    assert out.late == 0


def test_the_callback_keeps_no_memory() -> None:
    out, port, client = _output(0)
    port.reserve_midi_event = lambda offset, size, _b=memoryview(bytearray(8)): _b[:size]  # type: ignore[method-assign]
    port.clear_buffer = lambda: None  # type: ignore[method-assign]
    frame = 0
    for _ in range(200):  # warm up
        out.schedule(frame + 10, b"\x90\x3c\x64")
        client.last_frame_time = frame
        out._process(480)
        frame += 480
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(5000):
            out.schedule(frame + 10, b"\x90\x3c\x64")
            out.schedule(frame + 20, b"\xf8")
            client.last_frame_time = frame
            out._process(480)
            frame += 480
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename") if stat.size_diff > 0)
    assert grown < 4096, f"{grown} bytes kept after 5000 periods"
    assert out.written == 200 + 10000 and out.late == 0


def test_now_events_wait_behind_a_later_scheduled_one() -> None:
    out, port, client = _output(0)
    out.schedule(2000, b"\x90\x3c\x64")
    out.send(b"\xfc")
    out._process(480)
    assert port.events() == []
    client.last_frame_time = 1920
    out._process(480)
    assert port.events() == [(80, b"\x90\x3c\x64"), (80, b"\xfc")]
    assert NOW < 0
