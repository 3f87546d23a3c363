"""FrameRing: what goes in comes out in order, downmixed; overflow drops new frames and counts them."""

from __future__ import annotations

import threading
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kelly_edge.audio.ring import FrameRing


def test_interleaved_roundtrip_across_the_wrap() -> None:
    with FrameRing(10) as ring:
        out = np.zeros(4, dtype=np.float32)
        stream = np.arange(1, 25, dtype=np.float32)
        got = []
        for start in range(0, 24, 6):
            assert ring.write_interleaved(stream[start : start + 6]) == 6
            while ring.read_mono(out):
                got.extend(out.tolist())
        assert got == stream.tolist()
        assert ring.dropped_frames == 0


def test_stereo_interleaved_and_planar_are_downmixed_to_the_channel_mean() -> None:
    with FrameRing(16, channels=2) as ring:
        left = np.array([1, 2, 3, 4, 5], dtype=np.float32)
        right = np.array([3, 2, 1, 0, -1], dtype=np.float32)
        inter = np.stack([left, right], axis=1).reshape(-1)
        ring.write_interleaved(inter)
        ring.write_planar([left, right])
        out = np.zeros(10, dtype=np.float32)
        assert ring.read_mono(out)
        np.testing.assert_allclose(out, np.tile((left + right) / 2, 2))


def test_read_waits_for_a_whole_hop() -> None:
    with FrameRing(16) as ring:
        ring.write_interleaved(np.ones(3, dtype=np.float32))
        out = np.zeros(4, dtype=np.float32)
        assert not ring.read_mono(out)
        assert ring.frames_read == 0
        ring.write_interleaved(np.ones(1, dtype=np.float32))
        assert ring.read_mono(out)


def test_a_full_ring_drops_the_new_frames_and_counts_them() -> None:
    with FrameRing(8) as ring:
        ring.write_interleaved(np.arange(6, dtype=np.float32))
        kept = ring.write_interleaved(np.arange(6, 12, dtype=np.float32))
        assert kept == 2
        assert ring.dropped_frames == 4
        out = np.zeros(8, dtype=np.float32)
        assert ring.read_mono(out)
        assert out.tolist() == list(range(8))  # the unread frames survived, in order


def test_stamp_records_the_frame_count_of_the_latest_write() -> None:
    with FrameRing(32) as ring:
        ring.write_interleaved(np.zeros(5, dtype=np.float32))
        frames, wall = ring.stamp
        assert frames == 5 and wall > 0


def test_wait_wakes_on_a_write_from_another_thread() -> None:
    with FrameRing(32) as ring:
        assert not ring.wait(0.0)
        timer = threading.Timer(0.05, lambda: ring.write_interleaved(np.zeros(4, dtype=np.float32)))
        timer.start()
        try:
            assert ring.wait(5.0)
        finally:
            timer.join()
        assert ring.available() == 4


def test_skip_to_latest_keeps_only_the_newest_frames() -> None:
    with FrameRing(32) as ring:
        ring.write_interleaved(np.arange(10, dtype=np.float32))
        assert ring.skip_to_latest(4) == 6
        out = np.zeros(4, dtype=np.float32)
        assert ring.read_mono(out)
        assert out.tolist() == [6, 7, 8, 9]


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="capacity"):
        FrameRing(1)
    with pytest.raises(ValueError, match="channels"):
        FrameRing(16, channels=0)


@settings(max_examples=60, deadline=None)
@given(
    capacity=st.integers(4, 40),
    hop=st.integers(1, 8),
    writes=st.lists(st.integers(0, 30), min_size=1, max_size=30),
)
def test_the_read_stream_is_the_written_stream_minus_what_was_dropped(capacity: int, hop: int, writes: list[int]) -> None:
    hop = min(hop, capacity)
    ring = FrameRing(capacity)
    try:
        out = np.zeros(hop, dtype=np.float32)
        expected: list[float] = []
        got: list[float] = []
        counter = 0
        for n in writes:
            block = np.arange(counter, counter + n, dtype=np.float32)
            counter += n
            kept = ring.write_interleaved(block)
            expected.extend(block[:kept].tolist())
            if n % 2 == 0:  # the consumer only reads on some turns: it falls behind, the ring fills
                while ring.read_mono(out):
                    got.extend(out.tolist())
        while ring.read_mono(out):
            got.extend(out.tolist())
        assert got == expected[: len(got)]
        assert len(expected) - len(got) < hop
        assert ring.dropped_frames == counter - len(expected)
    finally:
        ring.close()


def test_the_callback_path_does_not_grow_memory() -> None:
    """Steady state: writing a callback's block and reading hops leaves no allocation behind."""
    with FrameRing(4800) as ring:
        block = np.ones(480, dtype=np.float32)
        hop = np.zeros(480, dtype=np.float32)
        for _ in range(200):  # warm up
            ring.write_interleaved(block)
            ring.read_mono(hop)
        tracemalloc.start()
        try:
            before = tracemalloc.take_snapshot()
            for _ in range(5000):
                ring.write_interleaved(block)
                ring.read_mono(hop)
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        grown = sum(stat.size_diff for stat in after.compare_to(before, "filename") if stat.size_diff > 0)
        assert grown < 4096, f"{grown} bytes kept after 5000 writes"
