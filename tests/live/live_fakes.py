"""Fakes that behave like the devices: an audio capture that plays a recording into the ring from
its own thread at real-time pace (as a callback would), and a MIDI output that records what it
was sent and when, and can be unplugged and plugged back; and :class:`LoopRig`, the live loop
wired to them."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from kelly_edge.audio.ring import FrameRing
from kelly_edge.audio.wav import WavReader
from kelly_edge.config.loader import default_config
from kelly_edge.engine.engine import Engine
from kelly_edge.errors import DeviceError
from kelly_edge.live.loop import LiveLoop, NoteGate
from kelly_edge.live.timemap import TimeMap
from kelly_edge.midi import messages as mm
from kelly_edge.midi.clock_out import ClockOut
from kelly_edge.midi.rtmidi_sink import ScheduledSink
from kelly_edge.tempo.source import ConfigTempo

DEMO = Path(__file__).resolve().parents[2] / "kelly_edge" / "data" / "demo.wav"


def demo_samples(sample_rate: int, seconds: float | None = None) -> np.ndarray:
    """The bundled demo recording, mono float32, resampled (linear interpolation) to ``sample_rate``."""
    with WavReader(DEMO) as reader:
        x = reader.read(reader.info.frames)
        sr = reader.sample_rate
    x = np.asarray(x, dtype=np.float64)
    if seconds is not None:
        x = x[: int(seconds * sr)]
    n = int(round(x.size * sample_rate / sr))
    t = np.arange(n) * (sr / sample_rate)
    return np.interp(t, np.arange(x.size), x).astype(np.float32)


class FakeCapture:
    """Writes ``samples`` into ``ring`` in ``block``-frame callbacks paced by the wall clock.

    ``vanish_after_s``: stop delivering after this much audio and report ``alive`` False (an
    unplugged interface). After the samples run out it keeps delivering silence.
    """

    def __init__(self, ring: FrameRing, samples: np.ndarray, *, sample_rate: int, block: int = 480,
                 vanish_after_s: float | None = None, name: str = "fake input") -> None:
        self.ring = ring
        self.samples = samples
        self.sample_rate = sample_rate
        self.channels = 1
        self.block = block
        self.vanish_after = None if vanish_after_s is None else int(vanish_after_s * sample_rate)
        self.name = name
        self.overflows = 0
        self.started = False
        self.closed = False
        self._alive = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._silence = np.zeros(block, dtype=np.float32)

    @property
    def alive(self) -> bool:
        return self._alive and not self.closed

    def start(self) -> None:
        self.started = True
        self._thread.start()

    def _run(self) -> None:
        t0 = time.monotonic()
        pos = 0
        period = self.block / self.sample_rate
        k = 0
        while not self._stop.is_set():
            if self.vanish_after is not None and pos >= self.vanish_after:
                self._alive = False
                return
            chunk = self.samples[pos : pos + self.block]
            if chunk.size < self.block:
                chunk = self._silence
            self.ring.write_interleaved(chunk)
            pos += self.block
            k += 1
            delay = t0 + k * period - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)

    def maintain(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True
        self._stop.set()
        if self.started:
            self._thread.join(timeout=2.0)


class FakeOutput:
    """A MIDI output that records ``(monotonic time, message)``; ``plugged`` False = unplugged."""

    def __init__(self, name: str = "fake synth", key: str = "midi.port") -> None:
        self.name = name
        self.key = key  # the config key naming the port, as the real outputs take it
        self.sent: list[tuple[float, bytes]] = []
        self.plugged = True
        self.opens = 0
        self.closed = False
        self._lock = threading.Lock()

    def open(self) -> None:
        if not self.plugged:
            raise DeviceError(f"no MIDI output port matches {self.key} {self.name!r}")
        self.opens += 1

    def present(self) -> bool:
        return self.plugged

    def send(self, message: bytes) -> None:
        if not self.plugged:
            raise OSError("port gone")
        with self._lock:
            self.sent.append((time.monotonic(), bytes(message)))

    def reopen(self) -> None:
        self.open()

    def close(self) -> None:
        self.closed = True

    def messages(self) -> list[bytes]:
        with self._lock:
            return [m for _, m in self.sent]


def synth_state(messages: list[bytes]) -> tuple[set[tuple[int, int]], list[str]]:
    """What still sounds on a synth that received ``messages``, and the problems on the way (a
    note-on of a sounding note). CC123 / CC120 release a channel."""
    sounding: set[tuple[int, int]] = set()
    problems = []
    for m in messages:
        if mm.is_note_on(m):
            key = (m[0] & 0x0F, m[1])
            if key in sounding:
                problems.append(f"note-on of sounding {key}")
            sounding.add(key)
        elif mm.is_note_off(m):
            sounding.discard((m[0] & 0x0F, m[1]))
        elif len(m) == 3 and m[0] & 0xF0 == 0xB0 and m[1] in (mm.CC_ALL_NOTES_OFF, mm.CC_ALL_SOUND_OFF):
            ch = m[0] & 0x0F
            sounding = {k for k in sounding if k[0] != ch}
    return sounding, problems


def wait_until(cond: Callable[[], object], timeout: float, step: float = 0.02) -> bool:
    """Poll ``cond`` until it is true or ``timeout`` seconds passed; its last value as a bool."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


class LoopRig:
    """A LiveLoop wired to fakes, as ``live_main`` wires the real devices: the demo (``seconds`` of
    it, at ``SR``) played into the ring by a :class:`FakeCapture` that vanishes after
    ``vanish_after_s``, and a :class:`FakeOutput` behind a ScheduledSink (watchdog every
    ``sink_retry_s``). After a loss the input refuses ``refuse_reopens`` reopens. ``clock_out``:
    MIDI clock out from the start; ``trace``: the sink keeps every message's due and sent times."""

    SR = 48000

    def __init__(self, *, seconds: float, vanish_after_s: float | None = None, refuse_reopens: int = 2,
                 clock_out: bool = False, trace: bool = False, sink_retry_s: float = 1.5) -> None:
        self.config = default_config()
        self.samples = demo_samples(self.SR, seconds)
        self.ring = FrameRing(2 * self.SR)
        self.output = FakeOutput()
        self.time_map = TimeMap(time.monotonic())
        self.sink = ScheduledSink(self.output, to_wall=self.time_map.to_wall, latency_s=0.005, channels=(0, 1, 2),
                                  retry_s=sink_retry_s, trace=trace)
        self.gate = NoteGate(self.sink)
        self.engine = Engine(self.config, self.gate, sample_rate=self.SR)
        self.captures: list[FakeCapture] = []
        self.refuse = refuse_reopens
        first = self._capture(vanish_after_s=vanish_after_s)
        self.clock = ClockOut(self.sink, self.engine.grid) if clock_out else None
        self.loop = LiveLoop(
            self.engine, self.sink, ring=self.ring, capture=first, open_capture=self.reopen, tempo=ConfigTempo(),
            time_map=self.time_map, clock_out=self.clock, gate=self.gate, retry_s=0.2, stall_s=0.15,
            status_every_s=0.5,
        )
        self.time_map.offset = time.monotonic()  # the loop sends Start on its first hop, as the CLI's does
        self.sink.start()

    def _capture(self, **kw: object) -> FakeCapture:
        cap = FakeCapture(self.ring, self.samples, sample_rate=self.SR, **kw)  # type: ignore[arg-type]
        self.captures.append(cap)
        return cap

    def reopen(self, ring: FrameRing) -> FakeCapture:
        if self.refuse > 0:  # still unplugged for the first retries
            self.refuse -= 1
            raise DeviceError("no audio input matches audio.device 'fake'")
        return self._capture()

    def run(self, seconds: float) -> int:
        """Run the loop on this thread for ``seconds``; its exit code."""
        return self.loop.run(threading.Event(), duration_s=seconds)

    def start(self) -> tuple[threading.Event, threading.Thread, list[int]]:
        """Run the loop on a thread until the returned event is set; its exit code lands in the list."""
        stop = threading.Event()
        codes: list[int] = []
        runner = threading.Thread(target=lambda: codes.append(self.loop.run(stop)))
        runner.start()
        return stop, runner, codes
