"""The WAV rehearsal input: every sample reaches the ring in order, at real-time pace, then it ends."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from kelly_edge.audio.capture import AudioCapture
from kelly_edge.audio.ring import FrameRing
from kelly_edge.audio.wav import write_wav
from kelly_edge.errors import AudioInputError, DeviceError
from kelly_edge.service.rehearsal import WavCapture, rehearsal_opener, wav_sample_rate

SR = 16000
HOP = 160


def ramp_wav(tmp_path: Path, seconds: float, channels: int = 1) -> tuple[Path, np.ndarray]:
    n = int(SR * seconds)
    mono = ((np.arange(n) % 2000) / 2000.0 - 0.5).astype(np.float32)
    data = np.repeat(mono[:, None], channels, axis=1) if channels > 1 else mono
    path = tmp_path / "take.wav"
    write_wav(path, data, SR, bits=32, is_float=True)
    return path, mono


def drain(ring: FrameRing, capture: WavCapture, until: threading.Event, timeout: float = 10.0) -> np.ndarray:
    """Read hops like the processing thread until ``until`` is set and the ring is empty."""
    out, buf = [], np.zeros(HOP, dtype=np.float32)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ring.read_mono(buf):
            out.append(buf.copy())
        elif until.is_set():
            break
        else:
            ring.wait(0.01)
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def test_fast_mode_delivers_every_sample_in_order_then_silence(tmp_path: Path) -> None:
    path, mono = ramp_wav(tmp_path, 1.0)
    ended = threading.Event()
    with FrameRing(HOP * 8) as ring:
        capture = WavCapture(path, ring, frames_per_buffer=HOP, realtime=False, on_end=ended.set, tail_s=0.1)
        assert isinstance(capture, AudioCapture)
        assert (capture.sample_rate, capture.channels, capture.name) == (SR, 1, "file:take.wav")
        capture.start()
        got = drain(ring, capture, ended)
        capture.close()
        capture.close()
    assert capture.ended and capture.alive is False  # closed
    np.testing.assert_allclose(got[: len(mono)], mono, atol=1e-6)
    assert np.all(got[len(mono):] == 0.0) and len(got) >= len(mono) + int(0.1 * SR) - HOP
    assert capture.overflows == 0


def test_real_time_pace(tmp_path: Path) -> None:
    path, mono = ramp_wav(tmp_path, 0.5)
    ended = threading.Event()
    with FrameRing(SR) as ring:
        capture = WavCapture(path, ring, frames_per_buffer=HOP, on_end=ended.set, tail_s=0.0)
        started = time.monotonic()
        capture.start()
        assert ended.wait(10.0)
        elapsed = time.monotonic() - started
        frames, stamp = ring.stamp
        capture.close()
    assert elapsed >= 0.5 * 0.95  # never faster than the audio (the upper side is the machine's business)
    assert frames >= len(mono) and stamp - started >= 0.5 * 0.95


def test_a_multichannel_ring_gets_the_mono_file_in_every_channel(tmp_path: Path) -> None:
    path, mono = ramp_wav(tmp_path, 0.2, channels=2)
    ended = threading.Event()
    with FrameRing(SR, channels=2) as ring:
        capture = WavCapture(path, ring, frames_per_buffer=HOP, realtime=False, on_end=ended.set, tail_s=0.0)
        capture.start()
        got = drain(ring, capture, ended)
        capture.close()
    np.testing.assert_allclose(got[: len(mono)], mono, atol=1e-6)


def test_looping_plays_the_file_again(tmp_path: Path) -> None:
    path, mono = ramp_wav(tmp_path, 0.1)
    with FrameRing(SR) as ring:
        capture = WavCapture(path, ring, frames_per_buffer=HOP, realtime=False, loop=True)
        capture.start()
        deadline = time.monotonic() + 5.0
        while ring.available() < 3 * len(mono) and time.monotonic() < deadline:
            time.sleep(0.005)
        buf = np.zeros(3 * len(mono), dtype=np.float32)
        assert ring.read_mono(buf)
        capture.close()
    np.testing.assert_allclose(buf, np.tile(mono, 3), atol=1e-6)
    assert not capture.ended


def test_the_opener_opens_the_recording_once(tmp_path: Path) -> None:
    path, _ = ramp_wav(tmp_path, 0.1)
    opener = rehearsal_opener(path, frames_per_buffer=HOP)
    with FrameRing(SR) as ring:
        capture = opener(ring)
        capture.close()
        with pytest.raises(DeviceError, match="already played"):
            opener(ring)
    assert wav_sample_rate(path) == SR


def test_a_missing_file_is_an_audio_input_error(tmp_path: Path) -> None:
    with FrameRing(SR) as ring, pytest.raises(AudioInputError, match="not found"):
        WavCapture(tmp_path / "nope.wav", ring, frames_per_buffer=HOP)
