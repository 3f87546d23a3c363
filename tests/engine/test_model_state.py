"""ModelStates, the one owner of a model's source and switch, on a real Engine (heuristic models)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from kelly_edge.engine.model_state import NEUTRAL_GROOVE
from kelly_edge.models import spec
from kelly_edge.models.fallbacks import make_fallback
from kelly_edge.models.runner import LoadedModel
from tests.control.test_engine_controls import BASS_CH, MELODY_CH, Box


def _constant_groove(value: float) -> LoadedModel:
    out = np.full(spec.GROOVE.n_out, value, dtype=np.float32)
    return LoadedModel(spec.GROOVE, lambda x: out, "trained", "a re-loaded stand-in network")


def test_a_model_switched_off_in_the_config_is_off_from_the_first_hop_without_any_footswitch() -> None:
    box = Box("active:\n  melody: false\n")  # an offline run: no control panel
    box.play(6.0)
    assert box.note_ons(BASS_CH) and not box.note_ons(MELODY_CH)
    info = box.engine.model_states.info("melody")
    assert not info.on and info.runs == 0  # an off melody has nothing to play: it does not run
    box.engine.model_states.switch("melody", True)
    t = box.engine.time_s
    box.play(4.0)
    assert box.note_ons(MELODY_CH, after=t) and box.engine.model_states.info("melody").runs > 0


def test_a_model_installed_while_off_plays_when_switched_on() -> None:
    box = Box()
    states = box.engine.model_states
    states.switch("groove", False)
    box.play(3.0)
    states.install("groove", _constant_groove(0.25))
    box.play(3.0)
    assert states.models["groove"].reason == "a re-loaded stand-in network"
    np.testing.assert_array_equal(states.output("groove"), NEUTRAL_GROOVE)  # still off: the neutral feel
    states.switch("groove", True)
    box.play(3.0)
    np.testing.assert_array_equal(states.output("groove"), np.full(spec.GROOVE.n_out, 0.25, np.float32))


def test_a_network_the_config_disables_stays_on_its_fallback_when_re_loaded() -> None:
    box = Box("models:\n  groove: {enabled: false}\n")
    states = box.engine.model_states
    states.install("groove", _constant_groove(0.25))
    info = states.info("groove")
    assert info.on and info.status == "fallback" and info.why == "disabled in the config"


def test_a_failing_model_is_logged_once_runs_its_fallback_and_a_re_loaded_one_is_logged_again(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="kelly_edge.engine.model_state")

    def broken(x: np.ndarray) -> np.ndarray:
        raise RuntimeError("bad tensor")

    models = {s.name: LoadedModel(s, make_fallback(s.name), "fallback", "test") for s in spec.MODELS}
    models["harmony"] = LoadedModel(spec.HARMONY, broken, "trained", "a broken network")
    box = Box(models=models)
    box.play(3.0)
    info = box.engine.model_states.info("harmony")
    assert info.status == "fallback" and info.why == "failed at run time: bad tensor"
    assert info.failures == 1 and info.runs > 3  # the fallback took over and kept running
    assert len(caplog.records) == 1
    box.engine.model_states.install("harmony", LoadedModel(spec.HARMONY, broken, "trained", "re-loaded, still broken"))
    box.play(2.0)
    assert len(caplog.records) == 2 and box.engine.model_states.info("harmony").failures == 2
    assert box.note_ons(BASS_CH)  # the box played on


def test_a_held_model_keeps_its_last_output_and_the_snapshot_says_so() -> None:
    box = Box()
    states = box.engine.model_states
    box.play(2.0)
    states.hold("emotion", True)
    before, runs = states.output("emotion").copy(), states.info("emotion").runs
    box.play(2.0)
    info = states.info("emotion")
    assert info.held and info.on and info.runs == runs
    np.testing.assert_array_equal(states.output("emotion"), before)
    assert states.snapshot()["emotion"].as_dict()["held"] is True
