"""Real clients around a real box on a JACK server: a player that plays a recording into the box's
audio input in real time and a "synth" MIDI input port that receives what the box plays. The box
itself runs as a separate process: :class:`tests.cli_box.Box`."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np


def _close(client: Any) -> None:
    """Deactivate (fails once the server died) and always close: a client left to the garbage
    collector is closed by JACK-Client's ``__del__`` on whatever thread collects it, after its
    callbacks may already be freed while libjack's threads still call them (a segfault)."""
    import jack

    try:
        client.deactivate()
    except jack.JackError:
        pass
    finally:
        client.close()


class Player:
    """A JACK client with one output port ``<name>:out``; :meth:`play` queues samples from the next cycle.

    ``first_sound_frame``: the JACK frame of the first sample above ``threshold`` (when that sound
    entered the JACK graph).
    """

    def __init__(self, name: str = "kelly-test-player", threshold: float = 0.01) -> None:
        import jack

        self._client = jack.Client(name, no_start_server=True)
        self.name = self._client.name
        self._port = self._client.outports.register("out")
        self.port_name = self._port.name
        self._samples = np.zeros(0, dtype=np.float32)
        self._pos = 0
        self._threshold = threshold
        self.first_sound_frame: int | None = None
        self._client.set_process_callback(self._process)
        self._client.activate()

    def _process(self, frames: int) -> None:
        buf = self._port.get_array()
        chunk = self._samples[self._pos : self._pos + frames]
        buf[: chunk.size] = chunk
        buf[chunk.size :] = 0.0
        if self.first_sound_frame is None and chunk.size and float(np.max(np.abs(chunk))) > self._threshold:
            loud = int(np.argmax(np.abs(chunk) > self._threshold))
            self.first_sound_frame = self._client.last_frame_time + loud
        self._pos += chunk.size

    def play(self, samples: np.ndarray) -> None:
        self._pos = 0
        self._samples = np.ascontiguousarray(samples, dtype=np.float32)

    @property
    def done(self) -> bool:
        return self._pos >= self._samples.size

    def restart_port(self) -> None:
        """The player's port disappears and comes back (a client restarted): connections are lost."""
        self._port.unregister()
        self._port = self._client.outports.register("out")

    def connections(self) -> list[str]:
        return [p.name for p in self._client.get_all_connections(self._port)]

    def connect(self, destination: str) -> None:
        self._client.connect(self.port_name, destination)

    def ports(self, pattern: str, **kw: Any) -> list[str]:
        return [p.name for p in self._client.get_ports(pattern, **kw)]

    def close(self) -> None:
        _close(self._client)


class Synth:
    """A JACK MIDI input port ``<client>:in`` that records ``(time.monotonic(), message)`` and, frame
    accurately, the JACK frame each message arrived at (``last_frame_time + offset``: the cycle's
    start plus the event's offset, not the callback's wake-up time); the port can be unregistered
    (the cable pulled) and registered again under the same name.

    A JACK-Client client rather than python-rtmidi: python-rtmidi holds the GIL while it creates or
    deletes its JACK client, which would stall the player's callback in this same process.
    """

    def __init__(self, client_name: str = "kelly-test-synth") -> None:
        import jack

        self._client = jack.Client(client_name, no_start_server=True)
        self.received: list[tuple[float, bytes]] = []
        self.frames: list[int] = []  # JACK frame of each received message, parallel to ``received``
        self._lock = threading.Lock()
        self._port: Any = None
        self._rate = float(self._client.samplerate)
        self._client.set_process_callback(self._process)
        self._client.activate()
        self.open()

    def _process(self, frames: int) -> None:
        port = self._port
        if port is None:
            return
        now = time.monotonic()
        start = self._client.last_frame_time
        for offset, data in port.incoming_midi_events():
            with self._lock:
                self.received.append((now + offset / self._rate, bytes(data)))
                self.frames.append(start + offset)

    def open(self) -> None:
        self._port = self._client.midi_inports.register("in")

    def close_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            port.unregister()

    def messages(self) -> list[tuple[float, bytes]]:
        with self._lock:
            return list(self.received)

    def clear(self) -> None:
        with self._lock:
            self.received.clear()
            self.frames.clear()

    def framed(self) -> list[tuple[int, bytes]]:
        """``(JACK frame, message)`` of everything received."""
        with self._lock:
            return [(f, m) for f, (_, m) in zip(self.frames, self.received)]

    @property
    def rate(self) -> float:
        return self._rate

    def frame_now(self) -> int:
        """JACK's current frame (to mark a moment on the same clock as :meth:`framed`)."""
        return int(self._client.frame_time)

    def close(self) -> None:
        try:
            self.close_port()
        finally:
            _close(self._client)


class ClockSender:
    """A JACK MIDI output port ``kelly-test-clock:out`` sending MIDI clock at ``bpm``, sample-accurate
    (each tick at its frame offset inside the period), with Start / Stop / Continue on request."""

    def __init__(self, bpm: float, client_name: str = "kelly-test-clock") -> None:
        import jack

        self._client = jack.Client(client_name, no_start_server=True)
        self._port = self._client.midi_outports.register("out")
        self.port_name = self._port.name
        self._frames_per_tick = self._client.samplerate * 60.0 / (bpm * 24)
        self._next = 0.0  # frames until the next tick, counted from the start of the coming period
        self._running = False
        self._pending: list[bytes] = []
        self._client.set_process_callback(self._process)
        self._client.activate()

    def _process(self, frames: int) -> None:
        self._port.clear_buffer()
        while self._pending:
            self._port.write_midi_event(0, self._pending.pop(0))
        if not self._running:
            return
        while self._next < frames:
            self._port.write_midi_event(int(self._next), b"\xf8")
            self._next += self._frames_per_tick
        self._next -= frames

    def start(self) -> None:
        self._pending.append(b"\xfa")
        self._next = 0.0
        self._running = True

    def stop(self) -> None:
        self._running = False
        self._pending.append(b"\xfc")

    def close(self) -> None:
        _close(self._client)


def grid_fit_ms(frames: np.ndarray, rate: float, interval_ms: float) -> dict[str, float]:
    """How well an event train (JACK frames) fits a straight grid of about ``interval_ms``: each
    event's slot on the grid (so one the receiver missed does not shift the ones after it), the
    fitted interval, and each event's deviation from the fitted line (ms)."""
    frames = np.asarray(frames, dtype=np.float64)
    k = np.round((frames - frames[0]) / (rate * interval_ms / 1000.0)).astype(int)
    if np.any(np.diff(k) < 1):
        raise AssertionError("two events in one grid slot: not a grid of that interval")
    slope, intercept = np.polyfit(k, frames, 1)
    dev = (frames - (slope * k + intercept)) * 1000.0 / rate
    return {"interval_ms": round(float(slope) * 1000.0 / rate, 4), "dev_std_ms": round(float(dev.std()), 4),
            "dev_p99_abs_ms": round(float(np.percentile(np.abs(dev), 99)), 4), "events": int(frames.size),
            "missed": int(k[-1] + 1 - frames.size)}


class Keys:
    """A controller keyboard: a JACK MIDI output port ``<client>:out``. :meth:`play` writes raw JACK
    events (each one a byte string, which need not be a whole message: a sysex may be cut across
    events, a note may use running status) in the next cycle, at the given offsets, and records the
    JACK frame each event was written at (``sent``: ``(frame, bytes)``)."""

    def __init__(self, client_name: str = "kelly-test-keys") -> None:
        import jack

        self._client = jack.Client(client_name, no_start_server=True)
        self._port = self._client.midi_outports.register("out")
        self.port_name = self._port.name
        self._lock = threading.Lock()
        self._pending: list[list[tuple[int, bytes]]] = []  # one list of (offset, event) per cycle
        self.sent: list[tuple[int, bytes]] = []
        self._client.set_process_callback(self._process)
        self._client.activate()

    def _process(self, frames: int) -> None:
        port = self._port
        if port is None:
            return
        port.clear_buffer()
        if not self._pending or not self._lock.acquire(blocking=False):
            return
        try:
            if not self._pending:
                return
            events = self._pending.pop(0)
        finally:
            self._lock.release()
        start = self._client.last_frame_time
        for offset, data in events:
            port.write_midi_event(offset, data)
            self.sent.append((start + offset, data))

    def play(self, *events: tuple[int, bytes]) -> None:
        """``(offset, event)`` pairs, written in one coming cycle (offsets non-decreasing)."""
        with self._lock:
            self._pending.append(list(events))

    def play_cycles(self, cycles: list[list[tuple[int, bytes]]]) -> None:
        """Several consecutive cycles' events (an empty list: a cycle with nothing)."""
        with self._lock:
            self._pending.extend([list(c) for c in cycles])

    @property
    def idle(self) -> bool:
        with self._lock:
            return not self._pending

    def restart_port(self) -> None:
        """The controller unplugged and plugged in again: its port goes and comes back."""
        self.unplug()
        time.sleep(0.3)
        self.plug()

    def unplug(self) -> None:
        port, self._port = self._port, None
        time.sleep(0.05)  # the callback is not inside the port any more
        port.unregister()

    def plug(self) -> None:
        self._port = self._client.midi_outports.register("out")

    def close(self) -> None:
        _close(self._client)
