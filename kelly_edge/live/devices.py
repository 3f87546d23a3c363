"""``kelly-edge devices``: the audio inputs and MIDI ports, named the way the config names them."""

from __future__ import annotations

import functools
from typing import Any, Callable, TextIO

from kelly_edge.audio.capture import BACKENDS, InputDevice, list_inputs
from kelly_edge.errors import DeviceError
from kelly_edge.midi.router import plan_routes
from kelly_edge.midi.rtmidi_sink import APIS, choose_port, list_inputs as list_midi_inputs, list_outputs


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


def voice_rows(config: Any, outputs: list[str]) -> list[str]:
    """One row per destination of ``config``: its voices (and the clock), the key and text that
    name its port, and the port that text finds among ``outputs`` now, or MISSING and why."""
    rows = []
    for route in plan_routes(config):
        who = "+".join(route.voices) or "clock only"
        if route.clock and route.voices:
            who += " + clock"
        if route.primary and config.midi.virtual:
            found = "virtual port (others connect to it)"
        else:
            try:
                _, name = choose_port(outputs, route.want, what="output", key=route.key, client_name="kelly-edge")
                found = f"-> {name!r} connected"
            except DeviceError as err:
                found = f"MISSING: {err}"
        rows.append(f"{who}: {route.key} {route.want!r} {found}")
    return rows


def print_devices(out: TextIO, config: Any = None) -> None:
    """Every audio input per backend, every MIDI output and input per MIDI backend; with a
    ``config``, also each voice's port (``generator.<voice>.port``) and whether it is there."""
    for backend in BACKENDS:
        _section(out, f"audio inputs (audio.backend: {backend}; audio.device matches a part of the name):",
                 functools.partial(_audio_rows, backend))
    for api in APIS:
        _section(out, f"MIDI outputs (midi.backend: {api}; midi.port matches a part of the name):",
                 functools.partial(_midi_rows, list_outputs, api))
    for api in APIS:
        _section(out, f"MIDI inputs (midi.backend: {api}; midi.clock_in_port for tempo.source: midi_clock, midi.thru_port):",
                 functools.partial(_midi_rows, list_midi_inputs, api))
    if config is not None:
        api = config.midi.backend
        _section(out, f"voices (generator.<voice>.port; \"\" = midi.port; midi.backend: {api}):",
                 lambda: voice_rows(config, list_outputs(api)))
