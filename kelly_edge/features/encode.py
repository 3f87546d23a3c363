"""Model input encoders: plain values in, the spec's input vector out.

These are the *only* functions that lay out model inputs. The runtime calls them with what the
feature context and the generator know; the trainer calls them with values taken from symbolic
music or rendered audio. Keeping them pure and keyword-only is what makes training and run time
see the same features (the original plugin's models were fed vectors unlike their training data).

Each encoder writes into a caller-owned ``out`` array (preallocated once, float32) and returns it,
so the per-hop path allocates nothing.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kelly_edge.models import spec
from kelly_edge.models.spec import Desc

_TWO_PI = 2.0 * math.pi


# index i of a rotation table row is (i + tonic) % 12: taking it rotates index 0 to the tonic
_ROTATIONS = (np.arange(spec.N_PITCH_CLASSES)[None, :] + np.arange(spec.N_PITCH_CLASSES)[:, None]) % spec.N_PITCH_CLASSES
_ROTATIONS_MINOR = _ROTATIONS + spec.N_PITCH_CLASSES  # the minor keys' half of key_corr
_EMO_MEL = spec.EMOTION.input_slice("mel_summary")
_EMO_CW = spec.EMOTION.input_slice("chroma_window")
_EMO_CL = spec.EMOTION.input_slice("chroma_long")
_EMO_KC_MAJOR = slice(spec.EMOTION.input_slice("key_corr").start, spec.EMOTION.input_slice("key_corr").start + 12)
_EMO_KC_MINOR = slice(_EMO_KC_MAJOR.stop, spec.EMOTION.input_slice("key_corr").stop)
_EMO_DESC = spec.EMOTION.input_slice("descriptors")
_H_CS, _H_CW, _H_BS, _H_BC, _H_CL, _H_TONIC, _H_CN, _H_BN, _H_RESERVED = (spec.HARMONY.input_slice(n) for n in (
    "chroma_short", "chroma_window", "bass_short", "bass_chroma", "chroma_long", "tonic", "chroma_now", "bass_now",
    "reserved"))
_H_MODE, _H_CLARITY = spec.HARMONY.input_slice("mode").start, spec.HARMONY.input_slice("key_clarity").start


def _one_hot(out: np.ndarray, part: slice, index: int | None) -> None:
    out[part] = 0.0
    if index is not None:
        out[part.start + index] = 1.0


def encode_emotion(
    out: np.ndarray,
    *,
    mel_summary: np.ndarray,
    chroma_window: np.ndarray,
    chroma_long: np.ndarray,
    key_corr: np.ndarray,
    tonic: int,
    descriptors: np.ndarray,
) -> np.ndarray:
    """EmotionRecognizer input (128,).

    ``mel_summary`` (64,) dB; ``chroma_window``/``chroma_long`` (12,) absolute pitch classes;
    ``key_corr`` (24,) correlations for the keys C..B major then C..B minor; ``tonic`` the detected
    tonic; ``descriptors`` (16,) in :class:`~kelly_edge.models.spec.Desc` order. Chroma and key
    correlations are rotated so index 0 is the tonic: mode only exists relative to the tonic.
    """
    rot = _ROTATIONS[tonic % spec.N_PITCH_CLASSES]  # == np.roll(v, -tonic), without allocating
    out[_EMO_MEL] = mel_summary
    np.take(chroma_window, rot, out=out[_EMO_CW])
    np.take(chroma_long, rot, out=out[_EMO_CL])
    np.take(key_corr, rot, out=out[_EMO_KC_MAJOR])
    np.take(key_corr, _ROTATIONS_MINOR[tonic % spec.N_PITCH_CLASSES], out=out[_EMO_KC_MINOR])
    out[_EMO_DESC] = descriptors
    return out


def encode_melody(
    out: np.ndarray,
    *,
    vadi: np.ndarray,
    tonic: int,
    major: bool,
    chord: int,
    prev_notes: tuple[int, ...],
    step: int,
    heard_chroma: np.ndarray,
) -> np.ndarray:
    """MelodyTransformer input (64,).

    ``chord`` is a HarmonyPredictor class index (``spec.NO_CHORD`` for none); ``prev_notes`` the
    last melody notes, most recent last (any length, may be empty); ``step`` the 16th step 0..15
    of the note to be chosen.
    """
    s = spec.MELODY
    out[s.input_slice("vadi")] = vadi
    _one_hot(out, s.input_slice("tonic"), tonic)
    out[s.input_slice("mode").start] = 1.0 if major else 0.0
    root_quality = spec.chord_of_index(chord)
    _one_hot(out, s.input_slice("chord_root"), None if root_quality is None else root_quality[0])
    _one_hot(
        out,
        s.input_slice("chord_quality"),
        None if root_quality is None else spec.CHORD_QUALITIES.index(root_quality[1]),
    )
    _one_hot(out, s.input_slice("prev_pc"), prev_notes[-1] % 12 if prev_notes else None)
    out[s.input_slice("prev_pitch").start] = prev_notes[-1] / 127.0 if prev_notes else 0.5
    i1 = prev_notes[-1] - prev_notes[-2] if len(prev_notes) >= 2 else 0
    i2 = prev_notes[-2] - prev_notes[-3] if len(prev_notes) >= 3 else 0
    out[s.input_slice("prev_interval").start] = max(-1.0, min(1.0, i1 / 12.0))
    out[s.input_slice("prev_interval2").start] = max(-1.0, min(1.0, i2 / 12.0))
    phase = s.input_slice("beat_phase").start
    out[phase] = math.sin(_TWO_PI * step / spec.N_STEPS)
    out[phase + 1] = math.cos(_TWO_PI * step / spec.N_STEPS)
    out[s.input_slice("downbeat").start] = 1.0 if step % 8 == 0 else 0.0
    out[s.input_slice("heard_chroma")] = heard_chroma
    return out


def encode_harmony(
    out: np.ndarray,
    *,
    chroma_short: np.ndarray,
    chroma_window: np.ndarray,
    bass_short: np.ndarray,
    bass_chroma: np.ndarray,
    chroma_long: np.ndarray,
    tonic: int,
    major: bool,
    key_clarity: float,
    chroma_now: np.ndarray,
    bass_now: np.ndarray,
) -> np.ndarray:
    """HarmonyPredictor input (128,): what is heard now (chroma and bass chroma over ~0.08 s,
    ~0.25 s and ~1 s, absolute pitch classes) and the key context. It recognises the chord sounding now; what
    came before is the chord decoder's business (:mod:`kelly_edge.generate.chord_decoder`), so
    no previous chord is fed back (a net trained on true previous chords learns to copy them)."""
    out[_H_CS] = chroma_short
    out[_H_CW] = chroma_window
    out[_H_BS] = bass_short
    out[_H_BC] = bass_chroma
    out[_H_CL] = chroma_long
    _one_hot(out, _H_TONIC, tonic)
    out[_H_MODE] = 1.0 if major else 0.0
    out[_H_CLARITY] = key_clarity
    out[_H_CN] = chroma_now
    out[_H_BN] = bass_now
    out[_H_RESERVED] = 0.0
    return out


def encode_harmony_context(out: np.ndarray, ctx: Any) -> np.ndarray:
    """:func:`encode_harmony` of what a :class:`~kelly_edge.features.context.FeatureContext` holds
    now: the one mapping the engine and the trainer (``tools/train/build_chords.py``) share."""
    return encode_harmony(
        out, chroma_short=ctx.chroma_short, chroma_window=ctx.chroma_window, bass_short=ctx.bass_short,
        bass_chroma=ctx.bass_chroma, chroma_long=ctx.chroma_long, tonic=ctx.tonic, major=ctx.major,
        key_clarity=ctx.key_clarity, chroma_now=ctx.chroma_now, bass_now=ctx.bass_now,
    )


def encode_dynamics(
    out: np.ndarray,
    *,
    vadi: np.ndarray,
    descriptors: np.ndarray,
    accents: np.ndarray,
) -> np.ndarray:
    """DynamicsEngine input (32,). ``accents`` (16,) heard onset strength per step, max 1."""
    s = spec.DYNAMICS
    d = descriptors
    out[s.input_slice("vadi")] = vadi
    lv = s.input_slice("level").start
    out[lv] = d[Desc.INDEX["level_db"]] / 100.0 + 1.0
    out[lv + 1] = d[Desc.INDEX["level_db_long"]] / 100.0 + 1.0
    out[lv + 2] = d[Desc.INDEX["level_range_db"]] / 40.0
    on = s.input_slice("onsets").start
    out[on] = d[Desc.INDEX["onset_rate"]] / 10.0
    out[on + 1] = min(1.0, max(0.0, float(d[Desc.INDEX["onset_strength"]])))
    sp = s.input_slice("spectrum").start
    out[sp] = d[Desc.INDEX["centroid_hz"]] / 4000.0
    out[sp + 1] = d[Desc.INDEX["flatness"]]
    out[s.input_slice("tempo").start] = d[Desc.INDEX["tempo_bpm"]] / 200.0
    out[s.input_slice("accents")] = accents
    out[s.input_slice("silence").start] = d[Desc.INDEX["silence"]]
    out[s.input_slice("reserved")] = 0.0
    return out


def encode_groove(
    out: np.ndarray,
    *,
    vadi: np.ndarray,
    heard_bar: np.ndarray,
    heard_prev_bar: np.ndarray,
    tempo_bpm: float,
    onset_rate: float,
    prev_hits: np.ndarray,
) -> np.ndarray:
    """GroovePredictor input (64,). Bars are (16,) onset strengths, max 1; ``prev_hits`` (16,) 0/1."""
    s = spec.GROOVE
    out[s.input_slice("vadi")] = vadi
    out[s.input_slice("heard_bar")] = heard_bar
    out[s.input_slice("heard_prev_bar")] = heard_prev_bar
    out[s.input_slice("tempo").start] = tempo_bpm / 200.0
    out[s.input_slice("onset_rate").start] = onset_rate / 10.0
    both = heard_bar + heard_prev_bar
    total = float(both.sum())
    offbeat = float(both[1::2].sum())
    out[s.input_slice("syncopation").start] = offbeat / total if total > 1e-9 else 0.0
    out[s.input_slice("swing").start] = swing_estimate(heard_bar, heard_prev_bar)
    out[s.input_slice("prev_hits")] = prev_hits
    out[s.input_slice("reserved")] = 0.0
    return out


def swing_estimate(heard_bar: np.ndarray, heard_prev_bar: np.ndarray) -> float:
    """Swing cue 0..0.5 (in 16ths): the share of off-beat 8th energy that lands a 16th late.

    Swung 8ths land late, between the off-beat 8th (steps 2, 6, 10, 14) and the 16th after it
    (steps 3, 7, 11, 15). Straight 8ths give 0; every off-beat on the late 16th gives 0.5.
    """
    both = heard_bar + heard_prev_bar
    on_8th = float(both[2::4].sum())
    late = float(both[3::4].sum())
    total = on_8th + late
    return 0.5 * late / total if total > 1e-9 else 0.0
