"""What a footswitch can do: one table read by the config schema, the footswitch code and the docs.

A footswitch gesture (``press``, ``long_press``, ``double_press``) names one action of
:data:`ACTIONS` in the YAML file (``press: toggle_melody``). Actions act on a :class:`BoxControls`,
a small seam: the footswitch code is tested against a recording fake, and the real box implements
it over the engine (:class:`kelly_edge.control.box.EngineControls`).

This module is deliberately light (no numpy, no gpiozero): the config schema imports it to
validate action names.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping, Protocol, runtime_checkable

from kelly_edge.models import spec


@runtime_checkable
class BoxControls(Protocol):
    """What footswitch actions may do to the running box.

    Implementations must be cheap (they run on the processing thread, between hops) and must not
    raise for a request that makes no sense right now (no presets defined, already frozen...):
    they do nothing and may log at debug level.

    ``toggle_model(name)``: switch one of ``spec.MODEL_NAMES`` off or back on.
    ``panic()``: every sounding note off now (all-notes-off on every channel).
    ``tap(t)``: one tap-tempo tap at time ``t`` (seconds, the footswitch clock; only differences matter).
    ``cycle_intent(step)``: move the emotional intent ``step`` places (+1 next, -1 previous) along the cycle.
    ``select_preset(step)``: move ``step`` places along the presets (+1 next, -1 previous).
    ``freeze_emotion()``: hold the current emotion (stop following the playing), or let it go again.
    """

    def toggle_model(self, name: str) -> None: ...

    def panic(self) -> None: ...

    def tap(self, t: float) -> None: ...

    def cycle_intent(self, step: int) -> None: ...

    def select_preset(self, step: int) -> None: ...

    def freeze_emotion(self) -> None: ...


@dataclass(frozen=True)
class Action:
    """One footswitch action: its YAML name, what it does (docs) and how it is applied.

    ``run(controls, t)``: ``t`` is the time of the press that triggered it (the footswitch clock,
    seconds), which tap tempo needs even when the gesture is recognised later.
    """

    name: str
    doc: str
    run: Callable[[BoxControls, float], None]


def _toggle(model: str) -> Action:
    return Action(f"toggle_{model}", f"switch the {model} model off / on",
                  lambda c, t: c.toggle_model(model))


NONE = "none"

ACTIONS: Mapping[str, Action] = MappingProxyType({a.name: a for a in (
    Action(NONE, "do nothing", lambda c, t: None),
    *(_toggle(m) for m in spec.MODEL_NAMES),
    Action("panic", "all notes off now", lambda c, t: c.panic()),
    Action("tap_tempo", "tap the tempo (the last taps set the BPM)", lambda c, t: c.tap(t)),
    Action("intent_next", "next emotional intent in emotion.cycle", lambda c, t: c.cycle_intent(1)),
    Action("intent_prev", "previous emotional intent in emotion.cycle", lambda c, t: c.cycle_intent(-1)),
    Action("preset_next", "next preset (after the last: back to the base config)", lambda c, t: c.select_preset(1)),
    Action("preset_prev", "previous preset", lambda c, t: c.select_preset(-1)),
    Action("freeze_emotion", "hold the current emotion / follow the playing again", lambda c, t: c.freeze_emotion()),
)})
"""Every action by YAML name, in documentation order."""

ACTION_NAMES: tuple[str, ...] = tuple(ACTIONS)
TOGGLE_PREFIX = "toggle_"


def actions_text() -> str:
    """The allowed values as the docs show them."""
    return ", ".join(ACTION_NAMES)


def check_action(value: str) -> str | None:
    """Schema rule for a gesture's action: None when valid, else the problem (read after the key).

    A ``toggle_<model>`` with an unknown model says so and names the models, because that is the
    likely mistake ("toggle_melodie", "toggle_drums").
    """
    if value in ACTIONS:
        return None
    if value.startswith(TOGGLE_PREFIX):
        model = value[len(TOGGLE_PREFIX):]
        close = difflib.get_close_matches(model, spec.MODEL_NAMES, n=1, cutoff=0.6)
        hint = f"; did you mean {TOGGLE_PREFIX}{close[0]}?" if close else ""
        return (f"names an unknown model {model!r} in {value!r} "
                f"(models: {', '.join(spec.MODEL_NAMES)}{hint})")
    close = difflib.get_close_matches(value, ACTION_NAMES, n=1, cutoff=0.6)
    if not close and value:  # "tap" for "tap_tempo", "freeze" for "freeze_emotion"
        close = [name for name in ACTION_NAMES if name.startswith(value)][:1]
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"must be an action ({actions_text()}), got {value!r}{hint}"


def run_action(name: str, controls: BoxControls, t: float) -> None:
    """Apply the action called ``name`` (already validated by the schema) at press time ``t``."""
    ACTIONS[name].run(controls, t)

