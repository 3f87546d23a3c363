"""ScheduledSink: events leave at their scheduled wall time, in order; panic and hotplug silence."""

from __future__ import annotations

import logging
import time

import pytest

from kelly_edge.midi import messages as mm
from kelly_edge.midi.rtmidi_sink import ScheduledSink, choose_port, display_name
from kelly_edge.errors import DeviceError
from tests.live.live_fakes import FakeOutput


def _wait_for(cond, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


@pytest.fixture
def base() -> float:
    return time.monotonic()


def test_messages_leave_in_time_order_and_never_early(base: float) -> None:
    out = FakeOutput()
    sink = ScheduledSink(out, to_wall=lambda t: base + t, latency_s=0.002, trace=True)
    sink.start()
    try:
        # submitted out of order (two producers: generator and clock); equal times keep their order
        sink.send(0.08, mm.note_on(0, 60, 100))
        sink.send(0.05, b"\xf8")
        sink.send(0.08, mm.note_off(0, 60))
        sink.send(0.02, mm.control_change(0, 1, 10))
        assert _wait_for(lambda: len(out.sent) == 4)
    finally:
        sink.close()
    msgs = [m for _, m in out.sent[:4]]
    assert msgs == [mm.control_change(0, 1, 10), b"\xf8", mm.note_on(0, 60, 100), mm.note_off(0, 60)]
    assert sink.trace is not None
    for due, sent, _ in sink.trace:
        assert sent >= due  # the sender may be late (the machine is busy), never early
    for (wall, _), t in zip(out.sent, (0.02, 0.05, 0.08, 0.08)):
        assert wall >= base + t + 0.002
    stats = sink.lateness_ms()
    assert stats["count"] == 4 and stats["p50"] >= 0.0


def test_panic_drops_the_queue_and_silences_every_used_channel(base: float) -> None:
    out = FakeOutput()
    sink = ScheduledSink(out, to_wall=lambda t: base + t, channels=(5,))
    sink.start()
    try:
        sink.send(0.0, mm.note_on(2, 64, 90))
        assert _wait_for(lambda: len(out.sent) == 1)
        sink.send(30.0, mm.note_on(2, 67, 90))  # far in the future: must never play
        sink.panic()
        assert sink.queued == 0
        msgs = out.messages()
        assert mm.note_off(2, 64) in msgs
        for ch in (2, 5):
            assert mm.all_notes_off(ch) in msgs and mm.all_sound_off(ch) in msgs
        assert sink.sounding == 0
    finally:
        sink.close()
    assert mm.note_on(2, 67, 90) not in out.messages()
    assert out.closed


def test_close_is_idempotent_and_refuses_later_sends(base: float) -> None:
    out = FakeOutput()
    sink = ScheduledSink(out, to_wall=lambda t: base + t)
    sink.start()
    sink.close()
    sink.close()
    with pytest.raises(RuntimeError, match="after close"):
        sink.send(0.0, b"\xf8")


def test_a_lost_port_logs_once_and_is_silenced_when_it_returns(base: float, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="kelly_edge.midi.rtmidi_sink")
    out = FakeOutput()
    sink = ScheduledSink(out, to_wall=lambda t: base + t, retry_s=0.05)
    sink.start()
    try:
        sink.send(0.0, mm.note_on(1, 50, 80))
        assert _wait_for(lambda: len(out.sent) == 1)
        out.plugged = False
        assert _wait_for(lambda: not sink.connected)
        sink.send(0.0, mm.note_on(1, 52, 80))  # dropped while the port is gone
        assert _wait_for(lambda: sink.dropped >= 1)
        time.sleep(0.2)  # several watchdog rounds: still one line
        out.plugged = True
        assert _wait_for(lambda: sink.connected)
        assert _wait_for(lambda: mm.all_sound_off(1) in out.messages())
    finally:
        sink.close()
    lines = [r.getMessage() for r in caplog.records]
    assert sum("lost" in line for line in lines) == 1
    assert sum("back" in line for line in lines) == 1
    msgs = out.messages()
    assert mm.note_on(1, 52, 80) not in msgs
    assert mm.note_off(1, 50) in msgs  # the note sounding when the cable went got its note-off
    assert mm.all_notes_off(1) in msgs
    assert out.opens == 1  # reopened once (the first open is the caller's)


def test_port_names_match_by_substring_without_alsa_numbers() -> None:
    ports = ["Midi Through:Midi Through Port-0 14:0", "UM-ONE:UM-ONE MIDI 1 20:0", "kelly-edge:out 128:0"]
    assert display_name(ports[1]) == "UM-ONE:UM-ONE MIDI 1"
    assert choose_port(ports, "um-one", what="output", key="midi.port", client_name="kelly-edge") == (1, ports[1])
    assert choose_port(ports, "", what="output", key="midi.port", client_name="kelly-edge")[0] == 1
    with pytest.raises(DeviceError, match=r"no MIDI output port matches midi.port 'volca'.*UM-ONE"):
        choose_port(ports, "volca", what="output", key="midi.port", client_name="kelly-edge")
    with pytest.raises(DeviceError, match="no MIDI output ports found"):
        choose_port(["kelly-edge:out"], "", what="output", key="midi.port", client_name="kelly-edge")
    with pytest.raises(DeviceError, match="only 'Midi Through"):
        choose_port(ports[:1], "", what="output", key="midi.port", client_name="kelly-edge")


def test_the_voices_sounds_are_selected_at_start_and_after_every_reconnection(base: float) -> None:
    from kelly_edge.config.loader import parse_config
    from kelly_edge.midi.router import plan_routes

    config = parse_config("generator:\n  bass:\n    program: 38\n    bank: 130\n  chord:\n    program: 5\n")
    (route,) = plan_routes(config)  # every voice on midi.port
    setup = route.setup
    assert setup == [mm.program_change(1, 5), mm.control_change(2, 0, 1), mm.control_change(2, 32, 2),
                     mm.program_change(2, 38)]  # chord (channel 2), then bass (channel 3) with its bank
    out = FakeOutput()
    sink = ScheduledSink(out, to_wall=lambda t: base + t, latency_s=0.002, channels=(1, 2), retry_s=0.05,
                         setup=setup)
    sink.start()
    try:
        assert out.messages()[: len(setup)] == setup  # before anything else
        sink.send(0.0, mm.note_on(1, 50, 80))
        assert _wait_for(lambda: len(out.sent) == len(setup) + 1)
        out.plugged = False  # the synth switched off and on again: its program is lost
        assert _wait_for(lambda: not sink.connected)
        mark = len(out.sent)
        out.plugged = True
        assert _wait_for(lambda: sink.connected and len(out.sent) >= mark + len(setup))
        after = out.messages()[mark:]
        assert after[-len(setup):] == setup  # the programs again,
        assert after.index(mm.all_notes_off(1)) < after.index(setup[0])  # after the notes off
    finally:
        sink.close()
