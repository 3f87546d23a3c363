"""Raw message builders: the bytes a MIDI library would produce, and validation naming the value."""

from __future__ import annotations

import mido
import pytest

from kelly_edge.midi import messages as mm


@pytest.mark.parametrize("ch0", [0, 9, 15])
def test_note_and_cc_bytes_match_mido(ch0: int) -> None:
    assert mm.note_on(ch0, 60, 100) == bytes(mido.Message("note_on", channel=ch0, note=60, velocity=100).bytes())
    assert mm.note_off(ch0, 61) == bytes(mido.Message("note_off", channel=ch0, note=61, velocity=0).bytes())
    assert mm.control_change(ch0, 74, 5) == bytes(mido.Message("control_change", channel=ch0, control=74, value=5).bytes())
    assert mm.all_notes_off(ch0) == bytes(mido.Message("control_change", channel=ch0, control=123, value=0).bytes())
    assert mm.all_sound_off(ch0) == bytes(mido.Message("control_change", channel=ch0, control=120, value=0).bytes())
    assert mm.sustain_off(ch0) == bytes(mido.Message("control_change", channel=ch0, control=64, value=0).bytes())


def test_wire_channel_converts_config_channels_and_rejects_others() -> None:
    assert mm.wire_channel(1) == 0
    assert mm.wire_channel(16) == 15
    for bad in (0, 17, -1, 1.0, True, "1"):
        with pytest.raises(ValueError, match="1..16"):
            mm.wire_channel(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: mm.note_on(16, 60, 100), "channel .*0..15, got 16"),
        (lambda: mm.note_on(-1, 60, 100), "got -1"),
        (lambda: mm.note_on(0, 128, 100), "note .*got 128"),
        (lambda: mm.note_on(0, 60, 128), "velocity .*got 128"),
        (lambda: mm.note_off(0, -3), "note .*got -3"),
        (lambda: mm.control_change(0, 200, 1), "control .*got 200"),
        (lambda: mm.control_change(0, 1, 300), "value .*got 300"),
        (lambda: mm.note_on(0, 60.0, 100), "note .*got 60.0"),  # type: ignore[arg-type]
    ],
)
def test_validation_names_the_bad_value(call, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        call()


def test_classifiers() -> None:
    assert mm.is_note_on(mm.note_on(3, 60, 1))
    assert not mm.is_note_on(mm.note_on(3, 60, 0))
    assert mm.is_note_off(mm.note_on(3, 60, 0))
    assert mm.is_note_off(mm.note_off(3, 60))
    assert not mm.is_note_off(mm.control_change(3, 64, 0))
    assert mm.channel_of(mm.control_change(7, 1, 2)) == 7
    assert mm.channel_of(b"\xf8") is None


def test_voice_setup_is_bank_then_program_and_nothing_without_a_program() -> None:
    from kelly_edge.midi import messages as mm

    assert mm.voice_setup(9, 0) == [b"\xc9\x00"]
    assert mm.voice_setup(0, 127, 16383) == [b"\xb0\x00\x7f", b"\xb0\x20\x7f", b"\xc0\x7f"]
    assert mm.voice_setup(0, None, 5) == []
    with pytest.raises(ValueError):
        mm.program_change(0, 128)
    with pytest.raises(ValueError):
        mm.voice_setup(0, 1, 16384)
