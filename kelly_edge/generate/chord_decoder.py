"""Key-aware decoding of the harmony model's per-step outputs into "the chord sounding now".

The HarmonyPredictor says, every other hop (or each 16th step at a slower ``models.harmony.rate``),
how likely each chord is from the last ~0.08–1 s of audio. On its own that flickers (a passing tone, a strum's attack) and happily names a chord
outside the key. :class:`ChordDecoder` is a causal HMM forward filter over the 61 chord classes:

    predicted = stay x posterior + (1 - stay) x prior(key)            (a chord change may happen)
    posterior ~ predicted x observation ** sharpness x weight(key)     (what the model hears now)

``prior(key)`` weighs the chords diatonic to the held key 1 and the others ``outside`` (0.08), and
``weight(key)`` the evidence for an out-of-key chord by ``outside_evidence`` (0.4) on every
step: an out-of-key chord wins only while the model hears it 2.5x more likely than the best
chord of the key, step after step (a secondary dominant, a borrowed chord played as such), never
because it is narrowly ahead. A change is taken
as soon as the filtered posterior moves (no look-ahead). Updated every hop, the generator uses a
short memory and sharpened observations (``generator.HOP_DECODER``): on the dev pieces the
decoder then adds ~0.02 s to the model's own lag, where a long memory added ~0.1 s. The transition has the rank-one form
above, so a step costs O(61) and allocates nothing.
"""

from __future__ import annotations

import numpy as np

from kelly_edge.generate import theory
from kelly_edge.models import spec

STAY = 0.7
"""Probability, per 16th step, that no chord change happens. With OUTSIDE_EVIDENCE, chosen on a dev
set of rendered accompaniment (seeds 500 000+, neither training nor the measurement): 0.6–0.88
moved majmin by 2 points, lower is quicker but flickers more."""
OUTSIDE = 0.08
"""Prior weight of entering a chord outside the key (diatonic chords and N.C.: 1)."""
OUTSIDE_EVIDENCE = 0.4
"""Weight of the evidence for a chord outside the key, per step (in the key and N.C.: 1)."""
SHARPNESS = 1.0
"""Exponent on the model's probabilities (1: taken as they are)."""
FLOOR = 1e-4
"""Smallest observation probability: one confident mistake cannot zero a chord out."""


class ChordDecoder:
    """Per-step HMM forward filter (see the module docstring). Not thread-safe; one per generator."""

    def __init__(
        self, *, stay: float = STAY, outside: float = OUTSIDE, outside_evidence: float = OUTSIDE_EVIDENCE, sharpness: float = SHARPNESS
    ) -> None:
        n = spec.N_CHORD_CLASSES
        self.stay = float(stay)
        self.sharpness = float(sharpness)
        self._priors: dict[tuple[int, bool], np.ndarray] = {}
        self._weights: dict[tuple[int, bool], np.ndarray] = {}
        for tonic in range(12):
            for major in (True, False):
                in_key = np.ones(n, dtype=bool)
                in_key[: spec.N_CHORDS] = theory.diatonic_chords(tonic, major)
                prior = np.where(in_key, 1.0, float(outside))
                self._priors[(tonic, major)] = prior / prior.sum()
                self._weights[(tonic, major)] = np.where(in_key, 1.0, float(outside_evidence))
        self.posterior = np.full(n, 1.0 / n)
        self._obs = np.zeros(n)
        self._tmp = np.zeros(n)

    def reset(self) -> None:
        """Forget what was heard (start from a flat posterior)."""
        self.posterior[...] = 1.0 / spec.N_CHORD_CLASSES

    def update(self, probs: np.ndarray, tonic: int, major: bool) -> np.ndarray:
        """One step: ``probs`` (>= 61,) the model's chord distribution (non-negative, finite);
        returns the filtered posterior (61,), a view valid until the next update."""
        post, obs, tmp = self.posterior, self._obs, self._tmp
        key = (tonic % 12, bool(major))
        np.copyto(obs, probs[: spec.N_CHORD_CLASSES])
        np.maximum(obs, FLOOR, out=obs)
        if self.sharpness != 1.0:
            np.power(obs, self.sharpness, out=obs)
        obs *= self._weights[key]
        post *= self.stay
        np.multiply(self._priors[key], 1.0 - self.stay, out=tmp)
        post += tmp  # the posterior summed to 1, so the change term is (1 - stay) x prior
        post *= obs
        total = float(post.sum())
        if not total > 0.0:  # cannot happen with the floor; guards NaN all the same
            post[...] = 1.0 / spec.N_CHORD_CLASSES
        else:
            post *= 1.0 / total
        return post
