"""Keep the metrics table in ``models_tflite/README.md`` in step with the manifest."""

from __future__ import annotations

from pathlib import Path

from kelly_edge.fileio import write_atomic

BEGIN = "<!-- metrics:begin -->"
END = "<!-- metrics:end -->"


def update_readme(out_dir: Path, table: str, seconds: float | None) -> None:
    """Replace the text between the markers in ``<out_dir>/README.md`` (appended if absent)."""
    path = out_dir / "README.md"
    text = path.read_text() if path.is_file() else "# Trained models\n"
    note = f"\n\nFull rebuild (`python -m tools.train all`) took {seconds / 60:.1f} min on this machine." if seconds else ""
    block = f"{BEGIN}\n{table}{note}\n{END}"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    write_atomic(path, text.encode())
