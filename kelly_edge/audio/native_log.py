"""Route the chatter of ALSA and libjack to ``logging`` instead of raw stderr.

PortAudio probes every ALSA PCM and tries to reach a JACK server when it initialises, and
python-rtmidi's JACK backend does the same; both libraries print dozens of lines ("ALSA lib
conf.c:... Unknown PCM", "Cannot connect to server socket") straight to file descriptor 2. On a
box whose contract is "one clear line per problem", that noise hides the line that matters. Both
libraries let a program install its own error handler: here each message goes to this module's
logger at DEBUG level (visible with ``--debug``). Call :func:`mute_native_errors` once, before the
first PortAudio / rtmidi / JACK client is created; it is idempotent and silently does nothing when
a library is missing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import importlib.util
import logging
import os
from typing import Any

log = logging.getLogger(__name__)

_keep: list[Any] = []  # the C callbacks must outlive every call into the libraries


def _alsa_handler(file: bytes | None, line: int, func: bytes | None, err: int, fmt: bytes | None) -> None:
    if log.isEnabledFor(logging.DEBUG):
        log.debug("ALSA %s:%d %s: %s", (file or b"?").decode(errors="replace"), line,
                  (func or b"?").decode(errors="replace"), (fmt or b"").decode(errors="replace"))


def _jack_handler(message: bytes | None) -> None:
    if log.isEnabledFor(logging.DEBUG):
        log.debug("JACK: %s", (message or b"").decode(errors="replace"))


def _load(name: str) -> ctypes.CDLL | None:
    path = ctypes.util.find_library(name)
    candidates = [path] if path else []
    candidates += {"asound": ["libasound.so.2"], "jack": ["libjack.so.0"]}.get(name, [])
    for candidate in candidates:
        try:
            return ctypes.CDLL(candidate)
        except OSError:
            continue
    return None


def _bundled_jacks() -> list[ctypes.CDLL]:
    """python-rtmidi's wheel ships its own copy of libjack (``python_rtmidi.libs``): mute it too."""
    spec = importlib.util.find_spec("rtmidi")
    if spec is None or not spec.submodule_search_locations:
        return []
    site = os.path.dirname(list(spec.submodule_search_locations)[0])
    out = []
    for path in sorted(glob.glob(os.path.join(site, "python_rtmidi*", "libjack*.so*"))):
        try:
            out.append(ctypes.CDLL(path))
        except OSError:
            continue
    return out


def mute_native_errors() -> None:
    """Install the ALSA and JACK error/info handlers (once per process)."""
    if _keep:
        return
    alsa = _load("asound")
    if alsa is not None:
        # snd_lib_error_handler_t is variadic; the fixed arguments come first in registers on the
        # 64-bit ABIs we run on (x86-64, aarch64), and the handler ignores the rest.
        proto = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)
        handler = proto(_alsa_handler)
        try:
            alsa.snd_lib_error_set_handler(handler)
            _keep.append(handler)
        except AttributeError:
            pass
    proto_j = ctypes.CFUNCTYPE(None, ctypes.c_char_p)
    handler_j = proto_j(_jack_handler)
    _keep.append(handler_j)
    for jack in [_load("jack"), *_bundled_jacks()]:
        if jack is None:
            continue
        try:
            jack.jack_set_error_function(handler_j)
            jack.jack_set_info_function(handler_j)
        except AttributeError:
            pass
    _keep.append(True)  # mark done even when neither library is present
