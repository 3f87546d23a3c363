"""Re-load the model files that changed, on SIGHUP, without stopping the box.

Why: ``make models`` (or a copy from a laptop) replaces ``.tflite`` files under a running box;
``systemctl reload kelly-edge`` should pick them up. A file that is missing, truncated or garbage
gives that model's heuristic fallback with one log line (from
:func:`kelly_edge.models.runner.load_model`); the other models keep what they had and the box keeps
playing.

Split across threads like the config reload: :meth:`ModelReloader.changed` stats, hashes and loads
files (milliseconds: on the config watcher's thread, never the processing thread), and
:func:`swap_in` installs the result on the thread that owns the engine (``LiveLoop.request``).
A model's *signature* is its file's (mtime, size, inode) and its ``manifest.json`` entry: a model
is re-loaded when either changed since it was last loaded.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from kelly_edge.models import spec as specs
from kelly_edge.models.runner import LoadedModel, load_model, read_manifest

log = logging.getLogger(__name__)

Signature = tuple[tuple[int, int, int] | None, str]


def _file_signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class ModelReloader:
    """Remembers each model file's signature; :meth:`changed` loads the ones that changed.

    ``models_dir``: the folder the running engine loaded from (None: no folder, nothing to reload).
    ``enabled``: model names whose network the config allows (others stay on their fallback and are
    never re-loaded).
    """

    def __init__(self, models_dir: Path | None, enabled: set[str] | None = None) -> None:
        self.models_dir = models_dir
        self.enabled = set(specs.MODEL_NAMES) if enabled is None else set(enabled)
        self._signatures: dict[str, Signature] = self._read_signatures()

    def _read_signatures(self) -> dict[str, Signature]:
        if self.models_dir is None:
            return {}
        manifest = read_manifest(self.models_dir)
        return {
            s.name: (_file_signature(self.models_dir / s.filename), json.dumps(manifest.get(s.name), sort_keys=True))
            for s in specs.MODELS
        }

    def changed(self) -> dict[str, LoadedModel]:
        """Load every enabled model whose file or manifest entry changed since last time, by name."""
        if self.models_dir is None:
            return {}
        now = self._read_signatures()
        names = [s.name for s in specs.MODELS if s.name in self.enabled and now[s.name] != self._signatures.get(s.name)]
        self._signatures = now
        if not names:
            log.info("model files in %s unchanged", self.models_dir)
            return {}
        manifest = read_manifest(self.models_dir)
        by_name = {s.name: s for s in specs.MODELS}
        loaded = {name: load_model(by_name[name], self.models_dir, manifest) for name in names}
        log.info("model files re-loaded: %s", ", ".join(f"{n}={m.status}" for n, m in loaded.items()))
        return loaded


def swap_in(engine: Any, loaded: dict[str, LoadedModel]) -> None:
    """Install re-loaded models in ``engine`` (on the thread that owns it, between hops).

    A model switched off keeps its stand-in and gets the new one when switched back on
    (:meth:`kelly_edge.engine.model_state.ModelStates.install`).
    """
    for name, model in loaded.items():
        engine.model_states.install(name, model)
