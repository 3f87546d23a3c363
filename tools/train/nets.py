"""Keras builders for the five nets, with the design's layer sizes (``spec.<MODEL>.hidden``).

Heads live inside the graph so the INT8 file emits what the runtime consumes:

- melody: softmax over 128 notes;
- harmony: softmax over 64 where the 3 reserved logits get a fixed -12 (probability ~1e-5 x the
  others, and training never targets them, so they stay ~0);
- groove: sigmoid on the 16 hit probabilities, 0.5*tanh on the 16 micro-timings;
- dynamics: sigmoid on all 16 (every documented output is 0..1; manifest output_mean/std null);
- emotion: linear outputs on standardised targets (manifest output_mean/std de-standardise them).

Inputs are standardised *outside* the graph (manifest input_mean/std) so the one INT8 input scale
covers features of different units evenly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kelly_edge.models import spec

RESERVED_LOGIT = -12.0


def build(name: str, *, seed: int) -> Any:
    """A compiled ``keras.Model`` for model ``name`` (input ``(n_in,)``, output ``(n_out,)``)."""
    import keras
    from keras import layers

    s = spec.BY_NAME[name]
    init = keras.initializers.GlorotUniform(seed=seed)
    inp = keras.Input((s.n_in,), name="x")
    h = inp
    for i, width in enumerate(s.hidden):
        h = layers.Dense(width, activation="relu", kernel_initializer=init, name=f"dense{i}")(h)
    if name == "melody":
        out = layers.Dense(s.n_out, activation="softmax", kernel_initializer=init, name="note_prob")(h)
        loss: Any = "sparse_categorical_crossentropy"
    elif name == "harmony":
        logits = layers.Dense(s.n_out, kernel_initializer=init, name="logits")(h)
        mask = np.zeros((1, s.n_out), dtype=np.float32)
        mask[0, spec.N_CHORD_CLASSES :] = RESERVED_LOGIT
        masked = layers.Add(name="mask_reserved")([logits, keras.ops.convert_to_tensor(mask)])
        out = layers.Softmax(name="chord_prob")(masked)
        loss = "sparse_categorical_crossentropy"
    elif name == "groove":
        hits = layers.Dense(spec.N_STEPS, activation="sigmoid", kernel_initializer=init, name="hit_prob")(h)
        raw = layers.Dense(spec.N_STEPS, activation="tanh", kernel_initializer=init, name="timing_tanh")(h)
        timing = layers.Rescaling(0.5, name="micro_timing")(raw)
        out = layers.Concatenate(name="groove")([hits, timing])
        loss = _groove_loss
    elif name == "dynamics":
        out = layers.Dense(s.n_out, activation="sigmoid", kernel_initializer=init, name="dynamics")(h)
        loss = "mse"
    elif name == "emotion":
        out = layers.Dense(s.n_out, kernel_initializer=init, name="emotion")(h)
        loss = _emotion_loss
    else:
        raise ValueError(f"unknown model {name!r}")
    model = keras.Model(inp, out, name=name)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    return model


def _groove_loss(y_true: Any, y_pred: Any) -> Any:
    """Binary cross-entropy on the hit probabilities + squared error on the micro-timings."""
    import keras

    n = spec.N_STEPS
    p = keras.ops.clip(y_pred[:, :n], 1e-6, 1 - 1e-6)
    t = y_true[:, :n]
    bce = -keras.ops.mean(t * keras.ops.log(p) + (1 - t) * keras.ops.log(1 - p), axis=-1)
    mse = keras.ops.mean(keras.ops.square(y_true[:, n:] - y_pred[:, n:]), axis=-1)
    return bce + mse


_EMO_WEIGHTS = np.ones(spec.EMOTION.n_out, dtype=np.float32)
_EMO_WEIGHTS[spec.Emo.VADI] = 6.0  # the four numbers every other model reads matter most
_EMO_WEIGHTS[spec.Emo.FAMILIES] = 2.0


def _emotion_loss(y_true: Any, y_pred: Any) -> Any:
    """Weighted squared error on standardised targets (VADI x6, families x2, pass-through x1)."""
    import keras

    w = keras.ops.convert_to_tensor(_EMO_WEIGHTS / _EMO_WEIGHTS.mean())
    return keras.ops.mean(w * keras.ops.square(y_true - y_pred), axis=-1)


CUSTOM_OBJECTS = {"_groove_loss": _groove_loss, "_emotion_loss": _emotion_loss}
