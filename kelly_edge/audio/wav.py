"""Read WAV files of any common flavour as mono float32, block by block.

Python's ``wave`` module reads integer PCM only (no 32-bit float, no WAVE_FORMAT_EXTENSIBLE before
3.12), and recorders write all of those, so the RIFF chunks are parsed here. Files are streamed in
blocks rather than loaded whole: an hour at 96 kHz would not fit a Pi's memory as float32.

Every problem is an :class:`AudioInputError` whose message names the file, the problem and the fix.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from kelly_edge.errors import AudioInputError

FORMAT_PCM = 0x0001
FORMAT_FLOAT = 0x0003
FORMAT_EXTENSIBLE = 0xFFFE
MIN_RATE = 16000  # the mel bands reach 8 kHz
MAX_RATE = 384000
STREAM_FRAMES = 1 << 62  # ``frames`` of a piped stream whose length the header does not give


@dataclass(frozen=True)
class WavInfo:
    """What the header says: ``frames`` is per channel; ``bits`` is the container width."""

    sample_rate: int
    channels: int
    bits: int
    is_float: bool
    frames: int
    data_offset: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate

    def describe(self) -> str:
        kind = "float" if self.is_float else "int"
        length = "length unknown (a stream)" if self.frames == STREAM_FRAMES else f"{self.duration_s:.2f} s"
        return f"{self.sample_rate} Hz, {self.bits}-bit {kind}, {self.channels} ch, {length}"


def _fail(path: Path, problem: str, fix: str = "give a PCM or float WAV file") -> AudioInputError:
    return AudioInputError(f"{path}: {problem} ({fix})")


def read_info(fh: BinaryIO, path: Path) -> WavInfo:
    """Parse the RIFF header up to the data chunk; the file position is left at the first sample.

    ``fh`` may be a pipe (``--input /dev/stdin``): chunks are then skipped by reading, and the data
    size comes from the header alone (a stream whose writer left it unset is read to its end).
    RF64 files take the data size from their ``ds64`` chunk.
    """
    head = fh.read(12)
    if len(head) == 0:
        raise _fail(path, "file is empty")
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        raise _fail(path, "not a WAV file (no RIFF/WAVE header)", "convert it, e.g. sox in.mp3 out.wav")
    fmt: tuple[int, int, int, int] | None = None
    file_size = _size(fh)
    ds64_data: int | None = None
    while True:
        chunk = fh.read(8)
        if len(chunk) < 8:
            raise _fail(path, "no audio data chunk (file truncated?)", "re-export the recording")
        cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if cid == b"fmt ":
            body = fh.read(size)
            if len(body) < 16:
                raise _fail(path, "format chunk too short (file truncated?)", "re-export the recording")
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == FORMAT_EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack("<H", body[24:26])[0]  # first two bytes of the sub-format GUID
            fmt = (tag, channels, rate, bits)
            if size % 2:
                fh.read(1)
        elif cid == b"ds64" and head[:4] == b"RF64":  # RF64: the 64-bit sizes the 32-bit fields cannot hold
            body = fh.read(size + (size % 2))
            if len(body) < 24:
                raise _fail(path, "RF64 ds64 chunk too short (file truncated?)", "re-export the recording")
            ds64_data = struct.unpack("<Q", body[8:16])[0]
        elif cid == b"data":
            if fmt is None:
                raise _fail(path, "data chunk before the format chunk", "re-export the recording")
            tag, channels, rate, bits = fmt
            if size == 0xFFFFFFFF and ds64_data is not None:
                size = ds64_data
            offset = fh.tell() if file_size is not None else 0
            return _check(path, tag, channels, rate, bits, size, offset, file_size)
        else:
            _skip(fh, size + (size % 2), file_size is not None)


def _skip(fh: BinaryIO, n: int, seekable: bool) -> None:
    if seekable:
        fh.seek(n, 1)
        return
    while n > 0:  # a pipe: read past the chunk
        got = fh.read(min(n, 1 << 16))
        if not got:
            return
        n -= len(got)


def _size(fh: BinaryIO) -> int | None:
    """The file's length, or None for a stream that cannot seek (a pipe)."""
    try:
        if not fh.seekable():
            return None
        pos = fh.tell()
        fh.seek(0, 2)
        end = fh.tell()
        fh.seek(pos)
    except OSError:
        return None
    return end


def _check(
    path: Path, tag: int, channels: int, rate: int, bits: int, size: int, offset: int, file_size: int | None
) -> WavInfo:
    if tag == FORMAT_PCM:
        if bits not in (8, 16, 24, 32):
            raise _fail(path, f"{bits}-bit integer samples are not supported", "use 16, 24 or 32-bit")
        is_float = False
    elif tag == FORMAT_FLOAT:
        if bits not in (32, 64):
            raise _fail(path, f"{bits}-bit float samples are not supported", "use 32-bit float")
        is_float = True
    else:
        raise _fail(path, f"compressed WAV format 0x{tag:04x} is not supported", "convert to PCM, e.g. sox in.wav -e signed out.wav")
    if channels < 1:
        raise _fail(path, "header says 0 channels", "re-export the recording")
    if rate < MIN_RATE or rate > MAX_RATE:
        raise _fail(path, f"sample rate {rate} Hz is not supported", "resample to 16-96 kHz, e.g. 44.1 or 48 kHz")
    block = channels * bits // 8
    if file_size is None:  # a pipe: the header's size, or (unset) whatever the stream holds
        if size in (0, 0xFFFFFFFF):
            return WavInfo(rate, channels, bits, is_float, STREAM_FRAMES, offset)
        return WavInfo(rate, channels, bits, is_float, size // block, offset)
    available = file_size - offset
    if size == 0xFFFFFFFF or size == 0:  # streaming writers leave the size unset; trust the file
        size = available - available % block
    if size > available:
        raise _fail(
            path,
            f"truncated: header promises {size} bytes of audio, file holds {available}",
            "re-export or repair the recording (e.g. sox --ignore-length in.wav out.wav)",
        )
    frames = size // block
    if frames == 0:
        raise _fail(path, "no audio samples", "record something first")
    return WavInfo(rate, channels, bits, is_float, frames, offset)


class WavReader:
    """Streams a WAV file as mono float32 in [-1, 1] (channels averaged), block by block.

    Use as a context manager. ``read(n)`` returns up to ``n`` mono samples, fewer at the end and an
    empty array after it. Not for the real-time path: this is the offline and rehearsal source.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._fh: BinaryIO = self.path.open("rb")
        except FileNotFoundError as err:
            raise AudioInputError(f"{self.path}: file not found (check the path)") from err
        except IsADirectoryError as err:
            raise AudioInputError(f"{self.path}: is a directory (give a .wav file)") from err
        except OSError as err:
            raise AudioInputError(f"{self.path}: cannot open ({err.strerror}; check permissions)") from err
        try:
            self.info = read_info(self._fh, self.path)
        except BaseException:
            self._fh.close()
            raise
        self._left = self.info.frames
        self.frames_read = 0  # frames delivered so far (a stream's length is known only at its end)
        bits = self.info.bits
        self._block = self.info.channels * bits // 8
        if self.info.is_float:
            self._dtype = np.dtype("<f4") if bits == 32 else np.dtype("<f8")
            self._scale = 1.0
        elif bits == 8:
            self._dtype = np.dtype("u1")
            self._scale = 1.0 / 128.0
        elif bits == 24:
            self._dtype = np.dtype("u1")
            self._scale = 1.0 / float(1 << 31)
        else:
            self._dtype = np.dtype(f"<i{bits // 8}")
            self._scale = 1.0 / float(1 << (bits - 1))

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate

    def read(self, n: int) -> np.ndarray:
        """Up to ``n`` mono float32 samples."""
        frames = min(n, self._left)
        if frames <= 0:
            return np.zeros(0, dtype=np.float32)
        raw = self._fh.read(frames * self._block)
        frames = len(raw) // self._block
        self._left = self._left - frames if frames else 0
        self.frames_read += frames
        raw = raw[: frames * self._block]
        ch = self.info.channels
        if self.info.bits == 24:
            b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
            ints = (b[:, 0].astype(np.int32) << 8) | (b[:, 1].astype(np.int32) << 16) | (b[:, 2].astype(np.int32) << 24)
            samples = ints.astype(np.float32)
        elif self.info.bits == 8:
            samples = np.frombuffer(raw, dtype=self._dtype).astype(np.float32) - 128.0
        else:
            samples = np.frombuffer(raw, dtype=self._dtype).astype(np.float32)
        samples *= np.float32(self._scale)
        if ch > 1:
            samples = samples.reshape(-1, ch).mean(axis=1, dtype=np.float32)
        return samples

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "WavReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int, *, bits: int = 16, is_float: bool = False) -> None:
    """Write ``(frames,)`` or ``(frames, channels)`` float samples in [-1, 1] (for tools and tests)."""
    data = np.asarray(samples, dtype=np.float64)
    if data.ndim == 1:
        data = data[:, None]
    channels = data.shape[1]
    if is_float:
        payload = data.astype("<f4" if bits == 32 else "<f8").tobytes()
        tag = FORMAT_FLOAT
    else:
        full = float(1 << (bits - 1))
        ints = np.clip(np.round(data * full), -full, full - 1).astype(np.int64)
        if bits == 24:
            u = (ints & 0xFFFFFF).astype("<u4").view(np.uint8).reshape(-1, 4)[:, :3]
            payload = u.tobytes()
        elif bits == 8:
            payload = (ints + 128).astype(np.uint8).tobytes()
        else:
            payload = ints.astype(f"<i{bits // 8}").tobytes()
        tag = FORMAT_PCM
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, sample_rate, sample_rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(payload)) + payload
    from kelly_edge.fileio import write_atomic

    write_atomic(path, b"RIFF" + struct.pack("<I", len(body)) + body)
