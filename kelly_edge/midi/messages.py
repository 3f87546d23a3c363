"""Raw MIDI channel messages as ``bytes``: the only place message bytes are laid out.

Channels are 1..16 in the config (what a musician reads on a synth) and 0..15 on the wire;
:func:`wire_channel` is the one conversion, done once when a voice is configured. Every other
function here takes a *wire* channel (``ch0``). Validators name the bad value, the way mido's
``checks.py`` does, so a wrong config or a generator bug fails loudly instead of sending garbage.
"""

from __future__ import annotations

NOTE_OFF = 0x80
NOTE_ON = 0x90
CONTROL_CHANGE = 0xB0

CC_MODULATION = 1
CC_EXPRESSION = 11
CC_SUSTAIN = 64
CC_BRIGHTNESS = 74  # "sound controller 5", brightness / filter cut-off on most synths
CC_ALL_SOUND_OFF = 120
CC_ALL_NOTES_OFF = 123


def wire_channel(channel: int) -> int:
    """Config channel 1..16 -> wire channel 0..15. Raises ValueError naming the value."""
    if isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= 16:
        raise ValueError(f"MIDI channel must be an integer in 1..16, got {channel!r}")
    return channel - 1


def check_channel(ch0: int) -> None:
    """Raise ValueError unless ``ch0`` is a wire channel 0..15."""
    if isinstance(ch0, bool) or not isinstance(ch0, int) or not 0 <= ch0 <= 15:
        raise ValueError(f"wire channel must be an integer in 0..15, got {ch0!r}")


def check_data(name: str, value: int) -> None:
    """Raise ValueError unless ``value`` is a MIDI data byte 0..127; ``name`` says which one."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 127:
        raise ValueError(f"{name} must be an integer in 0..127, got {value!r}")


def note_on(ch0: int, note: int, velocity: int) -> bytes:
    """Note-on. ``velocity`` 1..127 starts a note (0 is accepted: by convention it means note-off)."""
    check_channel(ch0)
    check_data("note", note)
    check_data("velocity", velocity)
    return bytes((NOTE_ON | ch0, note, velocity))


def note_off(ch0: int, note: int, velocity: int = 0) -> bytes:
    """Note-off (status 0x8n, release velocity 0 unless given)."""
    check_channel(ch0)
    check_data("note", note)
    check_data("velocity", velocity)
    return bytes((NOTE_OFF | ch0, note, velocity))


def control_change(ch0: int, control: int, value: int) -> bytes:
    """Control change ``control`` = ``value``."""
    check_channel(ch0)
    check_data("control", control)
    check_data("value", value)
    return bytes((CONTROL_CHANGE | ch0, control, value))


def program_change(ch0: int, program: int) -> bytes:
    """Program change ``program`` (0..127) on wire channel ``ch0``."""
    check_channel(ch0)
    check_data("program", program)
    return bytes([0xC0 | ch0, program])


def voice_setup(ch0: int, program: int | None, bank: int | None = None) -> list[bytes]:
    """What selects a synth's sound on ``ch0``: bank select (CC0 MSB, CC32 LSB; ``bank`` 0..16383)
    then the program change; nothing for ``None``. A bank without a program selects nothing."""
    if program is None:
        return []
    out = []
    if bank is not None:
        if not 0 <= bank <= 16383:
            raise ValueError(f"bank must be 0..16383, got {bank}")
        out += [control_change(ch0, 0, bank >> 7), control_change(ch0, 32, bank & 0x7F)]
    return out + [program_change(ch0, program)]


def all_notes_off(ch0: int) -> bytes:
    """CC123: release every note on the channel (sustain may still hold them)."""
    return control_change(ch0, CC_ALL_NOTES_OFF, 0)


def all_sound_off(ch0: int) -> bytes:
    """CC120: silence the channel at once, release tails included."""
    return control_change(ch0, CC_ALL_SOUND_OFF, 0)


def sustain_off(ch0: int) -> bytes:
    """CC64 = 0: pedal up, so nothing stays held after a panic."""
    return control_change(ch0, CC_SUSTAIN, 0)


def is_note_on(message: bytes) -> bool:
    """True for a note-on with velocity > 0 (a note-on with velocity 0 is a note-off)."""
    return len(message) == 3 and message[0] & 0xF0 == NOTE_ON and message[2] > 0


def is_note_off(message: bytes) -> bool:
    """True for a note-off, including a note-on with velocity 0."""
    if len(message) != 3:
        return False
    kind = message[0] & 0xF0
    return kind == NOTE_OFF or (kind == NOTE_ON and message[2] == 0)


def channel_of(message: bytes) -> int | None:
    """Wire channel 0..15 of a channel message, None for system messages."""
    status = message[0]
    return status & 0x0F if 0x80 <= status < 0xF0 else None
