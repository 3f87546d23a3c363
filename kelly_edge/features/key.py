"""Key finding: key profiles correlated with a chroma vector, and a key tracker over time.

The 24 candidate keys are laid out as everywhere else in the project: C..B major (0..11), then
C..B minor (12..23). Correlation is Pearson's r, so the chroma's scale does not matter.

Audio chroma is not a score's pitch-class histogram: every note also sounds its harmonics (the
3rd a twelfth up, the 5th two octaves and a major third up...), which pulls plain KK towards the
dominant key (C minor heard as G major). Following Gómez (2006, "Tonal description of music
audio signals"), the *audio* profiles predict that: each profile weight is spread over the pitch
classes of its first ``harmonics`` partials with amplitude ``decay**(n-1)``. With 8 partials and
decay 0.8, rendered Bach chorales get the key right ~80 % of the time instead of ~60 %. Use
``SYMBOLIC_PROFILES`` for chroma taken from notes (a score, MIDI), ``AUDIO_PROFILES`` (the
default) for chroma measured from sound.

Which profile: on 64 rendered corpus pieces (34 minor; magnitude chroma and the tracker below,
MIREX weighted score every 2 s after 8 s), Temperley (2005) scored 0.76, Bellman–Budge 0.74,
Krumhansl–Kessler 0.70, EDMA 0.55; but on the demo (Joplin's *Maple Leaf Rag*, A♭ major, a
piano render outside that set) Bellman–Budge and Temperley hear A♭ *minor* most of the time, KK
never. ``AUDIO_PROFILES`` is 0.8 KK + 0.2 Temperley with 8 harmonics: 0.72 on the renders and
A♭ major throughout the demo. The squared-spectrum chroma the box used before scored 0.61 with KK.
Measured afterwards on 10 real recordings whose key essentia's four profiles agree on, the box's
held key scores 0.87 (0.62 before); ``python -m tools.train.measure key`` / ``key-real``.

:class:`KeyTracker` turns the correlations of a short (~1 s) chroma into a held key: an HMM
forward filter over the 24 keys whose evidence per decision is ``beta x correlation`` and whose
transition keeps the key with probability ``1 - switch``. A sustained new key wins after a few
seconds (a modulation is followed within ~5 s, median), a passing chord cannot move it, and clear
evidence moves it sooner than a fixed hold would.
"""

from __future__ import annotations

import math

import numpy as np

from kelly_edge.models import spec

KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
"""Krumhansl & Kessler (1982) probe-tone ratings for a major key, tonic first."""
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
"""Krumhansl & Kessler (1982) probe-tone ratings for a minor key, tonic first."""

BB_MAJOR = np.array([16.80, 0.86, 12.95, 1.41, 13.49, 11.93, 1.25, 20.28, 1.80, 8.04, 0.62, 10.57])
"""Bellman–Budge (2005) pitch-class frequencies of major-key chords in a large corpus, tonic first."""
BB_MINOR = np.array([18.16, 0.69, 12.99, 13.34, 1.07, 11.15, 1.38, 21.07, 7.49, 1.53, 0.92, 10.21])
"""Bellman–Budge (2005) pitch-class frequencies for a minor key, tonic first."""
TEMPERLEY_MAJOR = np.array([0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400])
"""Temperley (2005, Kostka–Payne corpus) major profile, tonic first."""
TEMPERLEY_MINOR = np.array([0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330])
"""Temperley (2005) minor profile, tonic first."""
EDMA_MAJOR = np.array([1.0, 0.2875, 0.5020, 0.4048, 0.6050, 0.5614, 0.3205, 0.7966, 0.3159, 0.4506, 0.4202, 0.3889])
"""Faraldo's EDMA major profile (measured from audio already: use without harmonics)."""
EDMA_MINOR = np.array([1.0, 0.3096, 0.4415, 0.5827, 0.3262, 0.4948, 0.2889, 0.7804, 0.4328, 0.2903, 0.5331, 0.3217])
"""Faraldo's EDMA minor profile."""

PROFILE_PAIRS = {
    "krumhansl": (KK_MAJOR, KK_MINOR),
    "bellman_budge": (BB_MAJOR, BB_MINOR),
    "temperley": (TEMPERLEY_MAJOR, TEMPERLEY_MINOR),
    "edma": (EDMA_MAJOR, EDMA_MINOR),
}
"""The (major, minor) profiles compared by ``python -m tools.train.measure key``."""

N_KEYS = 2 * spec.N_PITCH_CLASSES


def key_profiles(*, harmonics: int = 1, decay: float = 0.8, profile: str = "krumhansl") -> np.ndarray:
    """``(24, 12) float64`` key templates: each key's profile rotated to its tonic, centred, unit-norm.

    ``harmonics`` > 1 spreads each pitch class's weight over the pitch classes of its first
    ``harmonics`` partials (partial ``n`` at ``round(12·log2 n)`` semitones, weight
    ``decay**(n-1)``). Centred rows make ``P @ c`` equal ``P @ (c - mean(c))``, so Pearson's r
    needs no temporary. ``profile`` names a pair of :data:`PROFILE_PAIRS`.
    """
    n = spec.N_PITCH_CLASSES
    spread = np.zeros(n)
    for h in range(1, max(1, int(harmonics)) + 1):
        spread[int(round(12.0 * math.log2(h))) % n] += decay ** (h - 1)
    rows = []
    for weights in PROFILE_PAIRS[profile]:
        heard = sum(weights[pc] * np.roll(spread, pc) for pc in range(n))
        for tonic in range(n):
            r = np.roll(heard, tonic)
            r = r - r.mean()
            rows.append(r / np.linalg.norm(r))
    return np.array(rows)


SYMBOLIC_PROFILES = key_profiles(harmonics=1)
"""Plain Krumhansl–Kessler templates, for pitch-class histograms of notes."""
def blended_profiles(weights: dict[str, float], *, harmonics: int = 8, decay: float = 0.8) -> np.ndarray:
    """``(24, 12)`` centred unit-norm rows of a weighted sum of :func:`key_profiles` templates."""
    rows = sum(w * key_profiles(harmonics=harmonics, decay=decay, profile=name) for name, w in weights.items())
    rows = rows - rows.mean(axis=1, keepdims=True)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


AUDIO_WEIGHTS = {"krumhansl": 0.8, "temperley": 0.2}
AUDIO_PROFILES = blended_profiles(AUDIO_WEIGHTS, harmonics=8, decay=0.8)
"""0.8 Krumhansl–Kessler + 0.2 Temperley, as heard with 8 harmonics (decay 0.8), for chroma from audio."""


def key_correlations(chroma: np.ndarray, out: np.ndarray, *, profiles: np.ndarray = AUDIO_PROFILES) -> np.ndarray:
    """Pearson correlation of ``chroma`` (12,) with each of the 24 key profiles, into ``out`` (24,).

    ``profiles`` is a ``(24, 12)`` matrix of centred unit-norm rows (:func:`key_profiles`):
    ``AUDIO_PROFILES`` for measured chroma, ``SYMBOLIC_PROFILES`` for note counts. A flat (or
    all-zero) chroma has no tonal information: every correlation is 0.
    """
    n = spec.N_PITCH_CLASSES
    deviation = chroma - float(chroma.sum()) / n  # centred first: sum(x^2) - n*mean^2 cancels badly
    ss = float(np.dot(deviation, deviation))  # sum of squared deviations
    # flat = no tonal information; the centred sum's round-off is ~1e-32 of the energy
    if not ss > 1e-20 * max(1e-30, float(np.dot(chroma, chroma))):
        out[...] = 0.0
        return out
    np.matmul(profiles, chroma, out=out)  # a ufunc: casts float64 profiles into a float32 out
    out *= 1.0 / math.sqrt(ss)
    np.minimum(out, 1.0, out=out)  # rounding only; two ufuncs are cheaper than np.clip's wrapper
    np.maximum(out, -1.0, out=out)
    return out


def best_key(corr: np.ndarray) -> tuple[int, bool, float, float]:
    """``(tonic, major, clarity, margin)`` of the best key in ``corr`` (24,).

    ``clarity`` is the best correlation (-1..1); ``margin`` the best major minus the best minor
    correlation (-2..2, > 0 leans major).
    """
    n = spec.N_PITCH_CLASSES
    index = int(np.argmax(corr))
    best_major = float(corr[:n].max())
    best_minor = float(corr[n:].max())
    return index % n, index < n, float(corr[index]), best_major - best_minor


def key_index(tonic: int, major: bool) -> int:
    """Index 0..23 of a key in the correlation layout."""
    return tonic % spec.N_PITCH_CLASSES + (0 if major else spec.N_PITCH_CLASSES)


def key_name(tonic: int, major: bool) -> str:
    """Human name, e.g. ``"C major"``, ``"F# minor"`` (spelling from ``spec.PITCH_NAMES``)."""
    return f"{spec.PITCH_NAMES[tonic % spec.N_PITCH_CLASSES]} {'major' if major else 'minor'}"


TRACKER_BETA = 0.2
"""Evidence per decision: log-likelihood ``beta x correlation`` (correlations are -1..1)."""
TRACKER_SWITCH = 1e-3
"""Probability, per decision, of leaving the key (spread evenly over the 23 others)."""


class KeyTracker:
    """Causal HMM forward filter over the 24 keys (see the module docstring); allocation-free.

    :meth:`update` takes one decision's ``(24,)`` correlations and returns the most probable key
    index. Tuned on half of the rendered key set (``python -m tools.train.measure key``: every
    80 ms on a ~1 s chroma, ``beta`` 0.2, ``switch`` 1e-3).
    """

    def __init__(self, *, beta: float = TRACKER_BETA, switch: float = TRACKER_SWITCH) -> None:
        self.beta = float(beta)
        self.switch = float(switch)
        self._logp = np.full(N_KEYS, -math.log(N_KEYS))
        self._p = np.zeros(N_KEYS)
        self.index = -1  # -1 before the first update

    def reset(self) -> None:
        self._logp[...] = -math.log(N_KEYS)
        self.index = -1

    def update(self, corr: np.ndarray) -> int:
        p, logp = self._p, self._logp
        np.subtract(logp, float(logp.max()), out=p)
        np.exp(p, out=p)
        p *= (1.0 - self.switch - self.switch / (N_KEYS - 1)) / float(p.sum())
        p += self.switch / (N_KEYS - 1)  # (1 - s) p_i + s (1 - p_i) / 23, p summing to 1
        np.log(p, out=logp)
        np.multiply(corr, self.beta, out=p)
        logp += p
        self.index = int(logp.argmax())
        return self.index

    def probabilities(self, out: np.ndarray) -> np.ndarray:
        """The filtered key distribution (24,) into ``out``."""
        np.subtract(self._logp, float(self._logp.max()), out=out)
        np.exp(out, out=out)
        out /= float(out.sum())
        return out
