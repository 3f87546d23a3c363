"""Input-level calibration: the gain that makes loudness cues mean the same on every interface.

Arousal, velocity and the silence gate read levels in dBFS, but the same playing reads 20 dB
apart on a hot pickup into a line input and a quiet one into a mic preamp (the design notes
measured loudness-to-arousal correlation drop from 0.94 to 0.55 under unknown +-12 dB gain).
``kelly-edge calibrate`` listens while the musician plays at a medium level, takes the median
level of the hops that carry playing (those within 30 dB of the loudest 5%) and stores the gain
that brings it to ``TARGET_DB`` (-30 dBFS: neutral arousal, mid velocity in the heuristics).
The gain is stored per input device (``backend:device name``) in ``state.calibration``; the live box
applies it, plus ``audio.input_gain_db`` as a trim, and says "uncalibrated" when there is none.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kelly_edge.errors import AudioInputError, OutputError
from kelly_edge.fileio import write_atomic

log = logging.getLogger(__name__)

TARGET_DB = -30.0
PLAYING_RANGE_DB = 30.0  # hops this far under the loudest 5% still count as playing
NOISE_FLOOR_DB = -80.0
MIN_PLAYING_S = 1.0
CLIP_PEAK = 0.999  # a raw sample this close to full scale counts as clipping
GAIN_LIMIT_DB = 40.0


@dataclass(frozen=True)
class Calibration:
    """One device's calibration: ``gain_db`` to apply and what was measured (dBFS, raw input)."""

    gain_db: float
    median_db: float
    loud_db: float
    peak_dbfs: float
    clipped_hops: int
    playing_s: float
    when: str


def measure(levels_db: np.ndarray, peaks: np.ndarray, *, hop_s: float) -> Calibration:
    """Calibrate from per-hop raw RMS levels ``(n,)`` dBFS and raw peaks ``(n,)`` (linear, 0..).

    Raises AudioInputError when too little playing was heard (under ``MIN_PLAYING_S``).
    """
    levels = np.asarray(levels_db, dtype=np.float64)
    heard = levels[levels > NOISE_FLOOR_DB]
    if heard.size == 0:
        raise AudioInputError("calibration heard only silence: play while it listens, and check the input and cable")
    loud = float(np.percentile(heard, 95))
    playing = heard[heard >= loud - PLAYING_RANGE_DB]
    if playing.size * hop_s < MIN_PLAYING_S:
        raise AudioInputError(
            f"calibration heard only {playing.size * hop_s:.1f} s of playing (need {MIN_PLAYING_S:.0f} s): "
            "play continuously while it listens"
        )
    median = float(np.median(playing))
    gain = min(GAIN_LIMIT_DB, max(-GAIN_LIMIT_DB, TARGET_DB - median))
    peak = float(np.max(peaks)) if len(peaks) else 0.0
    return Calibration(
        gain_db=round(gain, 2), median_db=round(median, 2), loud_db=round(loud, 2),
        peak_dbfs=round(20.0 * math.log10(peak), 2) if peak > 0 else -math.inf,
        clipped_hops=int(np.count_nonzero(np.asarray(peaks) >= CLIP_PEAK)), playing_s=round(playing.size * hop_s, 2),
        when=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


def calibration_path(config: Any) -> Path:
    """``state.calibration`` with ``~`` expanded; a relative path is beside the config file (or in
    the working folder when the config did not come from a file)."""
    path = Path(config.state.calibration).expanduser()
    if path.is_absolute():
        return path
    source = str(getattr(config, "source", "<default>"))
    base = Path.cwd() if source.startswith("<") else Path(source).resolve().parent
    return Path(os.path.normpath(base / path))


def device_key(backend: str, name: str) -> str:
    return f"{backend}:{name}"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        log.warning("ignoring unreadable calibration file %s: %s", path, err)
        return {}
    return data if isinstance(data, dict) else {}


def load(config: Any, key: str) -> Calibration | None:
    """The stored calibration of device ``key``, or None."""
    entry = _read(calibration_path(config)).get(key)
    if not isinstance(entry, dict):
        return None
    try:
        cal = Calibration(**entry)
    except TypeError:
        return None
    return cal if math.isfinite(cal.gain_db) else None


def store(config: Any, key: str, cal: Calibration) -> Path:
    """Save ``cal`` for device ``key`` (other devices' entries are kept); returns the file."""
    path = calibration_path(config)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(
            f"cannot create folder {path.parent} for the calibration: {err.strerror or err} (set state.calibration)"
        ) from err
    data = _read(path)
    entry = asdict(cal)
    if not math.isfinite(entry["peak_dbfs"]):
        entry["peak_dbfs"] = -1000.0
    data[key] = entry
    write_atomic(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return path
