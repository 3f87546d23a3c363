"""One port per synth: the router plans a destination per port, routes each voice's channel to
its synth, and opens, hot-plugs, panics and reports each port on its own. A fake output at the
hardware seam (tests/live/live_fakes.FakeOutput); the real ports are in tests/live/test_live_ports.py."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from kelly_edge.config.loader import parse_config
from kelly_edge.errors import DeviceError
from kelly_edge.midi import messages as mm
from kelly_edge.midi.clock_out import CLOCK, START, STOP
from kelly_edge.midi.router import MidiRouter, Route, open_router, plan_routes, playing_config, voice_lanes
from kelly_edge.midi.rtmidi_sink import ScheduledSink
from tests.live.live_fakes import FakeOutput, wait_until

TWO_SYNTHS = """
midi: {port: "poly synth", clock_out: true, clock_out_ports: "poly"}
generator:
  chord: {program: 5}
  bass: {port: "bass synth", program: 38, bank: 130}
"""


def test_voices_naming_the_same_port_share_one_destination() -> None:
    routes = plan_routes(parse_config(TWO_SYNTHS))
    assert [(r.want, r.key, r.voices, r.channels, r.clock) for r in routes] == [
        ("poly synth", "midi.port", ["melody", "chord"], [0, 1], True),
        ("bass synth", "generator.bass.port", ["bass"], [2], False),
    ]
    assert routes[0].setup == [mm.program_change(1, 5)]
    assert routes[1].setup == [mm.control_change(2, 0, 1), mm.control_change(2, 32, 2), mm.program_change(2, 38)]
    # every voice on midi.port (the default): one destination, as the one-port box had
    (only,) = plan_routes(parse_config(""))
    assert only.voices == ["melody", "chord", "bass"] and only.primary and not only.clock


def test_the_clock_goes_to_the_listed_ports_or_every_port() -> None:
    every = plan_routes(parse_config(TWO_SYNTHS.replace('clock_out_ports: "poly"', 'clock_out_ports: ""')))
    assert [r.clock for r in every] == [True, True]
    # a listed port no voice plays to is opened for the clock alone (a drum machine that follows)
    drums = plan_routes(parse_config(TWO_SYNTHS.replace('clock_out_ports: "poly"', 'clock_out_ports: "BASS, drum"')))
    assert [(r.want, r.voices, r.clock, r.key) for r in drums] == [
        ("poly synth", ["melody", "chord"], False, "midi.port"),
        ("bass synth", ["bass"], True, "generator.bass.port"),
        ("drum", [], True, "midi.clock_out_ports"),
    ]
    # no clock out: midi.port is not opened when every voice has its own port
    own = parse_config("generator: {melody: {port: a}, chord: {port: b}, bass: {port: b}}")
    assert [(r.want, r.voices) for r in plan_routes(own)] == [("a", ["melody"]), ("b", ["chord", "bass"])]
    # unless something else (MIDI thru) goes there: midi.port, or a port of its own
    assert [(r.want, r.key) for r in plan_routes(own, also=("",))] == [("", "midi.port"), ("a", "generator.melody.port"),
                                                                         ("b", "generator.chord.port")]
    assert [r.want for r in plan_routes(own, also=("B", "keys"))] == ["a", "b", "keys"]


def test_two_synths_that_both_listen_on_channel_1_each_get_their_voice_on_it() -> None:
    """Melody and bass both on channel 1, on different synths: the bass plays on a lane of its own
    (the engine's config says so) and leaves the router on channel 1 to the bass synth only."""
    text = 'midi: {port: "poly synth"}\ngenerator:\n  melody: {channel: 1}\n  bass: {channel: 1, port: "bass synth"}\n'
    config = parse_config(text)
    lanes = voice_lanes(config)
    assert lanes["melody"] == 0 and lanes["bass"] not in (0, 1)  # 1 is the chord's (channel 2)
    played = playing_config(config)
    assert (played.generator.melody.channel, played.generator.bass.channel) == (1, lanes["bass"] + 1)
    assert playing_config(parse_config(TWO_SYNTHS)) is not None  # no conflict: nothing moved
    assert playing_config(parse_config(TWO_SYNTHS)).generator == parse_config(TWO_SYNTHS).generator
    rig = Rig(text)
    poly, bass = rig.outputs["poly synth"], rig.outputs["bass synth"]
    rig.router.start()
    try:
        t = rig.now() + 0.01
        rig.router.send(t, mm.note_on(0, 72, 90))  # melody
        rig.router.send(t, mm.note_on(lanes["bass"], 36, 90))  # bass, on its lane
        rig.router.send_now(mm.control_change(lanes["bass"], 7, 100))
        assert wait_until(lambda: mm.note_on(0, 72, 90) in poly.messages() and mm.note_on(0, 36, 90) in bass.messages(), 3)
    finally:
        rig.router.close()
    assert mm.note_on(0, 36, 90) not in poly.messages() and mm.note_on(0, 72, 90) not in bass.messages()
    assert mm.control_change(0, 7, 100) in bass.messages()
    assert {m[0] & 0x0F for m in bass.messages() if m[0] < 0xF0} == {0}  # the synth hears channel 1 only
    assert mm.note_off(0, 36) in bass.messages()  # its close released the bass note on the wire channel


def test_a_voice_naming_midi_port_outright_is_on_the_same_synth_as_one_that_leaves_it_empty() -> None:
    """Two voices on channel 1 of one synth, one saying ``port: ""`` and one naming midi.port: one
    destination, one lane, as when both leave the port empty (no spare channel is taken)."""
    text = 'midi: {port: "Poly Synth"}\ngenerator:\n  melody: {channel: 1}\n  bass: {channel: 1, port: "poly synth"}\n'
    config = parse_config(text)
    (route,) = plan_routes(config)
    assert route.voices == ["melody", "chord", "bass"]
    assert voice_lanes(config) == voice_lanes(parse_config(text.replace('port: "poly synth"', 'port: ""')))
    assert voice_lanes(config)["bass"] == 0
    assert route.is_for("") and route.is_for("POLY SYNTH") and not route.is_for("bass synth")
    other = plan_routes(parse_config(TWO_SYNTHS))[1]
    assert other.is_for("Bass Synth") and not other.is_for("")


class Rig:
    """A router over fake outputs, one per destination of ``config_text``, as the box builds it."""

    def __init__(self, config_text: str = TWO_SYNTHS, *, missing: tuple[str, ...] = (), wait: bool = False,
                 stop: threading.Event | None = None) -> None:
        self.base = time.monotonic()
        self.routes = plan_routes(parse_config(config_text))
        self.outputs: dict[str, FakeOutput] = {}

        def make_output(route: Route) -> FakeOutput:
            out = FakeOutput(route.want, key=route.key)
            out.plugged = route.want not in missing
            self.outputs[route.want] = out
            return out

        def make_sink(route: Route, output: Any, connected: bool) -> ScheduledSink:
            return ScheduledSink(output, to_wall=lambda t: self.base + t, latency_s=0.002, channels=route.channels,
                                 retry_s=0.05, setup=route.setup, connected=connected, label=route.label)

        self.router = open_router(self.routes, make_output, make_sink, wait=wait, stop=stop or threading.Event(),
                                  retry_s=0.05)

    def now(self) -> float:
        return time.monotonic() - self.base


def test_each_voice_reaches_only_its_synth_and_the_clock_only_the_listed_port() -> None:
    rig = Rig()
    router = rig.router
    assert isinstance(router, MidiRouter)
    poly, bass = rig.outputs["poly synth"], rig.outputs["bass synth"]
    router.start()
    try:
        t = rig.now() + 0.01
        router.send(t, START)
        for i, ch in enumerate((0, 1, 2)):  # melody, chord, bass
            router.send(t + 0.001 * i, mm.note_on(ch, 60 + i, 90))
            router.send(t + 0.001 * i, CLOCK)
        assert wait_until(lambda: len(poly.sent) >= 1 + 5 + 1 and len(bass.sent) >= 3 + 1, 3)
    finally:
        router.close()
    assert poly.messages()[:7] == [mm.program_change(1, 5), START, mm.note_on(0, 60, 90), CLOCK,
                                   mm.note_on(1, 61, 90), CLOCK, CLOCK]
    on_bass = bass.messages()
    assert on_bass[:4] == [mm.control_change(2, 0, 1), mm.control_change(2, 32, 2), mm.program_change(2, 38),
                           mm.note_on(2, 62, 90)]
    assert not any(m[0] >= 0xF0 for m in on_bass)  # no clock, Start or Stop where the list does not say
    assert {m[0] & 0x0F for m in on_bass if m[0] < 0xF0} == {2}
    assert {m[0] & 0x0F for m in poly.messages() if m[0] < 0xF0} == {0, 1}
    # closing panicked each port: its own sounding note off, CC123/CC120 on its own channels only
    assert mm.note_off(2, 62) in on_bass and mm.all_notes_off(2) in on_bass and mm.all_notes_off(0) not in on_bass
    assert mm.note_off(0, 60) in poly.messages() and mm.all_sound_off(1) in poly.messages()


def test_a_missing_synth_silences_its_voice_only_and_comes_back_notes_off_first(caplog) -> None:
    rig = Rig()
    router = rig.router
    poly, bass = rig.outputs["poly synth"], rig.outputs["bass synth"]
    router.start()
    stop = threading.Event()

    def play() -> None:  # the generator: a chord note and a bass note every 10 ms, each released
        k = 0
        while not stop.is_set():
            t = rig.now() + 0.01
            for ch in (1, 2):
                router.send(t, mm.note_on(ch, 40 + k % 20, 80))
                router.send(t + 0.005, mm.note_off(ch, 40 + k % 20))
            k += 1
            time.sleep(0.01)

    player = threading.Thread(target=play)
    caplog.set_level(logging.WARNING, logger="kelly_edge.midi.rtmidi_sink")
    player.start()
    try:
        assert wait_until(lambda: sum(mm.is_note_on(m) for m in bass.messages()) >= 5, 3)
        bass.plugged = False  # the bass synth is switched off mid-note
        assert wait_until(lambda: not router.voices()["bass"].state == "connected", 3)
        poly_at, bass_at = len(poly.sent), len(bass.sent)
        time.sleep(0.3)
        states = router.voices()
        assert states["bass"].state == "missing" and states["chord"].state == "connected"
        assert states["bass"].since_s > 0.2 and not router.connected
        assert len(bass.sent) == bass_at  # quiet while it is gone...
        during = [w for w, m in poly.sent[poly_at:] if mm.is_note_on(m)]
        assert len(during) >= 15  # ...while the chord voice plays on, without a gap
        assert max(b - a for a, b in zip(during, during[1:])) < 0.1
        bass.plugged = True
        assert wait_until(lambda: router.voices()["bass"].state == "connected", 3)
        assert wait_until(lambda: sum(mm.is_note_on(m) for m in bass.messages()[bass_at:]) >= 3, 3)
    finally:
        stop.set()
        player.join()
        router.close()
    back = bass.messages()[bass_at:]
    first_note = next(i for i, m in enumerate(back) if mm.is_note_on(m))
    head = back[:first_note]
    # notes off first (the note it was holding, CC123, CC120, CC64 0), then bank + program, then notes
    setup = [mm.control_change(2, 0, 1), mm.control_change(2, 32, 2), mm.program_change(2, 38)]
    assert head[-3:] == setup
    assert mm.all_notes_off(2) in head[:-3] and mm.all_sound_off(2) in head[:-3]
    lines = [r.getMessage() for r in caplog.records]
    assert sum("lost" in line for line in lines) == 1 and sum("is back" in line for line in lines) == 1, lines
    assert "'bass synth' (bass) lost; bass goes quiet" in next(line for line in lines if "lost" in line)


def test_a_port_that_matches_nothing_at_start_is_one_line_and_the_others_play(caplog) -> None:
    caplog.set_level(logging.WARNING)
    rig = Rig(missing=("bass synth",))
    router = rig.router
    assert router is not None
    poly, bass = rig.outputs["poly synth"], rig.outputs["bass synth"]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, lines
    assert "generator.bass.port 'bass synth'" in lines[0] and "bass stays quiet until it appears" in lines[0]
    assert "kelly-edge devices" in lines[0]
    assert router.voices()["bass"].state == "missing" and router.voices()["melody"].state == "connected"
    router.start()
    try:
        router.send(rig.now() + 0.01, mm.note_on(0, 60, 90))
        router.send(rig.now() + 0.01, mm.note_on(2, 40, 90))
        assert wait_until(lambda: mm.note_on(0, 60, 90) in poly.messages(), 3)
        assert bass.sent == [] and router.dropped >= 1
        bass.plugged = True  # plugged in late: found, set up, and playing
        assert wait_until(lambda: router.voices()["bass"].state == "connected", 3)
        router.send(rig.now() + 0.01, mm.note_on(2, 41, 90))
        assert wait_until(lambda: mm.note_on(2, 41, 90) in bass.messages(), 3)
    finally:
        router.close()
    found = [r.getMessage() for r in caplog.records if "found" in r.getMessage()]
    assert len(found) == 1 and "(bass)" in found[0]
    assert bass.messages().index(mm.program_change(2, 38)) < bass.messages().index(mm.note_on(2, 41, 90))


def test_no_port_at_all_is_the_first_error_or_a_wait(caplog) -> None:
    with pytest.raises(DeviceError, match="no MIDI output port matches midi.port 'poly synth'"):
        Rig(missing=("poly synth", "bass synth"))
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    caplog.set_level(logging.WARNING)
    assert Rig(missing=("poly synth", "bass synth"), wait=True, stop=stop).router is None
    assert sum("waiting for it" in r.getMessage() for r in caplog.records) == 1


def test_ports_report_each_destination_and_panic_reaches_every_port() -> None:
    rig = Rig()
    router = rig.router
    router.start()
    try:
        router.send(rig.now() + 0.005, mm.note_on(0, 60, 90))
        router.send(rig.now() + 0.005, mm.note_on(2, 40, 90))
        assert wait_until(lambda: router.sounding == 2, 3)
        ports = {p.want: p for p in router.ports()}
        assert ports["poly synth"].sounding == 1 and ports["bass synth"].sounding == 1
        assert ports["bass synth"].as_dict()["voices"] == ["bass"] and ports["poly synth"].clock
        router.panic()
        assert router.sounding == 0
        assert mm.note_off(0, 60) in rig.outputs["poly synth"].messages()
        assert mm.note_off(2, 40) in rig.outputs["bass synth"].messages()
        # what MIDI thru uses: the sink a voice plays on, or a configured port's
        assert router.sink_for_voice("bass") is router.sink_for_port("BASS SYNTH")
        assert router.sink_for_port("") is router.sink_for_voice("melody") is router.primary
        router.send_now(STOP)
        assert rig.outputs["poly synth"].messages()[-1] == STOP and STOP not in rig.outputs["bass synth"].messages()
    finally:
        router.close()
