"""Calibration: the gain that brings medium playing to the target level, stored per device."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from kelly_edge.config.loader import default_config, parse_config
from kelly_edge.errors import AudioInputError
from kelly_edge.live import calibration as cal


def _levels(median_db: float, *, n: int = 500, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    playing = median_db + rng.normal(0.0, 4.0, n)
    pauses = np.full(n // 4, -95.0)  # silence between phrases must not count
    return np.concatenate([playing, pauses])


@pytest.mark.parametrize("median_db", [-45.0, -30.0, -12.0])
def test_the_gain_brings_the_playing_level_to_the_target(median_db: float) -> None:
    levels = _levels(median_db)
    result = cal.measure(levels, np.full(levels.size, 0.3), hop_s=0.01)
    assert result.median_db == pytest.approx(median_db, abs=1.0)
    assert result.gain_db == pytest.approx(cal.TARGET_DB - median_db, abs=1.0)
    assert result.clipped_hops == 0


def test_the_same_playing_on_two_interfaces_gets_the_same_corrected_level() -> None:
    quiet = cal.measure(_levels(-40.0), np.full(625, 0.1), hop_s=0.01)
    hot = cal.measure(_levels(-22.0, seed=1), np.full(625, 0.5), hop_s=0.01)
    assert quiet.median_db + quiet.gain_db == pytest.approx(hot.median_db + hot.gain_db, abs=1.0)


def test_clipping_is_counted() -> None:
    levels = _levels(-10.0)
    peaks = np.full(levels.size, 0.5)
    peaks[:7] = 1.0
    assert cal.measure(levels, peaks, hop_s=0.01).clipped_hops == 7


def test_silence_or_too_little_playing_is_refused() -> None:
    with pytest.raises(AudioInputError, match="only silence"):
        cal.measure(np.full(300, -120.0), np.zeros(300), hop_s=0.01)
    with pytest.raises(AudioInputError, match="play continuously"):
        cal.measure(np.concatenate([np.full(30, -20.0), np.full(300, -120.0)]), np.zeros(330), hop_s=0.01)


def test_store_and_load_per_device(tmp_path: Path) -> None:
    config_file = tmp_path / "box.yaml"
    config_file.write_text("state:\n  calibration: cal/levels.json\n", encoding="utf-8")
    config = parse_config(config_file.read_text(), str(config_file))
    assert cal.calibration_path(config) == tmp_path / "cal" / "levels.json"
    a = cal.measure(_levels(-40.0), np.full(625, 0.1), hop_s=0.01)
    b = cal.measure(_levels(-20.0), np.full(625, 0.1), hop_s=0.01)
    cal.store(config, cal.device_key("pyaudio", "USB Audio"), a)
    cal.store(config, cal.device_key("jack", "system:capture_1"), b)
    assert cal.load(config, "pyaudio:USB Audio") == a
    assert cal.load(config, "jack:system:capture_1") == b
    assert cal.load(config, "pyaudio:Other") is None


def test_an_unreadable_file_means_uncalibrated(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text("{not json", encoding="utf-8")
    config = dataclasses.replace(default_config(), state=dataclasses.replace(default_config().state, calibration=str(path)))
    assert cal.load(config, "pyaudio:x") is None
