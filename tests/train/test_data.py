"""Data-building pieces of the trainer: chord labels, piece-wise splits, cue labels, standardising."""

from __future__ import annotations

import numpy as np
import pytest

from kelly_edge.models import spec
from tools.train.build_symbolic import build_groove, build_melody, label_chords
from tools.train.cues import cue_vadi
from tools.train.data import split_by_piece
from tools.train.symbolic import Piece, Voice


def _chroma(pcs: list[int]) -> np.ndarray:
    c = np.zeros((1, 12), np.float32)
    c[0, pcs] = 1.0
    return c


@pytest.mark.parametrize(
    "pcs, bass, name",
    [([0, 4, 7], 0, "C"), ([9, 0, 4], 9, "Am"), ([7, 11, 2, 5], 7, "G7"), ([11, 2, 5], 11, "Bdim"), ([2, 5, 9, 0], 2, "Dm7")],
)
def test_chord_templates_name_plain_chords(pcs: list[int], bass: int, name: str) -> None:
    lab = label_chords(_chroma(pcs), _chroma([bass]))
    assert spec.chord_name(int(lab[0])) == name


def test_silence_is_no_chord() -> None:
    assert label_chords(np.zeros((1, 12), np.float32), np.zeros((1, 12), np.float32))[0] == spec.NO_CHORD


def test_split_is_by_piece() -> None:
    groups = np.repeat(np.arange(40), 25)
    tr, te = split_by_piece(groups, test_frac=0.2, seed=3)
    assert len(tr) + len(te) == len(groups)
    assert not set(groups[tr]) & set(groups[te])
    assert len(set(groups[te])) == 8
    tr2, te2 = split_by_piece(groups, test_frac=0.2, seed=3)
    assert np.array_equal(te, te2)  # seeded: reproducible


def test_cues_follow_music_psychology() -> None:
    kw = dict(tempo_bpm=100.0, notes_per_s=3.0, loudness=0.6)
    assert cue_vadi(major=True, **kw)[0] > 0 > cue_vadi(major=False, **kw)[0]
    slow = cue_vadi(major=True, tempo_bpm=60.0, notes_per_s=1.0, loudness=0.3)
    fast = cue_vadi(major=True, tempo_bpm=160.0, notes_per_s=7.0, loudness=0.9)
    assert fast[1] > slow[1]
    for v in (slow, fast):
        assert np.all(np.abs(v[:3]) <= 1) and 0 <= v[3] <= 1


def _cadence_piece(name: str) -> Piece:
    """Four-voice I-IV-V7-I in C, one chord per beat, repeated for 4 bars of 4/4."""
    chords = [(48, 64, 67, 72), (53, 65, 69, 72), (43, 65, 71, 74), (48, 64, 67, 72)] * 4
    voices = []
    for v in range(4):
        pitch = np.array([c[3 - v] for c in chords], np.int16)
        onset = np.arange(len(chords), dtype=np.float64)
        voices.append(Voice(onset, np.ones(len(chords)), pitch, (onset // 4).astype(np.int32), onset % 4))
    return Piece(name, voices, 4.0, np.arange(4) * 4.0, 0, True, float(len(chords)))


def test_builders_encode_spec_shaped_rows_from_a_piece() -> None:
    pieces = [_cadence_piece("a"), _cadence_piece("b")]
    m = build_melody(pieces, seed=0, transpositions=1)
    assert m.x.shape[1] == spec.MELODY.n_in and m.y.min() >= 0 and m.y.max() <= 127
    g = build_groove(pieces, seed=0, versions=1)
    assert g.x.shape[1] == spec.GROOVE.n_in and g.y.shape[1] == spec.GROOVE.n_out
    assert np.all(g.y[:, [0, 4, 8, 12]] == 1) and np.all(g.y[:, 16:] == 0)
