"""The WAV reader: every common flavour decodes to the same mono signal; bad files fail clearly."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from kelly_edge.audio.wav import WavReader, write_wav
from kelly_edge.errors import AudioInputError


def _tone(sr: int, seconds: float = 0.5, channels: int = 1) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    if channels == 1:
        return left
    cols = [left * (1 + 0.1 * c) for c in range(channels)]
    return np.stack(cols, axis=1)


def _read_all(path: Path) -> tuple[np.ndarray, WavReader]:
    with WavReader(path) as r:
        parts = []
        while (block := r.read(1000)).size:
            parts.append(block)
        return np.concatenate(parts), r


@pytest.mark.parametrize("sr", [16000, 22050, 44100, 48000, 96000])
@pytest.mark.parametrize("bits,is_float,tol", [(16, False, 1e-4), (24, False, 1e-6), (32, False, 1e-7), (32, True, 1e-7), (8, False, 1e-2)])
def test_formats_decode_to_the_signal(tmp_path: Path, sr: int, bits: int, is_float: bool, tol: float) -> None:
    x = _tone(sr)
    path = tmp_path / "x.wav"
    write_wav(path, x, sr, bits=bits, is_float=is_float)
    y, r = _read_all(path)
    assert r.info.sample_rate == sr and r.info.bits == bits and r.info.is_float == is_float
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.max(np.abs(y - x)) < tol


@pytest.mark.parametrize("channels", [2, 6])
def test_channels_are_averaged(tmp_path: Path, channels: int) -> None:
    x = _tone(48000, channels=channels)
    path = tmp_path / "multi.wav"
    write_wav(path, x, 48000, bits=32, is_float=True)
    y, r = _read_all(path)
    assert r.info.channels == channels
    np.testing.assert_allclose(y, x.mean(axis=1), atol=1e-6)


def test_extensible_header_and_odd_chunks(tmp_path: Path) -> None:
    """WAVE_FORMAT_EXTENSIBLE (what many recorders write) plus a LIST chunk of odd size."""
    x = (_tone(44100, channels=2) * 32767).astype("<i2")
    fmt = struct.pack("<HHIIHH", 0xFFFE, 2, 44100, 44100 * 4, 4, 16)
    ext = struct.pack("<HHI", 22, 16, 3) + struct.pack("<H", 1) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    listc = b"LIST" + struct.pack("<I", 3) + b"abc" + b"\x00"
    data = x.tobytes()
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt + ext)) + fmt + ext + listc + b"data" + struct.pack("<I", len(data)) + data
    path = tmp_path / "ext.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    y, r = _read_all(path)
    assert r.info.channels == 2 and r.info.frames == len(x)
    np.testing.assert_allclose(y, x.mean(axis=1) / 32768.0, atol=1e-4)


def test_streaming_size_unset_reads_what_is_there(tmp_path: Path) -> None:
    path = tmp_path / "stream.wav"
    write_wav(path, _tone(16000), 16000)
    raw = bytearray(path.read_bytes())
    raw[40:44] = b"\xff\xff\xff\xff"  # data size left unset by a streaming writer
    path.write_bytes(bytes(raw))
    y, _ = _read_all(path)
    assert y.size == 8000


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "empty"),
        (b"hello, this is not audio at all", "not a WAV"),
        (b"RIFF\x00\x00\x00\x00WAVE", "no audio data chunk"),
        (b"ID3\x03\x00\x00\x00" + bytes(100), "not a WAV"),
    ],
)
def test_bad_files_fail_with_one_clear_line(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioInputError, match=match) as info:
        WavReader(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    write_wav(path, _tone(48000), 48000)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(AudioInputError, match="truncated"):
        WavReader(path)


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioInputError, match="not found"):
        WavReader(tmp_path / "nope.wav")
    with pytest.raises(AudioInputError, match="directory"):
        WavReader(tmp_path)


def test_unsupported_rate_and_format(tmp_path: Path) -> None:
    path = tmp_path / "low.wav"
    write_wav(path, _tone(8000), 8000)
    with pytest.raises(AudioInputError, match="8000 Hz"):
        WavReader(path)
    raw = bytearray((tmp_path / "low.wav").read_bytes())
    write_wav(path, _tone(16000), 16000)
    raw = bytearray(path.read_bytes())
    raw[20:22] = struct.pack("<H", 0x0055)  # MP3-in-WAV
    path.write_bytes(bytes(raw))
    with pytest.raises(AudioInputError, match="compressed"):
        WavReader(path)
