"""The five model contracts: one table that the runtime, the fallbacks and the trainer all read.

Every model is a pure function ``(n_in,) float32 -> (n_out,) float32``. The feature encoders
(:mod:`kelly_edge.features.encode`) build the inputs, the TFLite runner or the heuristic fallback
computes the outputs, and the generator decodes them. Each dimension has a name here; index
ranges are exposed as ``slice`` objects so nobody writes a bare ``vec[17:29]``.

All inputs are *raw* (not standardised): a trained model standardises inside its runner with
statistics stored beside it, so a fallback and a net consume exactly the same vector.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

N_MELS = 128
N_PITCH_CLASSES = 12
N_STEPS = 16  # 16th notes per 4/4 bar

PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

# --- chord vocabulary (HarmonyPredictor output) --------------------------------------------
CHORD_QUALITIES = ("maj", "min", "7", "m7", "dim")
"""Chord qualities, in output order; index ``root * 5 + quality``."""
CHORD_INTERVALS: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {"maj": (0, 4, 7), "min": (0, 3, 7), "7": (0, 4, 7, 10), "m7": (0, 3, 7, 10), "dim": (0, 3, 6)}
)
N_CHORDS = N_PITCH_CLASSES * len(CHORD_QUALITIES)  # 60
NO_CHORD = N_CHORDS  # index 60: "N.C."
N_CHORD_CLASSES = N_CHORDS + 1  # 61 used of the 64 outputs


def chord_index(root: int, quality: str) -> int:
    """Output index of a chord: ``root`` is a pitch class 0..11, ``quality`` one of CHORD_QUALITIES."""
    return (root % 12) * len(CHORD_QUALITIES) + CHORD_QUALITIES.index(quality)


def chord_of_index(index: int) -> tuple[int, str] | None:
    """``(root, quality)`` of an output index, or None for no chord."""
    if index >= N_CHORDS:
        return None
    return index // len(CHORD_QUALITIES), CHORD_QUALITIES[index % len(CHORD_QUALITIES)]


def chord_name(index: int) -> str:
    """Human name of a chord index, e.g. ``"Am"``, ``"G7"``, ``"N.C."``."""
    chord = chord_of_index(index)
    if chord is None:
        return "N.C."
    root, quality = chord
    suffix = {"maj": "", "min": "m", "7": "7", "m7": "m7", "dim": "dim"}[quality]
    return PITCH_NAMES[root] + suffix


# --- emotion vector (EmotionRecognizer output; first 4 dims feed every other model) ----------
EMOTION_FAMILIES = ("sadness", "anger", "fear", "joy", "trust", "anticipation", "surprise", "disgust")


class Emo:
    """EmotionRecognizer output layout (64)."""

    VALENCE = 0  # -1..1, unpleasant .. pleasant
    AROUSAL = 1  # -1..1, calm .. excited
    DOMINANCE = 2  # -1..1, submissive .. in control
    INTENSITY = 3  # 0..1
    VADI = slice(0, 4)
    FAMILIES = slice(4, 12)  # membership 0..1 per EMOTION_FAMILIES, summing to 1
    TONAL = slice(12, 24)  # long-term chroma rotated to the tonic, max 1 (what the net heard tonally)
    KEY_CORR = slice(24, 48)  # Krumhansl correlations, 12 major then 12 minor, rotated to the tonic
    DESCRIPTORS = slice(48, 64)  # the 16 level/onset/spectral descriptors (see Desc), passed through


class Desc:
    """The 16 audio descriptors (EmotionRecognizer input 112..127, emotion output 48..63)."""

    NAMES = (
        "level_db",  # short-term RMS level, dBFS after input gain, -100..0
        "level_db_long",  # ~3 s mean level, dBFS
        "level_range_db",  # ~3 s dynamic range (p90 - p10 of hop levels), dB
        "onset_rate",  # onsets per second over ~3 s
        "onset_strength",  # mean spectral flux, ~3 s, non-negative
        "tempo_bpm",  # onset-based tempo estimate, 0 when unknown
        "pulse_clarity",  # 0..1, how periodic the onsets are
        "centroid_hz",  # spectral centroid, Hz, ~1 s smoothed
        "rolloff_hz",  # 85 % spectral roll-off, Hz
        "flatness",  # spectral flatness 0..1 (noise-like = 1)
        "low_ratio",  # energy share below 250 Hz, 0..1
        "high_ratio",  # energy share above 2 kHz, 0..1
        "key_clarity",  # best key correlation, -1..1
        "mode_margin",  # best major minus best minor correlation, -2..2 (>0 leans major)
        "silence",  # share of hops under the level gate in ~3 s, 0..1
        "crest_db",  # peak-to-RMS ratio of the last hop, dB
    )
    INDEX: Mapping[str, int] = MappingProxyType({n: i for i, n in enumerate(NAMES)})


@dataclass(frozen=True)
class ModelSpec:
    """Static facts about one model: its shapes, file, layer sizes and the meaning of each dim."""

    name: str  # short key used in config, reports and file names
    title: str  # the original plugin's class name
    n_in: int
    n_out: int
    hidden: tuple[int, ...]
    inputs: tuple[tuple[str, slice], ...]  # named input ranges, in order, covering 0..n_in
    outputs: tuple[tuple[str, slice], ...]
    output_kind: str  # "regression", "softmax" or "sigmoid_tanh" (see docs of each output range)
    priority: int  # lower runs first in a hop

    @property
    def filename(self) -> str:
        return f"{self.name}.tflite"

    def input_slice(self, part: str) -> slice:
        return dict(self.inputs)[part]

    def output_slice(self, part: str) -> slice:
        return dict(self.outputs)[part]


def _ranges(*parts: tuple[str, int]) -> tuple[tuple[str, slice], ...]:
    out, start = [], 0
    for name, width in parts:
        out.append((name, slice(start, start + width)))
        start += width
    return tuple(out)


EMOTION = ModelSpec(
    name="emotion",
    title="EmotionRecognizer",
    n_in=128,
    n_out=64,
    hidden=(512, 256, 128),
    inputs=_ranges(
        ("mel_summary", 64),  # 64 bands (pairs of the 128 log-mel bands), ~1 s mean, dB rel. full scale
        ("chroma_window", 12),  # ~1 s chroma rotated to the detected tonic, max 1
        ("chroma_long", 12),  # ~20 s chroma rotated to the detected tonic, max 1
        ("key_corr", 24),  # Krumhansl correlations of chroma_long, 12 major + 12 minor, rotated to tonic
        ("descriptors", 16),  # Desc.NAMES
    ),
    outputs=_ranges(("vadi", 4), ("families", 8), ("tonal", 12), ("key_corr", 24), ("descriptors", 16)),
    output_kind="regression",
    priority=0,
)

MELODY = ModelSpec(
    name="melody",
    title="MelodyTransformer",
    n_in=64,
    n_out=128,
    hidden=(256, 256, 256),
    inputs=_ranges(
        ("vadi", 4),  # emotion 0..3
        ("tonic", 12),  # one-hot key tonic
        ("mode", 1),  # 1 major, 0 minor
        ("chord_root", 12),  # one-hot root of the current chord (all zero: no chord)
        ("chord_quality", 5),  # one-hot CHORD_QUALITIES
        ("prev_pc", 12),  # one-hot pitch class of the previous melody note (zero: none yet)
        ("prev_pitch", 1),  # previous melody note / 127 (0.5 when none)
        ("prev_interval", 1),  # last interval in semitones / 12, clipped to -1..1
        ("prev_interval2", 1),  # the interval before it / 12
        ("beat_phase", 2),  # sin, cos of the 16th step position in the bar
        ("downbeat", 1),  # 1 on steps 0 and 8
        ("heard_chroma", 12),  # ~1 s chroma of the input (absolute), max 1
    ),
    outputs=_ranges(("note_prob", 128)),  # softmax over MIDI note numbers 0..127
    output_kind="softmax",
    priority=2,
)

HARMONY = ModelSpec(
    name="harmony",
    title="HarmonyPredictor",
    n_in=128,
    n_out=64,
    hidden=(256, 128),
    inputs=_ranges(
        ("chroma_short", 12),  # ~0.25 s of chroma (the chord sounding now), absolute, max 1
        ("chroma_window", 12),  # ~1 s of chroma, absolute, max 1
        ("bass_short", 12),  # ~0.25 s chroma of the band below 250 Hz, max 1
        ("bass_chroma", 12),  # ~1 s of the same
        ("chroma_long", 12),  # ~20 s chroma, absolute, max 1
        ("tonic", 12),  # one-hot held tonic
        ("mode", 1),  # 1 major, 0 minor
        ("key_clarity", 1),  # -1..1
        ("chroma_now", 12),  # ~0.08 s of chroma (a change shows within ~0.1 s), absolute, max 1
        ("bass_now", 12),  # ~0.08 s of the bass band's chroma, max 1
        ("reserved", 30),
    ),
    outputs=_ranges(("chord_prob", N_CHORD_CLASSES), ("reserved", 3)),  # softmax; 60 = N.C.
    output_kind="softmax",
    priority=1,
)

DYNAMICS = ModelSpec(
    name="dynamics",
    title="DynamicsEngine",
    n_in=32,
    n_out=16,
    hidden=(128, 64),
    inputs=_ranges(
        ("vadi", 4),
        ("level", 3),  # level_db/100+1, level_db_long/100+1, level_range_db/40 (0..1-ish)
        ("onsets", 2),  # onset_rate/10, onset_strength (clipped 0..1)
        ("spectrum", 2),  # centroid/4000 Hz, flatness
        ("tempo", 1),  # tempo_bpm / 200
        ("accents", 16),  # heard onset strength per 16th step of the last bar, max 1
        ("silence", 1),  # share of silent hops
        ("reserved", 3),
    ),
    outputs=_ranges(
        ("velocity", 1),  # base velocity 0..1 (-> 1..127)
        ("velocity_spread", 1),  # random spread 0..1 (x 30 velocity units)
        ("accent", 1),  # extra velocity on strong steps, 0..1 (x 40)
        ("length", 1),  # note length as a share of the step grid it spans, 0.05..1
        ("cc1", 1),  # modulation 0..1
        ("cc11", 1),  # expression 0..1
        ("cc74", 1),  # brightness 0..1
        ("cc64", 1),  # sustain pedal probability 0..1
        ("voice_balance", 3),  # melody, chord, bass velocity scale 0..1 (x 1.5)
        ("humanize", 1),  # velocity/timing humanisation 0..1
        ("reserved", 4),
    ),
    output_kind="regression",
    priority=3,
)

GROOVE = ModelSpec(
    name="groove",
    title="GroovePredictor",
    n_in=64,
    n_out=32,
    hidden=(128, 64),
    inputs=_ranges(
        ("vadi", 4),
        ("heard_bar", N_STEPS),  # onset strength per 16th step of the last bar, max 1
        ("heard_prev_bar", N_STEPS),  # the bar before
        ("tempo", 1),  # tempo_bpm / 200
        ("onset_rate", 1),  # / 10
        ("syncopation", 1),  # share of onset energy on off-beat 16ths, 0..1
        ("swing", 1),  # lateness of off-beat 8ths, 0..0.5 of a 16th (encode.swing_estimate)
        ("prev_hits", N_STEPS),  # what the box played last bar (melody onsets), 0/1
        ("reserved", 8),
    ),
    outputs=_ranges(
        ("hit_prob", N_STEPS),  # 0..1 per 16th step of the next bar
        ("micro_timing", N_STEPS),  # -0.5..0.5 of a 16th per step (negative = early)
    ),
    output_kind="sigmoid_tanh",
    priority=4,
)

MODELS: tuple[ModelSpec, ...] = (EMOTION, HARMONY, MELODY, DYNAMICS, GROOVE)
"""All five, in default priority order."""
BY_NAME: Mapping[str, ModelSpec] = MappingProxyType({m.name: m for m in MODELS})
MODEL_NAMES: tuple[str, ...] = tuple(m.name for m in MODELS)


def _check_table() -> None:
    for m in MODELS:
        for ranges, n in ((m.inputs, m.n_in), (m.outputs, m.n_out)):
            assert ranges[0][1].start == 0 and ranges[-1][1].stop == n, m.name
            for (_, a), (_, b) in zip(ranges, ranges[1:]):
                assert a.stop == b.start, m.name


_check_table()
