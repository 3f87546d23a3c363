"""MIDI thru through a real JACK server (dummy driver): a JACK-Client "controller" plays notes
(some in running status), a sysex cut across three JACK events with a clock byte inside it,
MIDI clock and active sensing into the box's thru input while the box plays its own notes; a
frame-accurate receiver on the output checks what a synth would get. The JACK path is the box's
own client (``midi.backend: jack``: thru read and merged in its process callback); the rtmidi path
(what ``midi.backend: alsa`` runs) goes through python-rtmidi's JACK API, as this machine has no
ALSA sequencer. The live box through the CLI is at the end."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kelly_edge.midi import messages as mm
from kelly_edge.midi.jack_sink import JackMidiOutput, JackTimeline, frame_delta
from kelly_edge.midi.rtmidi_sink import RtMidiOutput, ScheduledSink
from kelly_edge.midi.thru import (
    JackThruInput,
    MidiParser,
    MidiThru,
    ThruFilter,
    ThruProcessor,
    as_bytes,
    rtmidi_thru_input,
)
from tests.cli_box import Box
from tests.live.jack_rig import Keys, Player, Synth
from tests.live.live_fakes import demo_samples, synth_state, wait_until

pytestmark = pytest.mark.jack

SYSEX_HEAD = b"\xf0\x7e\x00" + bytes(i % 128 for i in range(200))
SYSEX_MID = bytes((i * 7) % 128 for i in range(150))
SYSEX_TAIL = bytes((i * 3) % 128 for i in range(50)) + b"\xf7"
SYSEX = SYSEX_HEAD + SYSEX_MID + SYSEX_TAIL


@pytest.fixture
def keys(jack_server: Any) -> Any:
    k = Keys()
    yield k
    k.close()


def _whole(message: bytes) -> bool:
    """One complete MIDI message, nothing more or less."""
    out: list[bytes] = []
    p = MidiParser()
    p.feed(message, lambda m: out.append(bytes(m)))
    return out == [message] and p.garbage == 0


def _phrase(keys: Keys) -> None:
    """What the controller plays: running status, a sysex over three cycles with a clock byte
    inside, clock and active sensing between, and notes released (nothing left held)."""
    keys.play_cycles([
        [(10, b"\xfa"), (20, b"\xf8"), (100, b"\x90\x3c\x64"), (240, b"\x3e\x50"), (300, b"\xfe")],
        [(0, SYSEX_HEAD), (200, b"\xf8")],
        [(50, SYSEX_MID[:70] + b"\xf8" + SYSEX_MID[70:])],
        [(5, SYSEX_TAIL), (6, b"\xb0\x40\x7f"), (400, b"\xf8")],
        [(0, b"\x80\x3c\x00"), (1, b"\x90\x3e\x00"), (2, b"\xb0\x40\x00"), (3, b"\xfc")],
    ])


def _box_notes(sink: ScheduledSink, start: float, until: float, now) -> int:
    """The box's own notes on channel 1 every 4 ms, fed a few hops ahead as the live loop does."""
    t, n = start, 0
    while t < until:
        while t < min(now() + 0.03, until):
            sink.send(t, mm.note_on(0, 40 + n % 20, 90))
            sink.send(t + 0.002, mm.note_off(0, 40 + n % 20))
            t += 0.004
            n += 1
        time.sleep(0.01)
    return n


def _check_phrase(msgs: list[bytes], channel: int) -> None:
    thru = [m for m in msgs if (len(m) == 3 and m[0] & 0x0F == channel and m[0] < 0xF0) or m[0] == 0xF0]
    on, off, cc = 0x90 | channel, 0x80 | channel, 0xB0 | channel
    assert thru == [bytes([on, 0x3C, 0x64]), bytes([on, 0x3E, 0x50]), SYSEX, bytes([cc, 0x40, 0x7F]),
                    bytes([off, 0x3C, 0]), bytes([on, 0x3E, 0]), bytes([cc, 0x40, 0])], thru
    assert not any(m[0] in (0xF8, 0xFA, 0xFC, 0xFE) for m in msgs)  # clock, transport, sensing: not asked
    assert all(_whole(m) for m in msgs)  # every event one whole message: nothing interleaved


def _timing_notes(n: int, period: int) -> list[list[tuple[int, bytes]]]:
    """``n`` unique note-ons (and their note-offs) at scattered offsets, one cycle apart."""
    rng = np.random.default_rng(3)
    cycles = []
    for k in range(n):
        a, b = sorted(int(x) for x in rng.integers(0, period, 2))
        cycles.append([(a, bytes([0x90, 90 + k % 24, 1 + k % 100])), (b, bytes([0x80, 90 + k % 24, 0]))])
        cycles.append([])
    return cycles


def _thru_delay_ms(keys: Keys, synth: Synth, channel: int, n: int) -> dict[str, float]:
    """Thru latency: each timing note-on's JACK frame at the controller -> its frame at the receiver."""
    sent = {m: f for f, m in keys.sent if mm.is_note_on(m) and m[1] >= 90}  # each one unique
    got: dict[bytes, int] = {}
    for f, m in synth.framed():
        if mm.is_note_on(m) and m[0] & 0x0F == channel and m[1] >= 90:
            got.setdefault(bytes([m[0] & 0xF0, m[1], m[2]]), f)
    delays = np.array([frame_delta(got[m], f) for m, f in sent.items() if m in got], dtype=np.float64)
    assert len(sent) == n and delays.size >= 0.95 * n, (len(sent), delays.size)
    ms = delays * 1000.0 / synth.rate
    return {"mean": round(float(ms.mean()), 4), "std": round(float(ms.std()), 4),
            "p99": round(float(np.percentile(ms, 99)), 4), "max": round(float(ms.max()), 4),
            "events": int(ms.size), "load_1min": round(os.getloadavg()[0], 2)}


def _jack_box(thru_filter: ThruFilter) -> tuple[JackMidiOutput, ScheduledSink, MidiThru, int]:
    proc = ThruProcessor(thru_filter)
    out = JackMidiOutput(port="kelly-test-synth", client_name="kelly-test-box-midi", thru=proc,
                         thru_port="kelly-test-keys")
    out.open()
    timeline = JackTimeline(out, to_wall=lambda t: t, latency_s=0.0)
    anchor = out.frame_now()
    timeline.follow(0.0, anchor)
    sink = ScheduledSink(out, to_wall=lambda t: t, timeline=timeline, retry_s=0.2)
    thru = MidiThru(proc, JackThruInput(out), sink, retry_s=0.2)
    sink.start()
    thru.start()
    return out, sink, thru, anchor


# on a loaded machine a client can miss a JACK cycle (an xrun): one more try, as the other JACK timing tests
@pytest.mark.flaky(reruns=1)
def test_jack_thru_merges_the_controller_with_the_box_whole_and_releases_on_panic_and_close(
        synth: Synth, keys: Keys, measurements: dict[str, Any]) -> None:
    out, sink, thru, anchor = _jack_box(ThruFilter(channel=4))
    try:
        assert thru.connected
        rate = float(out.rate)
        now = lambda: frame_delta(out.frame_now(), anchor) / rate  # noqa: E731
        feeder_n: list[int] = []
        feeder = threading.Thread(target=lambda: feeder_n.append(_box_notes(sink, 0.05, 1.5, now)))
        feeder.start()
        time.sleep(0.3)
        _phrase(keys)
        cycles = _timing_notes(150, out.period)  # then 150 notes at scattered offsets, to time the thru
        keys.play_cycles(cycles)
        feeder.join()
        assert wait_until(lambda: keys.idle, 10)
        time.sleep(0.1)
        msgs = [m for _, m in synth.framed()]
        _check_phrase([m for m in msgs if not (len(m) == 3 and m[0] < 0xF0 and m[1] >= 90)], 4)
        own = [m for m in msgs if m[0] & 0x0F == 0 and m[0] & 0xE0 == 0x80]
        assert len(own) == 2 * feeder_n[0] and synth_state(own)[0] == set()  # the box's own, all of them

        figures = _thru_delay_ms(keys, synth, 4, len(cycles) // 2)
        measurements["jack thru: controller event -> synth (ms, JACK frames)"] = figures
        period_ms = out.period * 1000.0 / rate
        assert figures["std"] <= 0.05 and figures["max"] <= period_ms + 0.01, figures  # no jitter, <= a period

        # a panic while the controller holds a note releases it
        synth.clear()
        keys.play((10, b"\x90\x43\x70"))
        assert wait_until(lambda: b"\x94\x43\x70" in [m for _, m in synth.messages()], 2)
        sink.panic()
        assert wait_until(lambda: mm.note_off(4, 0x43) in [m for _, m in synth.messages()], 2)
        # and the shutdown too: thru first, then the sink's last panic
        keys.play((10, b"\x90\x45\x70"))
        assert wait_until(lambda: b"\x94\x45\x70" in [m for _, m in synth.messages()], 2)
    finally:
        thru.close()
        sink.close()
    time.sleep(0.1)
    assert mm.note_off(4, 0x45) in [m for _, m in synth.messages()]
    assert synth_state([m for _, m in synth.messages()])[0] == set()
    assert out.thru_lost == 0


def test_jack_thru_passes_clock_when_asked_and_follows_a_replugged_controller(synth: Synth, keys: Keys) -> None:
    out, sink, thru, _ = _jack_box(ThruFilter(clock=True, active_sensing=True))
    try:
        keys.play((0, b"\xfa"), (10, b"\xf8"), (20, b"\xfe"), (30, b"\x91\x30\x40"))
        assert wait_until(lambda: b"\x91\x30\x40" in [m for _, m in synth.messages()], 2)
        assert [m for _, m in synth.messages()][:4] == [b"\xfa", b"\xf8", b"\xfe", b"\x91\x30\x40"]
        keys.unplug()  # the controller goes while its key is down: the note is released
        assert wait_until(lambda: not thru.connected, 3)
        assert wait_until(lambda: mm.note_off(1, 0x30) in [m for _, m in synth.messages()], 2)
        keys.plug()
        assert wait_until(lambda: thru.connected, 3)
        keys.play((0, b"\x91\x32\x40"), (5, b"\x81\x32\x00"))
        assert wait_until(lambda: b"\x81\x32\x00" in [m for _, m in synth.messages()], 2)
        assert thru.status()["losses"] == 1
        # a 3000-byte patch dump cut across two cycles arrives as one event
        dump = b"\xf0\x42\x30" + bytes(i % 128 for i in range(3000)) + b"\xf7"
        keys.play_cycles([[(0, dump[:1500])], [(7, dump[1500:])]])
        assert wait_until(lambda: dump in [m for _, m in synth.messages()], 2)
        assert thru.status()["not_passed"] == 0
    finally:
        thru.close()
        sink.close()


# on a loaded machine a client can miss a JACK cycle (an xrun): one more try, as the other JACK timing tests
@pytest.mark.flaky(reruns=1)
def test_rtmidi_thru_through_python_rtmidi_jack_api(synth: Synth, keys: Keys, measurements: dict[str, Any]) -> None:
    """The rtmidi path (what runs on ALSA), through python-rtmidi's JACK API here."""
    output = RtMidiOutput(port="kelly-test-synth", api="jack", client_name="kelly-test-rt")
    output.open()
    base = time.monotonic()
    sink = ScheduledSink(output, to_wall=lambda t: base + t, latency_s=0.005, retry_s=0.2)
    proc = ThruProcessor(ThruFilter(channel=4))
    source = rtmidi_thru_input(proc, lambda m, s: sink.send_through(as_bytes(m, s)), port="kelly-test-keys",
                             api="jack", client_name="kelly-test-rt-thru")
    thru = MidiThru(proc, source, sink, retry_s=0.2)
    sink.start()
    thru.start()
    try:
        assert thru.connected
        time.sleep(0.2)
        feeder_n: list[int] = []
        now = lambda: time.monotonic() - base  # noqa: E731
        start = now() + 0.05
        feeder = threading.Thread(target=lambda: feeder_n.append(_box_notes(sink, start, start + 1.0, now)))
        feeder.start()
        time.sleep(0.2)
        _phrase(keys)
        feeder.join()
        assert wait_until(lambda: keys.idle, 5)
        time.sleep(0.2)
        msgs = [m for _, m in synth.messages()]
        _check_phrase(msgs, 4)
        own = [m for m in msgs if m[0] & 0x0F == 0 and m[0] & 0xE0 == 0x80]
        assert len(own) == 2 * feeder_n[0]
        cycles = _timing_notes(60, 480)
        keys.play_cycles(cycles)
        assert wait_until(lambda: keys.idle, 5)
        time.sleep(0.2)
        figures = _thru_delay_ms(keys, synth, 4, 60)
        measurements["rtmidi (python-rtmidi JACK API) thru: controller event -> synth (ms, JACK frames)"] = figures
        assert figures["max"] <= 50.0, figures
        synth.clear()
        keys.play((10, b"\x90\x43\x70"))
        assert wait_until(lambda: b"\x94\x43\x70" in [m for _, m in synth.messages()], 2)
        sink.panic()
        assert wait_until(lambda: mm.note_off(4, 0x43) in [m for _, m in synth.messages()], 2)
        keys.play((10, b"\x90\x45\x70"))
        assert wait_until(lambda: b"\x94\x45\x70" in [m for _, m in synth.messages()], 2)
    finally:
        thru.close()
        sink.close()
    time.sleep(0.2)
    assert mm.note_off(4, 0x45) in [m for _, m in synth.messages()]


def _config(tmp_path: Path, **midi: Any) -> Path:
    config = {
        "audio": {"backend": "jack", "device": "kelly-test-player:out", "sample_rate": 48000},
        "midi": {"backend": "jack", "port": "kelly-test-synth", "thru_port": "kelly-test-keys", **midi},
        "realtime": {"priority": 50},
        "tempo": {"bpm": 120.0, "source": "config"},
        "state": {"calibration": str(tmp_path / "calibration.json")},
    }
    path = tmp_path / "box.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


@pytest.mark.slow
# on a loaded machine a client can miss a JACK cycle (an xrun): one more try, as the other JACK timing tests
@pytest.mark.flaky(reruns=1)
def test_live_box_passes_the_controller_through_and_releases_it_on_sigterm(
        tmp_path: Path, synth: Synth, keys: Keys, jack_server: Any, measurements: dict[str, Any]) -> None:
    player = Player()
    report = tmp_path / "report.json"
    box = Box(_config(tmp_path, thru_channel=5, clock_out=False), report=report)
    try:
        assert wait_until(lambda: box.has("listening") or box.proc.poll() is not None, 60), box.lines
        assert box.proc.poll() is None, box.lines
        player.play(demo_samples(48000, 6.0))
        time.sleep(2.0)
        _phrase(keys)
        keys.play_cycles(_timing_notes(100, 480))
        assert wait_until(lambda: keys.idle, 10)
        time.sleep(0.1)
        thru_ms = _thru_delay_ms(keys, synth, 4, 100)
        keys.play((100, b"\x90\x48\x60"))  # held through the SIGTERM
        assert wait_until(lambda: b"\x94\x48\x60" in [m for _, m in synth.messages()], 3), box.lines
        code = box.terminate()
    finally:
        if box.proc.poll() is None:
            box.proc.kill()
        player.close()
    time.sleep(0.2)
    assert code == 0, box.lines
    assert not any("Traceback" in line for line in box.lines), box.lines
    msgs = [m for _, m in synth.messages()]
    held = msgs.index(b"\x94\x48\x60")
    assert mm.note_off(4, 0x48) in msgs[held:]
    _check_phrase([m for m in msgs[:held] if not (len(m) == 3 and m[0] < 0xF0 and m[1] >= 90)], 4)
    measurements["live box, jack thru: controller event -> synth (ms, JACK frames)"] = thru_ms
    assert thru_ms["std"] <= 0.05 and thru_ms["max"] <= 10.01, thru_ms
    assert any(mm.is_note_on(m) and m[0] & 0x0F != 4 for m in msgs)  # the box played its own too
    assert synth_state(msgs)[0] == set()
    live = json.loads(report.read_text())["live"]
    assert live["midi_thru"]["passed"] >= 8 + 200 and live["midi_thru"]["filtered"] == 7, live["midi_thru"]


def test_live_box_with_a_missing_controller_says_so_once_and_plays(tmp_path: Path, synth: Synth,
                                                                  jack_server: Any) -> None:
    player = Player()
    box = Box(_config(tmp_path, thru_port="no-such-keyboard"), duration=4.0)
    try:
        assert wait_until(lambda: box.has("listening") or box.proc.poll() is not None, 60), box.lines
        player.play(demo_samples(48000, 3.0))
        code = box.wait(30)
    finally:
        if box.proc.poll() is None:
            box.proc.kill()
        player.close()
    assert code == 0, box.lines
    lines = [line for line in box.lines if "midi.thru_port" in line]
    assert len(lines) == 1 and "no-such-keyboard" in lines[0] and "kelly-edge devices" in lines[0], box.lines
    assert any(mm.is_note_on(m) for _, m in synth.messages())


@pytest.mark.slow
def test_thru_comes_back_after_jackd_is_killed_and_restarted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The restart test's fixed server, 5 times: the box's new JACK client gets its thru port
    connected to the controller again (when it is opened, or by the thru watchdog on the JACK owner
    thread; which one comes first varies, so the log lines are not counted) without a crash."""
    from tests.live.test_live_jack_restart import SERVER, Jackd, _drop

    monkeypatch.setenv("JACK_DEFAULT_SERVER", SERVER)
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    server = Jackd(tmp_path / "jackd.log")
    server.start()
    player, synth, keys = Player(), Synth(), Keys()
    audio = np.tile(demo_samples(48000, 8.0), 3)
    player.play(audio)
    box = Box(_config(tmp_path, thru_channel=5))
    try:
        assert wait_until(lambda: box.has("listening") or box.proc.poll() is not None, 60), box.lines
        for restart in range(6):
            if restart:
                server.kill()
                for client in (player, synth, keys):
                    _drop(client._client)
                time.sleep(0.3)
                server.start()
                player, synth, keys = Player(), Synth(), Keys()
                player.play(audio)
            note = bytes([0x90, 0x30 + restart, 0x40])

            def passed() -> bool:
                if keys.idle:
                    keys.play((0, note), (10, bytes([0x80, note[1], 0])))
                return bytes([0x94, note[1], 0x40]) in [m for _, m in synth.messages()] or box.proc.poll() is not None

            assert wait_until(passed, 30, step=0.1), (restart, box.lines[-10:])
            assert box.proc.poll() is None, (restart, "\n".join(box.lines[-40:]))
        code = box.terminate()
    finally:
        if box.proc.poll() is None:
            box.proc.kill()
        for client in (player, synth, keys):
            _drop(client._client)
        server.kill()
    assert code == 0, box.lines[-20:]
    assert not any("Traceback" in line or "Fatal" in line for line in box.lines), box.lines
