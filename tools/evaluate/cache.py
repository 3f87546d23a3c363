"""A folder outside the repo for what is slow to make and depends only on its inputs' content:
rendered pieces, decoded excerpts of recordings, transcriptions.

Keys are content digests (of a MIDI file plus the render settings, of a source file plus the
excerpt's bounds, of a WAV), so a changed input is a new entry and nothing stale is reused.
``$KELLY_EVAL_CACHE`` chooses the folder (default ``~/.cache/kelly-edge/evaluate``). Entries
are written atomically, so two evaluations at once never read half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from kelly_edge.fileio import write_atomic

CACHE_ENV = "KELLY_EVAL_CACHE"


def default_folder() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "kelly-edge" / "evaluate"


def digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:24]


def file_digest(path: Path) -> str:
    return digest(Path(path).read_bytes())


class Cache:
    """``path(kind, key, suffix)`` for files made by the caller; JSON entries via get/put."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_folder()

    def path(self, kind: str, key: str, suffix: str) -> Path:
        p = self.folder / kind / f"{key}{suffix}"
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def get_json(self, kind: str, key: str) -> Any | None:
        p = self.folder / kind / f"{key}.json"
        try:
            return json.loads(p.read_text())
        except (OSError, ValueError):
            return None

    def put_json(self, kind: str, key: str, value: Any) -> None:
        write_atomic(self.path(kind, key, ".json"), json.dumps(value).encode())
