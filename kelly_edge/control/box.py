"""The real :class:`~kelly_edge.control.actions.BoxControls`: footswitch actions applied to the Engine.

What "switching a model off" means, per model (and what a config-disabled network, a re-load
or a failure do instead) is decided in one place, :mod:`kelly_edge.engine.model_state`: here a
switch, a preset or a restored state only calls ``engine.model_states.switch``. Freezing the
emotion holds the emotion model's last output (``model_states.hold``) until it is released.

Everything here runs on the thread that calls ``engine.process_hop`` (between hops): the engine
is not thread-safe.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from kelly_edge.config.schema import Config, emotion_cycle, with_preset
from kelly_edge.control.leds import BLINK, OFF, ON
from kelly_edge.emotion import thesaurus
from kelly_edge.models import spec
from kelly_edge.service.state import ControlState
from kelly_edge.tempo.tap import TapTempo

log = logging.getLogger(__name__)

DEFERRAL_BLINK_S = 1.0  # a model LED blinks this long after the model was last deferred


class EngineControls:
    """Footswitch actions on a running :class:`~kelly_edge.engine.engine.Engine`.

    ``config`` is the file's config (with its presets). ``on_change()`` is called after every
    change a restart should remember (the panel saves the state then). ``tap``: where taps go when
    the live loop's tempo source takes them (``TapSource.tap``, which returns the tapped BPM and
    applies it at its next poll); None: taps set the engine's tempo here (any tempo source).
    ``panic``: what the panic action runs (the live loop's panic, which also sends all-notes-off
    on the port at once); None: ``engine.panic()``. ``clock`` is only used for the LED deferral hold.
    """

    def __init__(self, engine: Any, config: Config, *, on_change: Callable[[], None] | None = None,
                 tap: Callable[[float], float | None] | None = None,
                 panic: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self._panic = panic if panic is not None else engine.panic
        self.config = config
        self.on_change = on_change
        self.clock = clock
        self._tap = tap
        self.tapper = TapTempo()
        self.frozen = False
        self.state = ControlState(active={name: True for name in spec.MODEL_NAMES}, intent=config.emotion.intent)
        self._deferrals = {name: 0 for name in spec.MODEL_NAMES}
        self._deferred_at = {name: -float("inf") for name in spec.MODEL_NAMES}
        self._leds = {name: OFF for name in spec.MODEL_NAMES}
        engine.model_states.allow_voices(config.generator)
        for name in spec.MODEL_NAMES:
            self._set_active(name, getattr(config.active, name))

    # --- BoxControls --------------------------------------------------------------------------
    def toggle_model(self, name: str) -> None:
        self._set_active(name, not self.state.active[name])
        log.info("%s model switched %s", name, "on" if self.state.active[name] else "off")
        self._changed()

    def panic(self) -> None:
        log.info("panic: all notes off")
        self._panic()

    def tap(self, t: float) -> None:
        if self._tap is not None:
            bpm = self._tap(t)  # the tempo source applies it at its next poll
            if bpm is not None:
                self.state.bpm = float(bpm)
                self._changed()
            return
        bpm = self.tapper.tap(t)
        if bpm is not None:
            self.state.bpm = float(bpm)
            self.engine.set_tempo(self.state.bpm)
            log.info("tap tempo: %.1f BPM", self.state.bpm)
            self._changed()

    def cycle_intent(self, step: int) -> None:
        cycle: list[str | None] = [None, *emotion_cycle(self._effective().emotion.cycle)]
        current = self.state.intent
        index = cycle.index(current) if current in cycle else 0
        self._set_intent(cycle[(index + step) % len(cycle)])
        log.info("intent: %s", self.state.intent or "none (follow the playing)")
        self._changed()

    def select_preset(self, step: int) -> None:
        names: list[str | None] = [None, *self.config.presets]
        if len(names) == 1:
            log.info("no presets in %s", self.config.source)
            return
        current = self.state.preset
        index = names.index(current) if current in names else 0
        self._select(names[(index + step) % len(names)])
        self._changed()

    def freeze_emotion(self) -> None:
        self.frozen = not self.frozen
        self.engine.model_states.hold("emotion", self.frozen)
        log.info("emotion %s", "frozen" if self.frozen else "follows the playing again")

    # --- presets, state, config ---------------------------------------------------------------
    def _effective(self) -> Config:
        """The file's config with the selected preset applied."""
        return with_preset(self.config, self.state.preset)

    def _select(self, name: str | None) -> None:
        """Select preset ``name`` (None: the file's own values): its tempo, intent and switches."""
        self.state.preset = name
        effective = self._effective()
        self.state.bpm = None
        self.tapper = TapTempo()
        self.engine.model_states.allow_voices(effective.generator)
        self.engine.set_tempo(effective.tempo.bpm)
        self._set_intent(effective.emotion.intent, effective.emotion.intent_amount)
        for model in spec.MODEL_NAMES:
            self._set_active(model, getattr(effective.active, model))
        log.info("preset: %s", name or "none (the config file's values)")

    def restore(self, state: ControlState) -> None:
        """Put back a persisted state (unknown preset or intent names are ignored with a warning)."""
        if state.preset is not None and state.preset not in self.config.presets:
            log.warning("saved preset %r is no longer in %s; using the file's values", state.preset, self.config.source)
        elif state.preset is not None:
            self._select(state.preset)
        for model, on in state.active.items():
            if model in self.state.active:
                self._set_active(model, bool(on))
        if state.intent is None:
            self._set_intent(None)  # the player had stepped to "no intent"
        else:
            try:
                thesaurus.by_name(state.intent)
            except KeyError as err:
                log.warning("saved intent ignored: %s", err.args[0])
            else:
                self._set_intent(state.intent)
        if state.bpm is not None and 20.0 <= state.bpm <= 300.0:
            self.state.bpm = float(state.bpm)
            self.engine.set_tempo(self.state.bpm)

    def apply_config(self, new: Config) -> None:
        """A reloaded config: apply what changed in the file, keep what the footswitches set otherwise.

        Compared with the old file (each with the selected preset applied, the preset dropped when
        it is gone): a changed ``tempo.bpm`` sets the tempo, a changed ``emotion`` section the
        intent, a changed ``active.<model>`` that switch; voice ``enabled`` flags and
        ``scheduler.budget_ms`` apply at once. Other changes are left to the caller (see
        :func:`kelly_edge.service.reload.restart_keys`).
        """
        old_effective = self._effective()
        self.config = new
        if self.state.preset is not None and self.state.preset not in new.presets:
            log.warning("preset %r is gone from %s; back to the file's values", self.state.preset, new.source)
            self.state.preset = None
        effective = self._effective()
        if effective.tempo.bpm != old_effective.tempo.bpm:
            self.state.bpm = None
            self.engine.set_tempo(effective.tempo.bpm)
        if effective.emotion != old_effective.emotion:
            self._set_intent(effective.emotion.intent, effective.emotion.intent_amount)
        for model in spec.MODEL_NAMES:
            if getattr(effective.active, model) != getattr(old_effective.active, model):
                self._set_active(model, getattr(effective.active, model))
        if effective.generator != old_effective.generator:
            self.engine.model_states.allow_voices(effective.generator)
        self.engine.scheduler.budget_s = new.scheduler.budget_ms / 1000.0
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # --- the engine side ------------------------------------------------------------------------
    def _set_active(self, name: str, on: bool) -> None:
        self.engine.model_states.switch(name, on)
        self.state.active[name] = self.engine.model_states.is_on(name)  # what is saved is what is in force

    def _set_intent(self, name: str | None, amount: float | None = None) -> None:
        """Lean the music toward emotion ``name`` (None: follow the playing only)."""
        self.state.intent = name
        if amount is None:
            amount = self._effective().emotion.intent_amount
        self.engine.set_intent(name, amount)

    # --- status for the LEDs ------------------------------------------------------------------
    def model_leds(self, now: float | None = None) -> dict[str, str]:
        """Each model's LED mode: off (switched off), blink (fallback or recently deferred), on.

        Returns the same dict object every call (updated in place): cheap enough per hop.
        """
        if now is None:
            now = self.clock()
        states = self.engine.model_states
        for name in spec.MODEL_NAMES:
            info = states.info(name)
            if info.deferrals != self._deferrals[name]:
                self._deferrals[name] = info.deferrals
                self._deferred_at[name] = now
            if not info.on:
                mode = OFF
            elif info.status != "trained" or now - self._deferred_at[name] < DEFERRAL_BLINK_S:
                mode = BLINK
            else:
                mode = ON
            self._leds[name] = mode
        return self._leds

    def beat_phase(self) -> float:
        """Position in beats on the engine's grid (the tempo LED flashes at each integer)."""
        grid = self.engine.grid
        return float(grid.position(self.engine.time_s)) / 4.0
