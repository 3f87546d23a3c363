"""The live-capture seam: what an audio input backend must provide, and the factory that picks one.

One module per backend (:mod:`~kelly_edge.audio.pyaudio_capture` for PortAudio,
:mod:`~kelly_edge.audio.jack_capture` for a JACK client), each exposing ``open_capture(...)`` and
``list_inputs()``. The live loop only sees :class:`AudioCapture`; tests inject a fake that pushes
recorded hops into the same :class:`~kelly_edge.audio.ring.FrameRing`.

Every device problem a user can cause (no devices, no name match, a refused sample rate, no JACK
server) is a :class:`~kelly_edge.errors.DeviceError` raised *before* any stream is opened, with a
message that names what was asked for and what exists.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from kelly_edge.audio.ring import FrameRing
from kelly_edge.errors import DeviceError

BACKENDS = ("pyaudio", "jack")


@dataclass(frozen=True)
class InputDevice:
    """An audio input as ``kelly-edge devices`` shows it: ``name`` is what ``audio.device`` matches."""

    backend: str
    name: str
    channels: int  # input channels
    default_rate: int  # Hz
    rates: tuple[int, ...]  # accepted rates among the config's choices (empty when unknown)
    default: bool = False  # what ``audio.device: ""`` opens


@runtime_checkable
class AudioCapture(Protocol):
    """A running (or ready) audio input that writes into the ring it was opened with.

    Must provide: ``name`` (the device or ports actually opened), ``sample_rate`` (Hz),
    ``channels`` (frames in the ring have this many samples), ``overflows`` (input overflows /
    xruns the backend reported), ``alive`` (False once the device stopped for good: unplugged,
    server gone; the live loop then closes it and reopens later), :meth:`start` (begin writing
    from the backend's callback thread, which must only copy into the ring), :meth:`maintain`
    (called off the audio thread every 1-2 s: may repair connections; must not block long) and an
    idempotent :meth:`close`.
    """

    name: str
    sample_rate: int
    channels: int
    overflows: int

    @property
    def alive(self) -> bool: ...

    def start(self) -> None: ...

    def maintain(self) -> None: ...

    def close(self) -> None: ...


def _backend(name: str) -> Any:
    if name not in BACKENDS:
        raise DeviceError(f"unknown audio backend {name!r} (one of {', '.join(BACKENDS)})")
    return importlib.import_module(f"kelly_edge.audio.{name}_capture")


def open_capture(audio: Any, ring: FrameRing, *, frames_per_buffer: int, client_name: str = "kelly-edge") -> AudioCapture:
    """Open (not start) the input described by ``audio`` (the config's ``audio`` section).

    ``ring`` must have ``audio.channels`` channels; ``frames_per_buffer`` is the callback block
    size the backend is asked for (a hop). Raises DeviceError with one clear line.
    """
    if ring.channels != audio.channels:
        raise ValueError(f"ring has {ring.channels} channels, audio.channels is {audio.channels}")
    module = _backend(audio.backend)
    capture: AudioCapture = module.open_capture(
        device=audio.device, sample_rate=audio.sample_rate, channels=audio.channels, ring=ring,
        frames_per_buffer=frames_per_buffer, client_name=client_name,
    )
    return capture


def list_inputs(backend: str) -> list[InputDevice]:
    """The inputs ``backend`` can open now; ``[]`` when there are none. Raises DeviceError when the
    backend itself is unusable (e.g. no JACK server)."""
    result: list[InputDevice] = _backend(backend).list_inputs()
    return result
