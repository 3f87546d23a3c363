"""The harmony model's training material: the chords it is labelled with are the chords it plays."""

from __future__ import annotations

import io

import mido
import pytest

from kelly_edge.generate import theory
from kelly_edge.models import spec
from tools.train import accompaniment as A


@pytest.mark.parametrize("seed", range(6))
def test_every_accompaniment_note_is_a_tone_of_its_labelled_chord(seed: int) -> None:
    acc = A.make(seed, held_out=seed % 2 == 1, seconds=16.0)
    assert acc.segments[0].start_s == 0.0 and acc.segments[-1].end_s >= 16.0 - 1e-9
    assert all(a.end_s == pytest.approx(b.start_s) for a, b in zip(acc.segments, acc.segments[1:]))
    t, checked = 0.0, 0
    for msg in mido.MidiFile(file=io.BytesIO(acc.midi)):
        t += msg.time
        if msg.type == "note_on" and msg.velocity > 0 and msg.channel in (0, 1):  # chord and bass voices
            chord = acc.chord_at(t + 1e-4)  # mido sums float deltas
            assert chord != spec.NO_CHORD, (seed, t)
            assert msg.note % 12 in theory.chord_pitch_classes(chord), (seed, t, spec.chord_name(chord))
            checked += 1
    assert checked > 10


def test_training_never_sees_the_held_out_textures_and_sounds() -> None:
    seen = [A.make(s, seconds=8.0) for s in range(60)]
    assert not {a.texture for a in seen} & set(A.HELD_OUT_TEXTURES)
    assert not {a.program for a in seen} & set(A.HELD_OUT_PROGRAMS)
    held = [A.make(s, held_out=True, seconds=8.0) for s in range(30)]
    assert {a.texture for a in held} & set(A.HELD_OUT_TEXTURES)


def test_a_transposed_row_is_heard_as_the_transposed_chord() -> None:
    """The augmentation moves every pitch-class input: the template fallback hears C-E-G as C and
    its row moved up 2 as D (with the key moved from C to D as well)."""
    import numpy as np

    from kelly_edge.features import encode
    from kelly_edge.models.fallbacks import HarmonyFallback
    from tools.train.build_chords import transposed

    c = np.zeros(12, np.float32)
    c[[0, 4, 7]] = 1.0
    bass = np.zeros(12, np.float32)
    bass[0] = 1.0
    row = encode.encode_harmony(np.zeros(128, np.float32), chroma_short=c, chroma_window=c, bass_short=bass,
                                bass_chroma=bass, chroma_long=c, tonic=0, major=True, key_clarity=0.8,
                                chroma_now=c, bass_now=bass)
    x, y = transposed(row[None, :], np.array([spec.chord_index(0, "maj")]), 2)
    assert spec.chord_name(int(y[0])) == "D"
    assert spec.chord_name(int(HarmonyFallback()(x[0])[:61].argmax())) == "D"
    assert x[0, spec.HARMONY.input_slice("tonic")].argmax() == 2
