"""``kelly-edge devices``: the audio inputs and MIDI ports, named the way the config names them."""

from __future__ import annotations

import functools
from typing import Callable, TextIO

from kelly_edge.audio.capture import BACKENDS, InputDevice, list_inputs
from kelly_edge.errors import DeviceError
from kelly_edge.midi.rtmidi_sink import APIS, list_inputs as list_midi_inputs, list_outputs


def _section(out: TextIO, title: str, lister: Callable[[], list[str]]) -> None:
    print(title, file=out)
    try:
        rows = lister()
    except DeviceError as err:
        print(f"  (unavailable: {err})", file=out)
        return
    if not rows:
        print("  (none)", file=out)
    for row in rows:
        print(f"  {row}", file=out)


def _midi_rows(lister: Callable[[str], list[str]], api: str) -> list[str]:
    return [repr(name) for name in lister(api)]


def _audio_rows(backend: str) -> list[str]:
    def row(d: InputDevice) -> str:
        rates = ", ".join(str(r) for r in d.rates) if d.rates else f"default {d.default_rate}"
        mark = "  [default]" if d.default else ""
        return f"{d.name!r}  ({d.channels} ch; {rates} Hz){mark}"

    return [row(d) for d in list_inputs(backend)]


def print_devices(out: TextIO) -> None:
    """Every audio input per backend, every MIDI output and input per MIDI backend."""
    for backend in BACKENDS:
        _section(out, f"audio inputs (audio.backend: {backend}; audio.device matches a part of the name):",
                 functools.partial(_audio_rows, backend))
    for api in APIS:
        _section(out, f"MIDI outputs (midi.backend: {api}; midi.port matches a part of the name):",
                 functools.partial(_midi_rows, list_outputs, api))
    for api in APIS:
        _section(out, f"MIDI inputs (midi.backend: {api}; midi.clock_in_port for tempo.source: midi_clock, midi.thru_port):",
                 functools.partial(_midi_rows, list_midi_inputs, api))
