"""Cue-based emotion labels: what the music's notated/rendered properties *suggest*, not what listeners rated.

No emotion-labelled music ships offline, so every "emotion" target in this pipeline is a documented
function of cues that music psychology ties to perceived emotion (Gabrielsson & Lindström 2010;
Juslin 2001): **mode -> valence** (major pleasant, minor unpleasant), **tempo, loudness and note
density -> arousal**, loudness -> dominance. The same function labels the rendered audio for the
EmotionRecognizer and supplies the ``vadi`` inputs of the symbolic models, so the whole chain
agrees on what "valence 0.6" means. Users with DEAM/EMOPIA ratings train on those instead
(:mod:`tools.datasets`).
"""

from __future__ import annotations

import math

import numpy as np

from kelly_edge.emotion.thesaurus import family_memberships

TEMPO_CENTRE_BPM = 100.0
DENSITY_CENTRE_NPS = 3.0  # notes per second


def cue_vadi(*, major: bool, tempo_bpm: float, notes_per_s: float, loudness: float) -> np.ndarray:
    """``(4,) float32`` valence, arousal, dominance (-1..1) and intensity (0..1) from musical cues.

    ``loudness`` is the played dynamic 0..1 (MIDI velocity / 127 at the render's velocity scale).
    valence = 0.6 * mode + 0.25 * tempo cue; arousal = 0.4 * tempo + 0.35 * density + 0.35 * loudness
    cues; dominance = 0.6 * loudness + 0.2 * mode; intensity = distance from neutral, 0..1.
    """
    mode = 1.0 if major else -1.0
    t = math.tanh((tempo_bpm - TEMPO_CENTRE_BPM) / 40.0)
    d = math.tanh((notes_per_s - DENSITY_CENTRE_NPS) / 2.0)
    loud = 2.0 * min(1.0, max(0.0, loudness)) - 1.0
    v = 0.6 * mode + 0.25 * t
    a = 0.4 * t + 0.35 * d + 0.35 * loud
    dom = 0.6 * loud + 0.2 * mode
    v, a, dom = (max(-1.0, min(1.0, z)) for z in (v, a, dom))
    inten = min(1.0, math.sqrt(v * v + a * a) / math.sqrt(2.0) + 0.1)
    return np.array([v, a, dom, inten], dtype=np.float32)


def families(vadi: np.ndarray) -> np.ndarray:
    """``(8,) float32`` family memberships of a VADI point (the runtime thesaurus's kernel map)."""
    out = np.zeros(8, dtype=np.float32)
    family_memberships(float(vadi[0]), float(vadi[1]), out, dominance=float(vadi[2]))
    return out
