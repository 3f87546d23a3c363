"""Persisted footswitch state: JSON round trip, atomic writes, bad files ignored, the writer thread."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from kelly_edge.models import spec
from kelly_edge.service.state import ControlState, StateStore, load_state, state_from_json, state_to_json


def sample(**changes: object) -> ControlState:
    state = ControlState(active={m: m != "groove" for m in spec.MODEL_NAMES}, preset="ballad", intent="joy", bpm=96.5)
    for k, v in changes.items():
        setattr(state, k, v)
    return state


def test_round_trip() -> None:
    for state in (sample(), sample(preset=None, intent=None, bpm=None)):
        assert state_from_json(state_to_json(state)) == state


@pytest.mark.parametrize("data", [
    b"", b"not json", b"[]", b'{"version": 2, "active": {}}', b'{"version": 1, "active": {"melody": "yes"}}',
    b'{"version": 1, "active": {}, "bpm": "fast"}', b'{"version": 1, "active": {}, "preset": 3}', b"\xff\xfe",
])
def test_malformed_state_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        state_from_json(data)


def test_a_missing_file_is_a_first_start_and_a_bad_one_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert load_state(tmp_path / "none.json") is None
    assert not caplog.records
    bad = tmp_path / "bad.json"
    bad.write_text("{half", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        assert load_state(bad) is None
    assert len(caplog.records) == 1 and str(bad) in caplog.records[0].getMessage()


def test_the_store_writes_atomically_and_keeps_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.json"
    store = StateStore(path, synchronous=True)
    store.save(sample())
    assert load_state(path) == sample()
    os.chmod(path, 0o640)
    store.save(sample(bpm=120.0))
    assert load_state(path).bpm == 120.0  # type: ignore[union-attr]
    assert (path.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.json"]
    store.save(sample(bpm=120.0))
    assert store.writes == 2  # the same state is not written again


def test_the_writer_thread_coalesces_and_close_flushes(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = StateStore(path)
    for bpm in range(60, 120):
        store.save(sample(bpm=float(bpm)))
    store.close()
    store.close()
    assert json.loads(path.read_text())["bpm"] == 119.0
    assert 1 <= store.writes <= 60


def test_an_unwritable_folder_is_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = StateStore(blocker / "state.json", synchronous=True)
    store.save(sample())
    store.save(sample(bpm=100.0))
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "footswitch state" in errors[0].getMessage()
