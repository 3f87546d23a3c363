"""Run an INT8 TFLite model exactly as the runtime runner does, and compare it with the float net.

Shared by the evaluator, the smoke test and (mirrored) by ``kelly_edge/models/runner.py``:

1. standardise: ``z = (x - input_mean) / max(input_std, 1e-6)``
2. quantise:    ``q = clip(rint(z / in_scale) + in_zero, -128, 127)`` as int8
3. invoke; dequantise: ``y = (q_out - out_zero) * out_scale``   (the *net-space* output)
4. de-standardise (linear heads only): ``y * output_std + output_mean``

Only ``ai_edge_litert`` and numpy are imported here: no TensorFlow.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def interpreter(data_or_path: bytes | str) -> Any:
    """An allocated ``ai_edge_litert`` interpreter for a flatbuffer (bytes) or a file path."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=data_or_path) if isinstance(data_or_path, (bytes, bytearray)) else Interpreter(model_path=str(data_or_path))
    it.allocate_tensors()
    return it


def run_int8(it: Any, x_raw: np.ndarray, input_mean: np.ndarray, input_std: np.ndarray) -> np.ndarray:
    """Net-space outputs ``(n, n_out) float32`` of the interpreter for raw inputs ``(n, n_in)``."""
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    in_scale, in_zero = i["quantization"]
    out_scale, out_zero = o["quantization"]
    z = (np.asarray(x_raw, np.float32) - input_mean) * (1.0 / np.maximum(input_std, 1e-6))
    if np.issubdtype(i["dtype"], np.integer):
        info = np.iinfo(i["dtype"])
        q = np.clip(np.rint(z / in_scale) + in_zero, info.min, info.max).astype(i["dtype"])
    else:
        q = z.astype(i["dtype"])
    out = np.zeros((q.shape[0], int(o["shape"][1])), dtype=np.float32)
    for r in range(q.shape[0]):
        it.set_tensor(i["index"], q[r : r + 1])
        it.invoke()
        raw = it.get_tensor(o["index"])[0]
        out[r] = (raw.astype(np.float32) - out_zero) * out_scale if np.issubdtype(o["dtype"], np.integer) else raw
    return out


def destandardise(y_net: np.ndarray, output_mean: np.ndarray | None, output_std: np.ndarray | None) -> np.ndarray:
    """Net-space outputs to spec units (identity when the manifest says null)."""
    if output_mean is None or output_std is None:
        return y_net
    return y_net * np.asarray(output_std, np.float32) + np.asarray(output_mean, np.float32)


def agreement(y_float: np.ndarray, y_int8: np.ndarray) -> dict[str, float]:
    """Mean row cosine and argmax agreement between float and INT8 net-space outputs ``(n, n_out)``."""
    a = np.asarray(y_float, np.float64)
    b = np.asarray(y_int8, np.float64)
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    both_zero = (na < 1e-12) & (nb < 1e-12)
    cos = np.where(both_zero, 1.0, (a * b).sum(axis=1) / np.maximum(na * nb, 1e-12))
    return {
        "cosine_mean": float(cos.mean()),
        "cosine_min": float(cos.min()),
        "argmax_agreement": float((a.argmax(axis=1) == b.argmax(axis=1)).mean()),
    }
