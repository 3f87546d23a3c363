"""PortAudio capture (pyaudio): a callback stream that only copies into the ring.

Why a callback stream: PortAudio's *blocking* read on a one-channel JACK stream has crashed on
these machines, and a callback keeps capture independent of how long a hop takes to process.
Why so many checks before ``open``: PortAudio can crash the process when asked to open a device
index while it has no devices, so the device count, the chosen device's input channels and the
sample rate are all checked first and each problem becomes one DeviceError line.

PortAudio enumerates devices only when it initialises, so every open builds a fresh
``pyaudio.PyAudio`` (and ``close`` terminates it): reopening after an unplug sees the device again.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np

from kelly_edge.audio.capture import InputDevice
from kelly_edge.audio.native_log import mute_native_errors
from kelly_edge.audio.ring import FrameRing
from kelly_edge.config.schema import SAMPLE_RATES
from kelly_edge.errors import DeviceError

log = logging.getLogger(__name__)

_HW_SUFFIX = re.compile(r"\s*\(hw:\d+,\d+\)\s*$")  # ALSA card numbers change on replug


def display_name(name: str) -> str:
    """A device name as the config names it: without ALSA's ``(hw:N,M)`` suffix."""
    return _HW_SUFFIX.sub("", name)


def _pyaudio() -> Any:
    mute_native_errors()
    try:
        import pyaudio
    except ImportError as err:  # pragma: no cover - a dependency of the package
        raise DeviceError("audio.backend pyaudio needs the pyaudio package (pip install pyaudio)") from err
    return pyaudio


def _inputs(pa: Any) -> list[dict[str, Any]]:
    count = pa.get_device_count()
    out = []
    for i in range(count):
        info = pa.get_device_info_by_index(i)
        if int(info.get("maxInputChannels", 0)) > 0:
            out.append(info)
    return out


def _default_index(pa: Any) -> int | None:
    try:
        return int(pa.get_default_input_device_info()["index"])
    except (OSError, IOError, KeyError, ValueError):
        return None


def _rates(pa: Any, pyaudio: Any, index: int, channels: int) -> tuple[int, ...]:
    ok = []
    for rate in SAMPLE_RATES:
        try:
            if pa.is_format_supported(rate, input_device=index, input_channels=channels, input_format=pyaudio.paFloat32):
                ok.append(rate)
        except ValueError:
            pass
    return tuple(ok)


def list_inputs() -> list[InputDevice]:
    """Every PortAudio input device, with the config's sample rates it accepts."""
    pyaudio = _pyaudio()
    pa = pyaudio.PyAudio()
    try:
        default = _default_index(pa)
        return [
            InputDevice(
                backend="pyaudio", name=display_name(str(info["name"])), channels=int(info["maxInputChannels"]),
                default_rate=int(info["defaultSampleRate"]), rates=_rates(pa, pyaudio, int(info["index"]), 1),
                default=int(info["index"]) == default,
            )
            for info in _inputs(pa)
        ]
    finally:
        pa.terminate()


class PyAudioCapture:
    """An opened PortAudio input; see :class:`~kelly_edge.audio.capture.AudioCapture`."""

    def __init__(self, pa: Any, pyaudio: Any, info: dict[str, Any], *, sample_rate: int, channels: int,
                 ring: FrameRing, frames_per_buffer: int) -> None:
        self._pa = pa
        self._pyaudio = pyaudio
        self._index = int(info["index"])
        self.name = display_name(str(info["name"]))
        self.sample_rate = sample_rate
        self.channels = channels
        self.overflows = 0
        self._ring = ring
        self._frames_per_buffer = frames_per_buffer
        self._overflow_flag = int(pyaudio.paInputOverflow)
        self._continue = (None, int(pyaudio.paContinue))  # the callback's return value, built once
        self._stream: Any = None
        self._closed = False

    def start(self) -> None:
        try:
            self._stream = self._pa.open(
                rate=self.sample_rate, channels=self.channels, format=self._pyaudio.paFloat32, input=True,
                input_device_index=self._index, frames_per_buffer=self._frames_per_buffer,
                stream_callback=self._callback, start=True,
            )
        except (OSError, ValueError) as err:
            raise DeviceError(f"audio input {self.name!r} could not be opened: {err}") from err

    def _callback(self, in_data: bytes | None, frame_count: int, time_info: Any, status: int) -> tuple[None, int]:
        """PortAudio's thread: count overflows, copy into the ring. No locks, no logging, no arrays made."""
        if status & self._overflow_flag:
            self.overflows += 1
        if in_data is not None:
            self._ring.write_interleaved(np.frombuffer(in_data, dtype=np.float32))
        return self._continue

    @property
    def alive(self) -> bool:
        stream = self._stream
        if self._closed or stream is None:
            return False
        try:
            return bool(stream.is_active())
        except (OSError, ValueError):
            return False

    def maintain(self) -> None:
        """Nothing to repair: a PortAudio stream that died is reopened by the live loop."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop_stream()
            except (OSError, ValueError):
                pass
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        self._pa.terminate()


def open_capture(*, device: str, sample_rate: int, channels: int, ring: FrameRing, frames_per_buffer: int,
                 client_name: str = "kelly-edge") -> PyAudioCapture:
    """Find the input named by ``device`` (a case-insensitive substring; "" = the default input),
    check it accepts ``channels`` float32 channels at ``sample_rate``, and return it unstarted."""
    del client_name  # PortAudio names its own JACK client
    pyaudio = _pyaudio()
    pa = pyaudio.PyAudio()
    try:
        info = _choose(pa, device)
        name = display_name(str(info["name"]))
        have = int(info["maxInputChannels"])
        if channels > have:
            raise DeviceError(f"audio input {name!r} has {have} input channel(s); audio.channels is {channels}")
        index = int(info["index"])
        try:
            ok = bool(pa.is_format_supported(sample_rate, input_device=index, input_channels=channels,
                                             input_format=pyaudio.paFloat32))
        except ValueError:
            ok = False
        if not ok:
            rates = _rates(pa, pyaudio, index, channels)
            accepted = ", ".join(str(r) for r in rates) if rates else f"none of {', '.join(map(str, SAMPLE_RATES))}"
            raise DeviceError(f"audio input {name!r} refuses audio.sample_rate {sample_rate} Hz (accepted: {accepted})")
        return PyAudioCapture(pa, pyaudio, info, sample_rate=sample_rate, channels=channels, ring=ring,
                              frames_per_buffer=frames_per_buffer)
    except BaseException:
        pa.terminate()
        raise


def _choose(pa: Any, device: str) -> dict[str, Any]:
    inputs = _inputs(pa)
    if not inputs:
        raise DeviceError("no audio input devices found (is the interface plugged in and powered?)")
    if not device:
        default = _default_index(pa)
        for info in inputs:
            if int(info["index"]) == default:
                return info
        return inputs[0]
    want = device.casefold()
    for info in inputs:
        if want in str(info["name"]).casefold():
            return info
    names = ", ".join(repr(display_name(str(i["name"]))) for i in inputs)
    raise DeviceError(f"no audio input matches audio.device {device!r} (inputs: {names})")
