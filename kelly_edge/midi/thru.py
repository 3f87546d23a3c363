"""MIDI thru: what a controller plays passes to the box's output, merged with the box's own MIDI.

``midi.thru_port`` names the controller's MIDI output (a substring, as ``midi.port`` does; ``""``
= off). The pieces, each with one job:

* :class:`MidiParser` reassembles complete messages from a byte stream however it was cut: running
  status is expanded (every message leaves with its status byte, so neither the box's nor the
  controller's running status can be broken by the merge), a sysex split across packets is
  collected into one message (a preallocated buffer of ``max_sysex`` bytes; a longer one is
  dropped and counted), real-time bytes inside a sysex come out as their own messages without
  ending it, and stray data bytes are counted and dropped.
* :class:`ThruFilter` drops MIDI clock, Start/Continue/Stop and Song Position (``midi.thru_clock``)
  and Active Sensing (``midi.thru_active_sensing``) unless asked, and moves channel messages to
  ``midi.thru_channel`` when one is set.
* :class:`PlayerNotes` tracks the player's sounding notes and sustain pedal per channel, so that a
  panic, switching off the voice thru plays through, the controller being unplugged, and the
  shutdown release them too.
* :class:`ThruProcessor` chains the three; :meth:`ThruProcessor.feed` hands each whole message to
  a writer. It is called from python-rtmidi's input thread (ALSA) or from the JACK process callback
  (``midi.backend: jack``, where the controller's port is an input port of the box's own JACK MIDI
  client: :class:`~kelly_edge.midi.jack_sink.JackMidiOutput`), so it allocates no buffer.
* :class:`MidiThru` owns a run's thru: its input (:func:`rtmidi_thru_input`, or the JACK client's
  thru port), the hot-plug watchdog, and the releases through the sink.

Which output the thru goes to is :func:`thru_target`, the one place that decides it.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from kelly_edge.errors import DeviceError
from kelly_edge.midi import messages as mm

log = logging.getLogger(__name__)

SYSEX, EOX = 0xF0, 0xF7
SONG_POSITION = 0xF2
CLOCK, START, CONTINUE, STOP = 0xF8, 0xFA, 0xFB, 0xFC
ACTIVE_SENSING = 0xFE
CLOCK_MESSAGES = frozenset((CLOCK, START, CONTINUE, STOP, SONG_POSITION))
MAX_SYSEX = 65536  # bytes of one sysex kept for reassembly (a synth's whole patch dump fits)

# data bytes after each status: channel messages by kind, system common by status
_CHANNEL_DATA = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
_COMMON_DATA = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0}
_DATA_AFTER = bytes(
    (_CHANNEL_DATA.get(s & 0xF0, 0) if s < 0xF0 else _COMMON_DATA.get(s, 0)) if s >= 0x80 else 0
    for s in range(256)
)
_NO_NOTES = bytes(128)
_STATUS_BYTE = re.compile(rb"[\x80-\xff]")
_ONE_BYTE = tuple(memoryview(bytes((b,))) for b in range(256))  # real-time messages, preallocated

Writer = Callable[[memoryview, int], None]
"""``write(message, status)``: a whole message whose first byte is to be sent as ``status``."""


class MidiParser:
    """Bytes in, whole messages out (see the module docstring). One instance per input stream.

    :meth:`feed` calls ``emit(view)`` for each complete message; ``view`` is only valid during the
    call (it points into the parser's buffer). Counters: ``garbage`` (bytes that belonged to no
    message: data without a status, an undefined status, an interrupted sysex), ``sysex_dropped``
    (sysex longer than ``max_sysex``).
    """

    def __init__(self, max_sysex: int = MAX_SYSEX) -> None:
        self._buf = bytearray(max(max_sysex, 4))
        self._view = memoryview(self._buf)
        self._cap = len(self._buf)
        self._n = 0  # bytes of the message in progress (0: none)
        self._need = 0  # data bytes a complete message has after its status
        self._running = 0  # running status (a channel status byte), 0 when none applies
        self._sysex = False
        self._overflow = False
        self.garbage = 0
        self.sysex_dropped = 0

    def reset(self) -> None:
        """Forget a half-received message and the running status (the input went away)."""
        self._n = self._need = self._running = 0
        self._sysex = self._overflow = False

    def feed(self, data: Any, emit: Callable[[memoryview], None]) -> None:
        """Parse ``data`` (bytes, bytearray or a byte memoryview), emitting whole messages.

        A sysex's data bytes are found and copied in one block (a regular-expression search for
        the next status byte and a slice copy), not byte by byte: a 64 KiB patch dump read in the
        JACK process callback must not take the period's time.
        """
        buf = self._buf
        size = len(data)
        i = 0
        while i < size:
            if self._sysex:
                found = _STATUS_BYTE.search(data, i)
                end = found.start() if found is not None else size
                if end > i:
                    k = min(end - i, self._cap - self._n)
                    if k < end - i:
                        self._overflow = True
                    if k > 0:
                        self._view[self._n : self._n + k] = data[i : i + k]
                        self._n += k
                    i = end
                    continue
            b = data[i]
            i += 1
            if b >= 0xF8:  # real-time: anywhere, even inside a sysex or between a status and its data
                if b == 0xF9 or b == 0xFD:
                    self.garbage += 1
                else:
                    emit(_ONE_BYTE[b])
                continue
            if self._sysex:  # a status byte ends the sysex
                if b == EOX:
                    if self._overflow or self._n >= self._cap:
                        self.sysex_dropped += 1
                    else:
                        buf[self._n] = EOX
                        emit(self._view[: self._n + 1])
                    self._sysex = self._overflow = False
                    self._n = 0
                    continue
                self.garbage += self._n  # any other status ends a sysex that never finished: dropped
                self._sysex = self._overflow = False
                self._n = 0
            if b >= 0x80:
                if self._n:
                    self.garbage += self._n  # a message cut short by the next status
                self._n = 0
                if b == SYSEX:
                    self._sysex = True
                    self._running = 0
                    buf[0] = b
                    self._n = 1
                    continue
                if b >= 0xF0 and b not in _COMMON_DATA:  # 0xF4, 0xF5 (undefined), a lone 0xF7
                    self.garbage += 1
                    self._running = 0
                    continue
                self._running = b if b < 0xF0 else 0  # system common cancels running status
                need = _DATA_AFTER[b]
                buf[0] = b
                if need == 0:  # tune request
                    emit(self._view[:1])
                    continue
                self._need = need
                self._n = 1
                continue
            # a data byte
            if self._n == 0:
                if not self._running:
                    self.garbage += 1
                    continue
                buf[0] = self._running
                self._need = _DATA_AFTER[self._running]
                self._n = 1
            buf[self._n] = b
            self._n += 1
            if self._n > self._need:
                emit(self._view[: self._n])
                self._n = 0


@dataclass(frozen=True)
class ThruFilter:
    """What passes: ``clock`` (MIDI clock, Start/Continue/Stop, Song Position), ``active_sensing``;
    ``channel``: the wire channel (0..15) channel messages are moved to, None = kept."""

    clock: bool = False
    active_sensing: bool = False
    channel: int | None = None

    @classmethod
    def from_config(cls, midi: Any) -> ThruFilter:
        ch = midi.thru_channel
        return cls(clock=bool(midi.thru_clock), active_sensing=bool(midi.thru_active_sensing),
                   channel=None if ch is None else mm.wire_channel(int(ch)))

    def status(self, status: int) -> int:
        """The status byte a message with ``status`` leaves with, or -1 when it does not pass."""
        if status < 0xF0:
            return status if self.channel is None else (status & 0xF0) | self.channel
        if status in CLOCK_MESSAGES:
            return status if self.clock else -1
        if status == ACTIVE_SENSING:
            return status if self.active_sensing else -1
        return status


class PlayerNotes:
    """The player's sounding notes and sustain pedal per wire channel, as passed to the output.

    Not an :class:`~kelly_edge.midi.notes.ActiveNotes`: releasing the player is note-offs and pedal
    up for what the player holds, where a panic of the box's notes also sends CC123/CC120 on the
    channel (which would cut the box's notes there too when only the player is released).

    Written by the thru input (python-rtmidi's thread or the JACK callback: flat bytearrays, no
    allocation) and read by whoever releases them (:meth:`release_messages`, from another thread:
    each note is cleared as its note-off is made, so a note-on recorded meanwhile is kept).
    """

    def __init__(self) -> None:
        self._on = bytearray(16 * 128)
        self._pedal = bytearray(16)

    def observe(self, status: int, d1: int, d2: int) -> None:
        """One channel message as it leaves (``status`` already remapped)."""
        kind = status & 0xF0
        ch = status & 0x0F
        if kind == 0x90:
            self._on[ch * 128 + d1] = 1 if d2 else 0
        elif kind == 0x80:
            self._on[ch * 128 + d1] = 0
        elif kind == 0xB0:
            if d1 == mm.CC_SUSTAIN:
                self._pedal[ch] = 1 if d2 >= 64 else 0
            elif d1 == mm.CC_ALL_NOTES_OFF or d1 == mm.CC_ALL_SOUND_OFF:
                self._on[ch * 128 : ch * 128 + 128] = _NO_NOTES

    @property
    def sounding(self) -> int:
        """Notes the player holds down (keys let go while the pedal is down are not counted)."""
        return self._on.count(1)

    def held(self) -> list[tuple[int, int]]:
        """``[(wire channel, note)]`` sounding now."""
        return [divmod(i, 128) for i, v in enumerate(self._on) if v]

    def release_messages(self) -> list[bytes]:
        """A note-off for every sounding note, then CC64 0 on every channel whose pedal is down;
        marks them released (the caller sends them). Only the player's notes: the box's own
        notes on the same channels keep sounding."""
        out: list[bytes] = []
        on = self._on
        i = on.find(1)
        while i >= 0:
            on[i] = 0
            out.append(mm.note_off(i // 128, i % 128))
            i = on.find(1, i + 1)
        for ch in range(16):
            if self._pedal[ch]:
                self._pedal[ch] = 0
                out.append(mm.sustain_off(ch))
        return out


class ThruProcessor:
    """Parser -> filter/remap -> note tracking -> ``write`` (see the module docstring).

    ``running`` False (after :meth:`stop`) passes nothing: the shutdown stops the thru before the
    last panic, so no note of the player starts after its release. Counters: ``passed``,
    ``filtered`` (clock / active sensing dropped), plus the parser's.
    """

    def __init__(self, settings: ThruFilter, notes: PlayerNotes | None = None, *, max_sysex: int = MAX_SYSEX) -> None:
        self.settings = settings
        self.notes = notes if notes is not None else PlayerNotes()
        self.parser = MidiParser(max_sysex)
        self.running = True
        self.passed = 0
        self.filtered = 0
        self._write: Writer | None = None
        self._table = [settings.status(s) if s >= 0x80 else -1 for s in range(256)]

    def stop(self) -> None:
        self.running = False

    def feed(self, data: Any, write: Writer) -> None:
        """Parse ``data`` and hand each passing whole message to ``write(message, status)``."""
        self._write = write
        self.parser.feed(data, self._accept)

    def _accept(self, message: memoryview) -> None:
        if not self.running:
            return
        status = self._table[message[0]]
        if status < 0:
            self.filtered += 1
            return
        if status < 0xF0 and len(message) == 3:
            self.notes.observe(status, message[1], message[2])
        self.passed += 1
        self._write(message, status)  # type: ignore[misc]


def as_bytes(message: memoryview, status: int) -> bytes:
    """A whole message as ``bytes`` with its status byte replaced (for outputs that take bytes)."""
    out = bytearray(message)
    out[0] = status
    return bytes(out)


def thru_target(config: Any) -> str:
    """Which output thru goes to, as the configured port text the router keys its destinations by
    (``""`` = ``midi.port``'s): ``midi.thru_to`` is ``port`` (the box's ``midi.port``) or a voice
    (melody, chord, bass) whose synth it joins (that voice's ``generator.<voice>.port``).

    THE one place this is decided; the caller opens the router with this destination too
    (``plan_routes(config, also=...)``) and passes that destination's sink to :class:`MidiThru`.
    """
    to = str(config.midi.thru_to)
    if to == "port":
        return ""
    return str(getattr(config.generator, to).port).strip()


# --- inputs -------------------------------------------------------------------------------------


class ThruSource(Protocol):
    """The controller's side: ``name``; :meth:`open` (DeviceError with one line while the port is
    missing), :meth:`present` (is it still there? quick), :meth:`reopen` and an idempotent :meth:`close`."""

    name: str

    def open(self) -> None: ...

    def present(self) -> bool: ...

    def reopen(self) -> None: ...

    def close(self) -> None: ...


def rtmidi_thru_input(processor: ThruProcessor, write: Writer, *, port: str, api: str,
                      client_name: str = "kelly-edge-thru") -> Any:
    """The controller's port through python-rtmidi (ALSA, or JACK through python-rtmidi): every
    message, sysex, clock and active sensing included (the processor filters, so nothing is lost
    inside python-rtmidi), fed to ``processor`` on python-rtmidi's input thread."""
    from kelly_edge.midi.rtmidi_sink import RtMidiInput

    return RtMidiInput(port=port, api=api, key="midi.thru_port", client_name=client_name, port_name="thru_in",
                       on_message=lambda message, delta: processor.feed(bytes(message), write))


class JackThruInput:
    """The thru port of the box's own JACK MIDI client (``midi.backend: jack``): the controller's
    port is connected to ``<client>:thru_in``, read in the client's process callback and merged
    there (see :class:`~kelly_edge.midi.jack_sink.JackMidiOutput`). Opening is connecting; the
    client itself belongs to the output (a JACK restart gives a new one, and the watchdog connects
    the controller to it again)."""

    def __init__(self, output: Any) -> None:
        self.output = output

    @property
    def name(self) -> str:
        return str(self.output.thru_name)

    def open(self) -> None:
        self.output.connect_thru()

    def present(self) -> bool:
        return bool(self.output.thru_present())

    def reopen(self) -> None:
        self.output.connect_thru()

    @property
    def lost(self) -> int:
        """Whole messages the JACK port could not take (its buffer full in that period)."""
        return int(self.output.thru_lost) + int(self.output.stage.overflow)

    def close(self) -> None:
        """Nothing of its own to close: the output's client goes with the sink."""


class MidiThru:
    """A run's MIDI thru: the input, its hot-plug watchdog and the player's releases.

    ``sink`` is the :class:`~kelly_edge.midi.rtmidi_sink.ScheduledSink` the thru joins: the
    player's notes are registered with it (:meth:`~kelly_edge.midi.rtmidi_sink.ScheduledSink.add_player`),
    so its panics, its reconnections and its close release them with the box's own. Here:
    releases when the controller is unplugged (its held keys will never send their note-offs) and
    when the voice thru plays through is switched off (:meth:`follow_voice`).

    A controller missing at start-up is one log line naming ``midi.thru_port``; the box plays on and
    the watchdog checks every ``retry_s``: the thru starts when the controller appears.
    """

    def __init__(self, processor: ThruProcessor, source: ThruSource, sink: Any, *, voice: str | None = None,
                 retry_s: float = 1.5) -> None:
        self.processor = processor
        self.source = source
        self.sink = sink
        self.voice = voice
        self.retry_s = retry_s
        self.connected = False
        self.losses = 0
        self._voice_on = True
        self._lost_logged = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        sink.add_player(processor.notes)

    def start(self) -> None:
        try:
            self.source.open()
        except DeviceError as err:
            problem = str(err) if "midi.thru_port" in str(err) else f"midi.thru_port {self.source.name!r}: {err}"
            log.warning("MIDI thru: %s; set midi.thru_port to a MIDI input from kelly-edge devices, or plug "
                        "the controller in (thru starts when it appears, retrying every %.1f s)", problem,
                        self.retry_s)
        else:
            self.connected = True
            log.info("MIDI thru: %r -> the box's MIDI output", self.source.name)
        self._thread = threading.Thread(target=self._watch, name="kelly-midi-thru-watch", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.retry_s):
            try:
                self.check()
            except Exception as err:  # the watchdog must survive anything the MIDI system does
                log.debug("MIDI thru watchdog: %s", err)

    def check(self) -> None:
        """One watchdog step: a lost controller releases the player's notes; one that is back resumes."""
        self._report_losses()
        if self.connected:
            if self.source.present():
                return
            self.connected = False
            self.losses += 1
            self.processor.parser.reset()  # a message cut by the unplug (nothing arrives meanwhile)
            self.sink.release_player(self.processor.notes)
            log.warning("MIDI thru input %r lost; released the player's notes, retrying every %.1f s",
                        self.source.name, self.retry_s)
            return
        try:
            self.source.reopen()
        except DeviceError:
            return
        self.connected = True
        log.warning("MIDI thru input %r is back", self.source.name)

    def _report_losses(self) -> None:
        """One line the first time a sysex was too long or a message did not fit the output."""
        lost = self.processor.parser.sysex_dropped + int(getattr(self.source, "lost", 0))
        if lost and not self._lost_logged:
            self._lost_logged = True
            log.warning("MIDI thru: %d message(s) not passed (a sysex over %d bytes, or more than a JACK period "
                        "holds); the rest passes", lost, MAX_SYSEX)

    def follow_voice(self, on: bool) -> None:
        """Told each hop whether the voice thru plays through is on; switching it off releases the
        player's notes (the player's new notes still pass: the voice-off silences the synth)."""
        if self._voice_on and not on:
            self.sink.release_player(self.processor.notes)
        self._voice_on = on

    def close(self) -> None:
        """Stop passing anything (before the sink's last panic releases the player's notes), stop
        the watchdog, close the input. Idempotent."""
        self.processor.stop()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        try:
            self.source.close()
        except Exception as err:  # a vanished controller may fail to close
            log.debug("closing the MIDI thru input: %s", err)

    def status(self) -> dict[str, Any]:
        p = self.processor
        return {"input": self.source.name, "connected": self.connected, "passed": p.passed, "filtered": p.filtered,
                "garbage_bytes": p.parser.garbage, "sysex_dropped": p.parser.sysex_dropped,
                "player_sounding": p.notes.sounding, "losses": self.losses,
                "not_passed": p.parser.sysex_dropped + int(getattr(self.source, "lost", 0))}
