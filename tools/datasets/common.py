"""Shared pieces of the dataset readers: the error type and the skipped-file report."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from kelly_edge.errors import KellyEdgeError

log = logging.getLogger(__name__)


class DatasetError(KellyEdgeError, ValueError):
    """A dataset path is missing, empty or holds nothing usable."""


@dataclass
class SkipReport:
    """Files skipped while reading a dataset: how many and why (first few kept for the message)."""

    skipped: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, path: str, reason: str) -> None:
        self.skipped += 1
        if len(self.examples) < 10:
            self.examples.append(f"{path}: {reason}")
        log.warning("skipped %s: %s", path, reason)

    def merge(self, other: "SkipReport") -> None:
        self.skipped += other.skipped
        self.examples.extend(other.examples[: max(0, 10 - len(self.examples))])

    def summary(self) -> str:
        if not self.skipped:
            return "no files skipped"
        return f"{self.skipped} file(s) skipped: " + "; ".join(self.examples[:3])
