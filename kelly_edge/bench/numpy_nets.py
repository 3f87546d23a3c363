"""The five networks as plain numpy float32, for the "what if we just used numpy" comparison.

Weights are the shipped INT8 models' own, *dequantised* from the ``.tflite`` files through the
interpreter's tensor details (per-channel weight scales, int32 biases at ``in_scale·w_scale``), so
the numpy nets are the same networks, not look-alikes: :func:`agreement` checks it. The graph is
replayed op by op (fully connected + ReLU, softmax, logistic, tanh, scalar multiply, concatenation:
everything the five files use); every intermediate array is preallocated, so a call costs only
the numpy calls themselves. Inputs are the standardised net-space vectors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

Step = Callable[[], None]


def _dequant(it: Any, detail: dict[str, Any]) -> np.ndarray:
    raw = it.get_tensor(detail["index"]).astype(np.float32)
    q = detail["quantization_parameters"]
    scales = np.asarray(q["scales"], np.float32)
    zeros = np.asarray(q["zero_points"], np.float32)
    if scales.size == 0:
        return raw
    if scales.size == 1 or raw.ndim == 0:
        return (raw - zeros.reshape(-1)[0]) * scales[0]
    shape = [-1] + [1] * (raw.ndim - 1)
    return (raw - zeros.reshape(shape)) * scales.reshape(shape)


class NumpyNet:
    """One tflite graph re-run in numpy float32: ``(n_in,) float32 -> (n_out,) float32``."""

    def __init__(self, path: str | Path) -> None:
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=str(path))
        it.allocate_tensors()
        details = {d["index"]: d for d in it.get_tensor_details()}
        inp, out = it.get_input_details()[0], it.get_output_details()[0]
        self.n_in, self.n_out = int(inp["shape"][1]), int(out["shape"][1])
        self.x = np.zeros(self.n_in, np.float32)
        bufs: dict[int, np.ndarray] = {int(inp["index"]): self.x}
        self._steps: list[Step] = []
        for op in it._get_ops_details():  # noqa: SLF001 - the public API has no op list
            name, ins, outs = op["op_name"], [int(i) for i in op["inputs"]], [int(o) for o in op["outputs"]]
            if name == "DELEGATE":
                continue
            o = outs[0]
            shape = tuple(int(s) for s in details[o]["shape"])
            buf = np.zeros(shape[-1] if shape else 1, np.float32)
            if name == "FULLY_CONNECTED":
                w = np.ascontiguousarray(_dequant(it, details[ins[1]]).T)  # (in, out): x @ w
                b = _dequant(it, details[ins[2]]) if ins[2] >= 0 else np.zeros(buf.size, np.float32)
                relu = "Relu" in details[o]["name"]
                self._steps.append(self._fc(bufs[ins[0]], w, b.astype(np.float32), buf, relu))
            elif name == "SOFTMAX":
                self._steps.append(self._softmax(bufs[ins[0]], buf))
            elif name == "LOGISTIC":
                self._steps.append(self._logistic(bufs[ins[0]], buf))
            elif name == "TANH":
                src = bufs[ins[0]]
                self._steps.append(lambda src=src, buf=buf: np.tanh(src, out=buf))
            elif name == "QUANTIZE":
                src = bufs[ins[0]]
                self._steps.append(lambda src=src, buf=buf: np.copyto(buf, src))
            elif name == "MUL":
                src, k = bufs[ins[0]], float(_dequant(it, details[ins[1]]).reshape(-1)[0])
                self._steps.append(lambda src=src, buf=buf, k=k: np.multiply(src, k, out=buf))
            elif name == "CONCATENATION":
                parts = [bufs[i] for i in ins]
                self._steps.append(self._concat(parts, buf))
            else:
                raise ValueError(f"{path}: op {name} not supported by the numpy replay")
            bufs[o] = buf
        self.y = bufs[int(out["index"])]

    @staticmethod
    def _fc(src: np.ndarray, w: np.ndarray, b: np.ndarray, buf: np.ndarray, relu: bool) -> Step:
        def step() -> None:
            np.matmul(src, w, out=buf)
            np.add(buf, b, out=buf)
            if relu:
                np.maximum(buf, 0.0, out=buf)

        return step

    @staticmethod
    def _softmax(src: np.ndarray, buf: np.ndarray) -> Step:
        def step() -> None:
            np.subtract(src, src.max(), out=buf)
            np.exp(buf, out=buf)
            np.multiply(buf, 1.0 / float(buf.sum()), out=buf)

        return step

    @staticmethod
    def _logistic(src: np.ndarray, buf: np.ndarray) -> Step:
        def step() -> None:
            np.negative(src, out=buf)
            np.exp(buf, out=buf)
            np.add(buf, 1.0, out=buf)
            np.reciprocal(buf, out=buf)

        return step

    @staticmethod
    def _concat(parts: list[np.ndarray], buf: np.ndarray) -> Step:
        def step() -> None:
            i = 0
            for p in parts:
                buf[i : i + p.size] = p
                i += p.size

        return step

    def __call__(self, z: np.ndarray) -> np.ndarray:
        np.copyto(self.x, z)
        for step in self._steps:
            step()
        return self.y


def agreement(net: NumpyNet, path: str | Path, z: np.ndarray) -> float:
    """Cosine between the numpy net and the INT8 interpreter on standardised inputs ``z (n, n_in)``."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    s_in, z_in = i["quantization"]
    s_out, z_out = o["quantization"]
    a, b = [], []
    for row in z:
        q = np.clip(np.rint(row / s_in) + z_in, -128, 127).astype(np.int8)[None, :]
        it.set_tensor(i["index"], q)
        it.invoke()
        a.append((it.get_tensor(o["index"])[0].astype(np.float32) - z_out) * s_out)
        b.append(net(row).copy())
    x, y = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(np.dot(x, y) / max(np.linalg.norm(x) * np.linalg.norm(y), 1e-12))
