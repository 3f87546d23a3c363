"""Load the five models: a trained INT8 TFLite net when a good file is there, else the heuristic.

A net sits behind the same call as its fallback, ``(n_in,) float32 -> (n_out,) float32``, so the
scheduler and the generator never know which one they got; the run report does (``status``).

The interpreter comes from ``ai_edge_litert`` (fast, numpy 2) or, failing that, ``tflite_runtime``
(older, slower; accepted as a fallback import only). Neither is needed for the fallbacks.

A trained net's inputs are standardised with statistics stored beside it in ``manifest.json``
(see ``models_tflite/README.md``): INT8 has one scale per tensor, so raw features of different
units (Hz next to 0..1 chroma) would be crushed by quantisation otherwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import platform
import struct
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from kelly_edge.errors import ModelError
from kelly_edge.models import spec as specs
from kelly_edge.models.fallbacks import make_fallback
from kelly_edge.models.spec import ModelSpec

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


class Model(Protocol):
    """What the scheduler calls: returns a (n_out,) float32 array it may overwrite next call."""

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


def _interpreter_class() -> Any:
    """The TFLite ``Interpreter`` class, preferring ai-edge-litert; ModelError when neither imports.

    A module that is installed but does not import (built for another numpy, a broken install)
    is named as such, never as "not installed".
    """
    broken = []
    for module in ("ai_edge_litert.interpreter", "tflite_runtime.interpreter"):
        try:
            return __import__(module, fromlist=["Interpreter"]).Interpreter
        except ModuleNotFoundError as err:
            if err.name is not None and not module.startswith(err.name):
                broken.append(f"{module.split('.')[0]}: {_first_line(err)}")
        except Exception as err:  # ImportError from an ABI mismatch, or worse
            broken.append(f"{module.split('.')[0]}: {_first_line(err)}")
    if broken:
        raise ModelError(f"the TFLite interpreter does not import ({'; '.join(broken)}); {interpreter_advice()}")
    raise ModelError(f"no TFLite interpreter installed; {interpreter_advice()}")


def userland_bits() -> int:
    """32 or 64: the pointer size of this Python, i.e. of the userland (a 32-bit Raspberry Pi OS
    on a 64-bit kernel says aarch64 in ``platform.machine()`` yet runs armv7l binaries)."""
    return struct.calcsize("P") * 8


def interpreter_advice() -> str:
    """What this machine's owner can do to get a working interpreter (said, not guessed at)."""
    machine = platform.machine().lower()
    if userland_bits() == 32 and machine.startswith(("arm", "aarch")):
        return "ai-edge-litert has no 32-bit ARM build: install 64-bit Raspberry Pi OS for the trained models"
    if machine in ("x86_64", "amd64", "aarch64", "arm64"):
        return f"install ai-edge-litert (built for numpy 2, used before tflite-runtime): {sys.executable} -m pip install ai-edge-litert"
    return f"ai-edge-litert has no build for {machine}"


ABI_SIGNS = ("numpy", "NumPy", "_ARRAY_API", "multiarray")


def _abi_mismatch(err: BaseException, printed: str) -> BaseException | None:
    """The error in ``err``'s chain that says the interpreter was built for another numpy (it
    imports numpy's C API lazily, at the first interpreter: tflite-runtime 2.14 on numpy 2 raises
    SystemError from AttributeError ``_ARRAY_API not found``, numpy printing its own warning)."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, ImportError) or any(sign in str(seen) for sign in ABI_SIGNS):
            return seen
        seen = seen.__cause__ or seen.__context__
    return err if "compiled using NumPy" in printed else None


def _interpreter_name(cls: Any) -> str:
    module = getattr(cls, "__module__", "").split(".")[0] or "TFLite"
    try:
        return f"{module} {metadata.version(module.replace('_', '-'))}"
    except metadata.PackageNotFoundError:
        return module


def _new_interpreter(path: Path) -> Any:
    """The interpreter for ``path`` with its tensors allocated; ModelError naming the culprit.

    numpy writes its own multi-line warning (with a stack) to stderr on an ABI mismatch: stderr is
    captured while loading so the log gets one line; anything else captured is written through.
    """
    cls = _interpreter_class()
    printed = io.StringIO()
    try:
        with contextlib.redirect_stderr(printed):
            interpreter = cls(model_path=str(path), num_threads=1)
            interpreter.allocate_tensors()
    except Exception as err:  # the interpreter raises ValueError/RuntimeError on bad flatbuffers
        abi = _abi_mismatch(err, printed.getvalue())
        if abi is not None:  # the file is not to blame: rebuilding it cannot help
            raise ModelError(f"the TFLite interpreter {_interpreter_name(cls)} does not work with numpy {np.__version__} "
                             f"({type(abi).__name__}: {_first_line(abi)}); {interpreter_advice()}") from err
        sys.stderr.write(printed.getvalue())
        raise ModelError(f"{path}: not a valid TFLite model ({_first_line(err)}); rebuild it with make models") from err
    sys.stderr.write(printed.getvalue())
    return interpreter


def _floats(entry: dict[str, Any], key: str, n: int, name: str) -> np.ndarray | None:
    value = entry.get(key)
    if value is None:
        return None
    try:  # text, nested lists or objects in the manifest: that model falls back, the box plays on
        arr = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError, OverflowError) as err:
        raise ModelError(f"{MANIFEST}: {name}.{key} must be {n} finite numbers (rebuild with make models)") from err
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise ModelError(f"{MANIFEST}: {name}.{key} must be {n} finite numbers (rebuild with make models)")
    return arr


class TfliteModel:
    """One INT8 (or float) TFLite net behind the model call.

    Per call: standardise into a preallocated buffer, quantise into the interpreter's own input
    tensor, invoke, dequantise into a preallocated output. Nothing is allocated after the first call
    except what the interpreter does internally.
    """

    def __init__(self, path: Path, spec: ModelSpec, entry: dict[str, Any] | None = None) -> None:
        self.spec = spec
        self.path = path
        entry = entry or {}
        interpreter = _new_interpreter(path)
        ins, outs = interpreter.get_input_details(), interpreter.get_output_details()
        if len(ins) != 1 or len(outs) != 1:
            raise ModelError(f"{path}: expected 1 input and 1 output tensor, found {len(ins)} and {len(outs)}")
        in_shape, out_shape = tuple(ins[0]["shape"]), tuple(outs[0]["shape"])
        if in_shape != (1, spec.n_in) or out_shape != (1, spec.n_out):
            raise ModelError(
                f"{path}: shape {in_shape} -> {out_shape} disagrees with the spec "
                f"(1, {spec.n_in}) -> (1, {spec.n_out}) for {spec.title}"
            )
        self._interpreter = interpreter
        self._in_index, self._out_index = ins[0]["index"], outs[0]["index"]
        self._in_dtype, self._out_dtype = ins[0]["dtype"], outs[0]["dtype"]
        self._in_scale, self._in_zero = _quant(ins[0])
        self._out_scale, self._out_zero = _quant(outs[0])
        self._mean = _floats(entry, "input_mean", spec.n_in, spec.name)
        std = _floats(entry, "input_std", spec.n_in, spec.name)
        self._inv_std = None if std is None else (1.0 / np.maximum(std, 1e-6)).astype(np.float32)
        self._out_mean = _floats(entry, "output_mean", spec.n_out, spec.name)
        self._out_std = _floats(entry, "output_std", spec.n_out, spec.name)
        self._limits = _limits(self._in_dtype)
        # Standardise + quantise folded into one multiply-add, q = x·k + c, then rint and saturate:
        # k = inv_std / in_scale, c = in_zero - mean·k (computed in float64, stored float32).
        inv_std = np.ones(spec.n_in) if self._inv_std is None else self._inv_std.astype(np.float64)
        mean = np.zeros(spec.n_in) if self._mean is None else self._mean.astype(np.float64)
        in_scale, in_zero = (self._in_scale, self._in_zero) if self._limits is not None else (1.0, 0.0)
        k = inv_std / in_scale
        self._k = k.astype(np.float32)
        self._c = (in_zero - mean * k).astype(np.float32).reshape(1, -1)
        # Dequantise + de-standardise folded likewise: y = raw·a + b.
        out_std = np.ones(spec.n_out) if self._out_std is None else self._out_std.astype(np.float64)
        out_mean = np.zeros(spec.n_out) if self._out_mean is None else self._out_mean.astype(np.float64)
        if self._limits is not None or self._out_dtype != np.float32:
            a = self._out_scale * out_std
            b = out_mean - self._out_zero * self._out_scale * out_std
        else:
            a, b = out_std, out_mean
        self._a = a.astype(np.float32).reshape(1, -1)
        self._b = b.astype(np.float32).reshape(1, -1)
        self._x = np.zeros((1, spec.n_in), dtype=np.float32)
        self._y2 = np.zeros((1, spec.n_out), dtype=np.float32)
        self._y = self._y2[0]
        # The interpreter's own tensors, fetched as views per call: a view still alive at
        # invoke() makes the interpreter refuse to run, so each is dropped before it.
        self._in_tensor = interpreter.tensor(self._in_index)
        self._out_tensor = interpreter.tensor(self._out_index)
        self._invoke = interpreter.invoke
        self(np.zeros(spec.n_in, dtype=np.float32))  # warm up: first invoke allocates

    def __call__(self, x: np.ndarray) -> np.ndarray:
        buf = self._x
        if math.isfinite(float(np.dot(x, x))):
            np.multiply(x, self._k, out=buf[0])
        else:  # NaN/inf somewhere (or |x| > 1e19): the slow, sanitising path
            self._sanitised(x)
        np.add(buf, self._c, out=buf)
        if self._limits is not None:  # q = rint(x·k + c) saturated to the integer range
            np.rint(buf, out=buf)
            np.maximum(buf, self._limits[0], out=buf)
            np.minimum(buf, self._limits[1], out=buf)
        q = self._in_tensor()
        np.copyto(q, buf, casting="unsafe")
        del q
        self._invoke()
        raw = self._out_tensor()
        np.multiply(raw, self._a, out=self._y2)
        del raw
        np.add(self._y2, self._b, out=self._y2)
        return self._y

    def _sanitised(self, x: np.ndarray) -> None:
        """``x·k`` into the buffer with NaN and ±inf elements read as 0.0 (as the encoders' zero)."""
        buf = self._x[0]
        np.copyto(buf, x, casting="unsafe")
        np.nan_to_num(buf, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        np.multiply(buf, self._k, out=buf)
        np.nan_to_num(buf, copy=False, nan=0.0, posinf=0.0, neginf=0.0)


def _quant(detail: dict[str, Any]) -> tuple[float, float]:
    scale, zero = detail.get("quantization", (0.0, 0))
    return (float(scale) or 1.0), float(zero)


def _limits(dtype: Any) -> tuple[int, int] | None:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return int(info.min), int(info.max)
    return None


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def read_manifest(models_dir: Path) -> dict[str, Any]:
    """The manifest's ``models`` table, or {} when absent/unreadable (each model then says why)."""
    path = models_dir / MANIFEST
    try:
        data = json.loads(path.read_text())
        models = data.get("models", {})
        return models if isinstance(models, dict) else {}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, AttributeError) as err:
        log.warning("%s unreadable (%s): trained models lose their input statistics; rebuild with make models", path, err)
        return {}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class LoadedModel:
    """A model ready to call, and how it came to be: ``status`` is ``"trained"`` or ``"fallback"``."""

    spec: ModelSpec
    call: Callable[[np.ndarray], np.ndarray]
    status: str
    reason: str


def load_model(spec: ModelSpec, models_dir: Path | None, manifest: dict[str, Any] | None = None) -> LoadedModel:
    """Load ``spec``'s trained file from ``models_dir``, or its fallback with one log line saying why."""
    fallback = make_fallback(spec.name)
    if models_dir is None:
        return LoadedModel(spec, fallback, "fallback", "no models folder configured")
    path = models_dir / spec.filename
    if not path.is_file():
        reason = f"{path} not found"
        log.warning("%s: %s, using the heuristic fallback (no trained model)", spec.title, reason)
        return LoadedModel(spec, fallback, "fallback", reason)
    entry = (manifest if manifest is not None else read_manifest(models_dir)).get(spec.name)
    try:
        if entry is None:
            raise ModelError(f"{path}: no entry in {MANIFEST} (rebuild with make models)")
        if not isinstance(entry, dict):
            raise ModelError(f"{path}: its entry in {MANIFEST} is not an object (rebuild with make models)")
        expected = entry.get("sha256")
        if expected and expected != sha256_of(path):
            raise ModelError(f"{path}: sha256 differs from {MANIFEST} (file replaced or corrupt; rebuild with make models)")
        model = TfliteModel(path, spec, entry)
    except ModelError as err:
        log.warning("%s: %s; using the heuristic fallback", spec.title, err)
        return LoadedModel(spec, fallback, "fallback", str(err))
    log.info("%s: loaded trained model %s", spec.title, path)
    return LoadedModel(spec, model, "trained", str(path))


def load_all(models_dir: Path | None) -> dict[str, LoadedModel]:
    """All five models keyed by spec name, in spec priority order."""
    manifest = read_manifest(models_dir) if models_dir is not None else {}
    return {s.name: load_model(s, models_dir, manifest) for s in specs.MODELS}
