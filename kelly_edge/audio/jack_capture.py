"""JACK capture through the ``JACK-Client`` package: our own input ports, connected by name.

Many Pi audio setups run a JACK server that owns the interface; PortAudio's JACK host API can
only auto-connect to the first physical ports, whereas here ``audio.device`` is a substring of the
*source port* names to connect (``""`` = the server's physical capture ports, e.g.
``system:capture_1``), so another JACK client (a looper, an effects chain, a test player) can
feed the box. The JACK process callback only copies each port's buffer into the ring.

The sample rate is the server's: a different ``audio.sample_rate`` is refused with the one rate
the server accepts. When a source port disappears and comes back (a client restarted),
:meth:`JackCapture.maintain` reconnects it; when the server itself goes away ``alive`` turns
False and the live loop reopens the capture once a server is back.
"""

from __future__ import annotations

import logging
from typing import Any

from kelly_edge.audio.capture import InputDevice
from kelly_edge.audio import jack_owner
from kelly_edge.audio.jack_owner import on_jack_thread
from kelly_edge.audio.native_log import mute_native_errors
from kelly_edge.audio.ring import FrameRing
from kelly_edge.errors import DeviceError

log = logging.getLogger(__name__)


def _jack() -> Any:
    """The JACK-Client module. libjack's messages already go to the debug log (native_log installs
    one handler per process, kept forever). Not ``jack.set_error_function`` here: each call frees
    the previous cffi callback *before* installing the next, and when a server dies its clients'
    threads log errors through it at that very moment (every reopen attempt called it), so libjack
    could call a freed callback: the cffi ``PyTuple_GET_SIZE`` assertion and segfaults seen after
    a JACK restart."""
    mute_native_errors()
    try:
        import jack
    except (ImportError, OSError) as err:
        raise DeviceError(
            f"audio.backend jack needs the JACK-Client package and libjack ({err}); pip install JACK-Client"
        ) from err
    return jack


def _client(jack: Any, name: str) -> Any:
    try:
        return jack.Client(name, no_start_server=True)
    except jack.JackError as err:
        raise DeviceError("no JACK server is running (start jackd, or set audio.backend: pyaudio)") from err


def _sources(client: Any, device: str) -> list[str]:
    """Audio output ports to capture from: physical capture ports for "", else name matches."""
    if not device:
        return [p.name for p in client.get_ports(is_audio=True, is_output=True, is_physical=True)]
    want = device.casefold()
    own = client.name + ":"
    return [p.name for p in client.get_ports(is_audio=True, is_output=True)
            if want in p.name.casefold() and not p.name.startswith(own)]


def list_inputs() -> list[InputDevice]:
    """Every JACK audio source port (physical capture ports first) as ``audio.device`` names it."""
    return jack_owner.opening(_list_inputs)


def _list_inputs() -> list[InputDevice]:
    jack = _jack()
    client = _client(jack, "kelly-edge-list")
    try:
        rate = int(client.samplerate)
        physical = {p.name for p in client.get_ports(is_audio=True, is_output=True, is_physical=True)}
        ports = [p.name for p in client.get_ports(is_audio=True, is_output=True)]
        ports.sort(key=lambda n: (n not in physical, n))
        return [InputDevice(backend="jack", name=n, channels=1, default_rate=rate, rates=(rate,), default=n in physical)
                for n in ports]
    finally:
        client.close()


class JackCapture:
    """An opened JACK client with ``channels`` input ports; see :class:`~kelly_edge.audio.capture.AudioCapture`."""

    def __init__(self, jack: Any, client: Any, *, device: str, sources: list[str], channels: int, ring: FrameRing) -> None:
        self._jack = jack
        self._client = client
        self._device = device
        self._sources = sources
        self.sample_rate = int(client.samplerate)
        self.channels = channels
        self.overflows = 0
        self.frame_anchor: int | None = None  # JACK frame of ring frame 0 (the callback's; None before)
        self._ring = ring
        self._ports = [client.inports.register(f"in_{i + 1}") for i in range(channels)]
        self._alive = True
        self._started = False
        self._closed = False
        self._released = False  # the JACK client is closed (by close, or reaped once dead)
        self.name = ", ".join(sources)
        client.set_process_callback(self._process)
        client.set_shutdown_callback(self._shutdown)
        client.set_xrun_callback(self._xrun)

    def _process(self, frames: int) -> None:
        """JACK's real-time thread: copy each port's buffer into the ring, and note which JACK frame
        the ring's frame 0 is (so MIDI can be scheduled on this server's frame clock). Nothing else."""
        self.frame_anchor = self._client.last_frame_time - self._ring.frames_written
        if self.channels == 1:
            self._ring.write_interleaved(self._ports[0].get_array())
        else:
            self._ring.write_planar([p.get_array() for p in self._ports])

    def _shutdown(self, status: Any, reason: str) -> None:
        self._alive = False  # the server went away; no client call is allowed here

    def _xrun(self, delayed_usecs: float) -> None:
        self.overflows += 1

    def start(self) -> None:
        on_jack_thread(self._client.activate)
        self._started = True
        self._connect()

    def _connect(self) -> None:
        """Connect source ``i`` to input ``i`` (a mono source feeds every input; extra sources wrap)."""
        if not self._sources:
            return
        n = max(len(self._sources), len(self._ports))
        for i in range(n):
            src, dst = self._sources[i % len(self._sources)], self._ports[i % len(self._ports)]
            try:
                if src not in {p.name for p in self._client.get_all_connections(dst)}:
                    self._client.connect(src, dst)
            except self._jack.JackError as err:
                log.debug("cannot connect %s -> %s: %s", src, dst.name, err)

    @property
    def alive(self) -> bool:
        return self._alive and not self._closed

    def maintain(self) -> None:
        """Reconnect when our inputs lost every connection and matching sources exist again."""
        if not self.alive or not self._started:
            return
        try:
            if any(self._client.get_all_connections(p) for p in self._ports):
                return
            sources = _sources(self._client, self._device)
        except self._jack.JackError:
            return
        if sources:
            if sources != self._sources:
                log.info("audio input: connecting JACK ports %s", ", ".join(sources))
            self._sources = sources
            self.name = ", ".join(sources)
            self._connect()

    def close(self) -> None:
        """Close the client on the JACK owner thread (a dead one too: it must be freed)."""
        if self._closed:
            return
        self._closed = True
        on_jack_thread(self._close_client)

    def dead(self) -> bool:
        """The server went away and the client is still open (see jack_owner)."""
        return not self._alive and not self._released

    def release(self) -> None:
        self._close_client()

    def _close_client(self) -> None:
        if self._released:
            return
        self._released = True
        jack_owner.forget(self)
        try:
            if self._started and self._alive:
                self._client.deactivate()
            self._client.close()
        except self._jack.JackError:
            pass


def open_capture(*, device: str, sample_rate: int, channels: int, ring: FrameRing, frames_per_buffer: int,
                 client_name: str = "kelly-edge") -> JackCapture:
    """Open a JACK client, check the server's rate and find the source ports; not yet activated."""
    del frames_per_buffer  # the server's period decides; the ring regroups samples into hops
    return jack_owner.opening(lambda: _open(device=device, sample_rate=sample_rate, channels=channels, ring=ring,
                                        client_name=client_name))


def _open(*, device: str, sample_rate: int, channels: int, ring: FrameRing, client_name: str) -> JackCapture:
    jack = _jack()
    client = _client(jack, client_name)
    try:
        rate = int(client.samplerate)
        if rate != sample_rate:
            raise DeviceError(
                f"the JACK server refuses audio.sample_rate {sample_rate} Hz: it runs at {rate} Hz (accepted: {rate})"
            )
        sources = _sources(client, device)
        if not sources:
            ports = [p.name for p in client.get_ports(is_audio=True, is_output=True)]
            if not ports:
                raise DeviceError("no audio input devices found: the JACK server has no capture ports")
            what = f"audio.device {device!r}" if device else "a physical capture port"
            raise DeviceError(f"no JACK capture port matches {what} (ports: {', '.join(ports)})")
        capture = JackCapture(jack, client, device=device, sources=sources, channels=channels, ring=ring)
        jack_owner.track(capture)
        return capture
    except BaseException:
        client.close()
        raise
