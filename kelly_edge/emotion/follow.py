"""The emotion the music follows: the recognised VADI, smoothed over audio time, leaned toward the intent.

One owner for the stage and for training: the :class:`~kelly_edge.engine.engine.Engine` feeds it the
emotion model's output at each run, and the dynamics model's training rows
(:mod:`tools.train.build_audio`) are made with the same class fed by the same trained model at the
same rate, so the DynamicsEngine learns from the emotion input it is given on stage.
"""

from __future__ import annotations

import numpy as np

from kelly_edge.emotion import thesaurus
from kelly_edge.emotion.thesaurus import EmotionNode

SMOOTHING_S = 1.0
"""Time constant (audio seconds) of the VADI the generator follows."""


class EmotionFollower:
    """``vadi`` (4,) the heard emotion smoothed; ``emotion_vadi`` (4,) it leaned toward the intent:
    what the music follows. Both start neutral (zeros) at audio time 0 and are updated in place
    (no allocation per update: it runs on the audio path)."""

    def __init__(self, intent: EmotionNode | None = None, amount: float = 0.5, smoothing_s: float = SMOOTHING_S) -> None:
        self.vadi = np.zeros(4, dtype=np.float32)
        self.emotion_vadi = np.zeros(4, dtype=np.float32)
        self.smoothing_s = smoothing_s
        self._intent = intent
        self._amount = float(amount)
        self._d = np.zeros(4, dtype=np.float32)
        self._t = 0.0  # audio time of the last update

    def set_intent(self, intent: EmotionNode | None, amount: float) -> None:
        """Lean toward ``intent`` by ``amount`` 0..1 from now on (None: the playing only)."""
        self._intent = intent
        self._amount = float(amount)
        self._blend()

    def follow(self, heard_vadi: np.ndarray, now: float) -> np.ndarray:
        """Move toward ``heard_vadi`` (clipped to -1..1) by the share of the time constant elapsed
        since the last update at audio time ``now``, whatever the model's rate; returns ``emotion_vadi``."""
        a = min(1.0, (now - self._t) / self.smoothing_s)
        self._t = now
        d = self._d  # clip(heard, -1, 1) - vadi, without allocating (np.clip is slow on 4 values)
        np.minimum(heard_vadi, 1.0, out=d)
        np.maximum(d, -1.0, out=d)
        d -= self.vadi
        d *= a
        self.vadi += d
        self._blend()
        return self.emotion_vadi

    def _blend(self) -> None:
        np.copyto(self.emotion_vadi, self.vadi)
        if self._intent is not None:
            thesaurus.blend_intent(self.emotion_vadi, self._intent, self._amount)
