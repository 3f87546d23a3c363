"""The footswitch action table: every action reaches its BoxControls method; bad names are explained."""

from __future__ import annotations

from typing import Any

import pytest

from kelly_edge.config.schema import schema_markdown
from kelly_edge.control.actions import ACTION_NAMES, ACTIONS, NONE, BoxControls, check_action, run_action
from kelly_edge.models import spec

EXPECTED = {
    "none": None,
    "panic": ("panic", None),
    "tap_tempo": ("tap", 12.5),
    "intent_next": ("cycle_intent", 1),
    "intent_prev": ("cycle_intent", -1),
    "preset_next": ("select_preset", 1),
    "preset_prev": ("select_preset", -1),
    "freeze_emotion": ("freeze_emotion", None),
    **{f"toggle_{m}": ("toggle_model", m) for m in spec.MODEL_NAMES},
}


def test_the_table_has_every_action_the_issue_asks_for() -> None:
    assert set(ACTION_NAMES) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_action_calls_its_method(name: str, controls: Any) -> None:
    run_action(name, controls, 12.5)
    expected = EXPECTED[name]
    assert controls.calls == ([] if expected is None else [expected])


def test_the_recording_fake_is_a_box_controls(controls: Any) -> None:
    assert isinstance(controls, BoxControls)


@pytest.mark.parametrize("name", ACTION_NAMES)
def test_valid_names_pass(name: str) -> None:
    assert check_action(name) is None


def test_unknown_model_in_a_toggle_names_the_model_and_the_models() -> None:
    problem = check_action("toggle_melodie")
    assert problem is not None
    assert "'melodie'" in problem and "toggle_melody" in problem
    assert all(m in problem for m in spec.MODEL_NAMES)
    problem = check_action("toggle_drums")
    assert problem is not None and "'drums'" in problem and "did you mean" not in problem


def test_unknown_action_lists_the_actions_and_suggests_one() -> None:
    problem = check_action("tap_temp")
    assert problem is not None and "did you mean tap_tempo?" in problem
    assert all(name in problem for name in ACTION_NAMES)


def test_every_action_has_a_doc_and_the_docs_show_where_actions_go() -> None:
    assert all(a.doc for a in ACTIONS.values())
    assert NONE in ACTIONS
    md = schema_markdown()
    assert "footswitches.<name>.press" in md and "footswitches.<name>.long_press" in md
