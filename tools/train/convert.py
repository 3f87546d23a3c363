"""Full-integer INT8 conversion, checked against the spec, written atomically.

The representative dataset is drawn from the *training* rows, standardised exactly as the runner
will standardise live inputs, so the converter's calibrated ranges match what the model sees.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kelly_edge.errors import ModelError
from kelly_edge.fileio import write_atomic
from kelly_edge.models import spec
from tools.train.fit import Trained, standardise

log = logging.getLogger(__name__)

N_REPRESENTATIVE = 1000


def keras_to_int8(model: Any, representative: Callable[[], Any]) -> bytes:
    """A Keras model as a full-integer TFLite flatbuffer: int8 input, output, weights and
    activations, builtin ops only, calibrated on ``representative()`` (a generator of input lists,
    or of dicts keyed by input name for a model with several inputs)."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def to_int8(t: Trained, x_train_raw: np.ndarray, *, seed: int, n_rep: int = N_REPRESENTATIVE) -> bytes:
    """One trained net as INT8 (:func:`keras_to_int8`), calibrated on its standardised training rows."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(x_train_raw), size=min(n_rep, len(x_train_raw)), replace=False)
    rep = standardise(x_train_raw[np.sort(pick)], t.input_mean, t.input_std)

    def representative() -> Any:
        for row in rep:
            yield [row[None].astype(np.float32)]

    data = keras_to_int8(t.model, representative)
    check_model_bytes(data, t.name)
    return data


def model_io(data: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """Input and output tensor details of a flatbuffer, read with the runtime's interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        it = Interpreter(model_content=data)
        it.allocate_tensors()
    except Exception as err:
        raise ModelError(f"not a valid TFLite model: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from err
    ins, outs = it.get_input_details(), it.get_output_details()
    if len(ins) != 1 or len(outs) != 1:
        raise ModelError(f"expected 1 input and 1 output tensor, found {len(ins)} and {len(outs)}")
    return ins[0], outs[0]


def check_model_bytes(data: bytes, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Refuse a model whose shapes or dtypes disagree with ``spec.BY_NAME[name]`` (ModelError)."""
    s = spec.BY_NAME[name]
    i, o = model_io(data)
    if tuple(i["shape"]) != (1, s.n_in) or tuple(o["shape"]) != (1, s.n_out):
        raise ModelError(
            f"{s.filename}: shape {tuple(i['shape'])} -> {tuple(o['shape'])} disagrees with the spec "
            f"(1, {s.n_in}) -> (1, {s.n_out}) for {s.title}; not written"
        )
    if i["dtype"] != np.int8 or o["dtype"] != np.int8:
        raise ModelError(f"{s.filename}: expected int8 input and output, found {i['dtype']} and {o['dtype']}; not written")
    return i, o


def quant_params(detail: dict[str, Any]) -> dict[str, float]:
    scale, zero = detail["quantization"]
    return {"scale": float(scale), "zero_point": int(zero)}


def write_model(data: bytes, name: str, out_dir: Path) -> Path:
    """Check ``data`` against the spec, then write ``<out_dir>/<name>.tflite`` via tmp + rename.

    A model that fails the check is never written, so a good file already there survives.
    """
    check_model_bytes(data, name)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / spec.BY_NAME[name].filename
    write_atomic(path, data)
    log.info("wrote %s (%d bytes)", path, len(data))
    return path


def sha256_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def total_size(out_dir: Path) -> int:
    """Bytes of all ``.tflite`` files in ``out_dir``."""
    return sum(os.path.getsize(p) for p in out_dir.glob("*.tflite"))
