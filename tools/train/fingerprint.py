"""Fingerprints of the code that lays out each model's inputs, recorded in the manifest.

A model is only as good as the agreement between the features it was trained on and the features
it gets on stage. When the feature code (chroma, key, onsets, levels...) or a model's encoder
changes after training, the shipped net silently sees different inputs (four commits once did
that). So ``train`` records, per model, a SHA-256 over the source of exactly that code, and
``tests/models/test_fingerprint.py`` fails when the code in the tree no longer matches: retrain
the model (``python -m tools.train all --models NAME``) after changing it.

What counts, per model:

- every model: its encoder function(s) in :mod:`kelly_edge.features.encode` and its input layout in
  :mod:`kelly_edge.models.spec`;
- the models trained on audio through the runtime :class:`~kelly_edge.features.context.FeatureContext`
  (emotion, dynamics, harmony): the feature modules it runs (:data:`AUDIO_FEATURE_MODULES`);
- dynamics also what makes its VADI input: the emotion encoder, the emotion fallback (when no
  trained emotion model is there) and the :class:`~kelly_edge.emotion.follow.EmotionFollower` that
  smooths it (the emotion model itself is pinned by the manifest's ``emotion_sha256``).

The symbolic models (melody, groove) do not see the audio feature code in training, so a chroma
change does not invalidate them (their heard-chroma/onset inputs are synthesised by the trainer).
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import textwrap
from pathlib import Path

from kelly_edge.models import spec

REPO = Path(__file__).resolve().parents[2]

AUDIO_FEATURE_MODULES = (
    "kelly_edge.features.context",
    "kelly_edge.features.chroma",
    "kelly_edge.features.key",
    "kelly_edge.features.mel",
    "kelly_edge.features.onset",
    "kelly_edge.features.spectral",
)
"""The modules :class:`~kelly_edge.features.context.FeatureContext` computes features with."""

ENCODERS = {
    "emotion": ("encode_emotion",),
    "melody": ("encode_melody",),
    "harmony": ("encode_harmony", "encode_harmony_context"),
    "dynamics": ("encode_dynamics",),
    "groove": ("encode_groove",),
}
AUDIO_MODELS = ("emotion", "dynamics", "harmony")


def _code_only(source: str) -> str:
    """The source's code as an AST dump without docstrings (and, being an AST, without comments):
    rewording a docstring does not change what a model sees, so it must not call for retraining."""
    tree = ast.parse(textwrap.dedent(source))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
    return ast.dump(tree, include_attributes=False)


def _module_source(name: str) -> str:
    return inspect.getsource(importlib.import_module(name))


def sources(model: str) -> list[tuple[str, str]]:
    """``[(what, source text)]`` that model ``model``'s fingerprint covers, in a fixed order."""
    from kelly_edge.features import encode

    s = spec.BY_NAME[model]
    parts = [(f"encode.{fn}", inspect.getsource(getattr(encode, fn))) for fn in ENCODERS[model]]
    parts.append((f"spec.{s.name}.inputs", repr([(k, v.start, v.stop) for k, v in s.inputs])))
    if model in AUDIO_MODELS:
        parts += [(m, _module_source(m)) for m in AUDIO_FEATURE_MODULES]
    if model == "dynamics":
        from kelly_edge.models import fallbacks

        parts.append(("fallbacks.EmotionFallback", inspect.getsource(fallbacks.EmotionFallback)))
        parts.append(("encode.encode_emotion", inspect.getsource(encode.encode_emotion)))
        parts.append(("kelly_edge.emotion.follow", _module_source("kelly_edge.emotion.follow")))
    return parts


def fingerprint(model: str) -> str:
    """SHA-256 (hex) over :func:`sources` of ``model`` (code only: docstrings and comments do not count)."""
    h = hashlib.sha256()
    for what, text in sources(model):
        h.update(what.encode())
        h.update(b"\0")
        h.update(text.encode() if what.startswith("spec.") else _code_only(text).encode())
        h.update(b"\0")
    return h.hexdigest()
