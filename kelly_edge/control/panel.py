"""The control panel: footswitches + LEDs + the engine controls + persisted state, as one object.

The live loop owns one :class:`ControlPanel` and, on its processing thread (the thread that owns
the engine), calls :meth:`ControlPanel.tick` after every hop and :meth:`ControlPanel.apply_config`
when the config was reloaded; :meth:`ControlPanel.close` at shutdown switches every LED off and
releases the pins. A config without footswitches or LEDs opens no GPIO backend at all.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from kelly_edge.config.schema import Config, state_path
from kelly_edge.control.box import EngineControls
from kelly_edge.control.pins import make_pin_factory, needs_pins
from kelly_edge.errors import DeviceError
from kelly_edge.service.state import StateStore

log = logging.getLogger(__name__)

ERROR_HOLD_S = 10.0  # a transient error (rejected config) is shown this long
_FROM_CONFIG: Any = object()


class ControlPanel:
    """What the player touches and sees on the box.

    ``engine``/``config``: the running engine and the config it was built from. ``pin_factory``:
    a gpiozero pin factory (tests pass ``MockFactory()``); by default the one ``gpio.backend``
    names, made only when a pin is configured. ``tap``, ``panic``: see :class:`EngineControls`.
    ``clock``: seconds (``time.monotonic``): footswitch timestamps and LED patterns.
    ``synchronous_state``: write the state file on the calling thread (tests).

    Raises :class:`DeviceError` when the configured pins cannot be opened at start.
    """

    def __init__(
        self,
        engine: Any,
        config: Config,
        *,
        pin_factory: Any = _FROM_CONFIG,
        tap: Callable[[float], float | None] | None = None,
        panic: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        synchronous_state: bool = False,
    ) -> None:
        self.config = config
        self.clock = clock
        self._pin_factory = pin_factory
        self._synchronous_state = synchronous_state
        self.store: StateStore | None = None
        self.footswitches: Any = None
        self.leds: Any = None
        self.faults: set[str] = set()
        self._error_until = -float("inf")
        self.controls = EngineControls(engine, config, on_change=self._save, tap=tap, panic=panic,
                                       clock=clock)
        self._open_store(config, restore=True)
        self._open_hardware(config)

    # --- per hop ------------------------------------------------------------------------------
    def tick(self, now: float | None = None) -> None:
        """Run the footswitches' gestures and refresh the LEDs; call between hops."""
        if now is None:
            now = self.clock()
        if self.footswitches is not None:
            self.footswitches.poll(now)
        if self.leds is not None:
            self.leds.show(models=self.controls.model_leds(now), beat_phase=self.controls.beat_phase(),
                           error=self.error_active(now), now=now)

    # --- errors shown on the LEDs ---------------------------------------------------------------
    def flag_error(self, hold_s: float = ERROR_HOLD_S) -> None:
        """Show the error pattern for ``hold_s`` seconds (a rejected config, a failed action)."""
        self._error_until = max(self._error_until, self.clock() + hold_s)

    def set_fault(self, name: str, active: bool) -> None:
        """Show the error pattern while fault ``name`` lasts (``"midi"`` port gone, ``"audio"``...)."""
        if active:
            self.faults.add(name)
        else:
            self.faults.discard(name)

    def error_active(self, now: float | None = None) -> bool:
        if self.faults:
            return True
        return (self.clock() if now is None else now) < self._error_until

    # --- config ---------------------------------------------------------------------------------
    def apply_config(self, new: Config) -> None:
        """A reloaded, valid config: new switches/LEDs/state file when those changed, and
        :meth:`EngineControls.apply_config` for the rest."""
        old = self.config
        self.config = new
        self.controls.apply_config(new)
        if (old.gpio, old.footswitches, old.leds) != (new.gpio, new.footswitches, new.leds):
            self._close_hardware()
            try:
                self._open_hardware(new)
            except DeviceError as err:
                log.error("footswitches/LEDs unavailable after the reload: %s", err)
                self.set_fault("gpio", True)
            else:
                self.set_fault("gpio", False)
        if old.state != new.state:
            self._close_store()
            self._open_store(new, restore=False)
            self._save()

    # --- internals ------------------------------------------------------------------------------
    def _open_hardware(self, config: Config) -> None:
        if not needs_pins(config):
            return
        factory = make_pin_factory(config.gpio.backend) if self._pin_factory is _FROM_CONFIG else self._pin_factory
        from kelly_edge.control.footswitch import Footswitches
        from kelly_edge.control.leds import LedBank

        try:
            self.leds = LedBank(config, pin_factory=factory)
            self.footswitches = Footswitches(config, self.controls, pin_factory=factory, clock=self.clock)
        except BaseException:
            self._close_hardware()
            raise
        log.info("footswitches: %s; LEDs: %s", ", ".join(config.footswitches) or "none",
                 ", ".join(self.leds.leds) or "none")

    def _close_hardware(self) -> None:
        leds, self.leds = self.leds, None
        switches, self.footswitches = self.footswitches, None
        if leds is not None:
            leds.close()
        if switches is not None:
            switches.close()

    def _open_store(self, config: Config, *, restore: bool) -> None:
        if not config.state.persist:
            return
        self.store = StateStore(state_path(config), synchronous=self._synchronous_state)
        if restore:
            saved = self.store.load()
            if saved is not None:
                self.controls.restore(saved)
                log.info("restored the footswitch state from %s", self.store.path)

    def _close_store(self) -> None:
        store, self.store = self.store, None
        if store is not None:
            store.close()

    def _save(self) -> None:
        store = self.store
        if store is not None:
            store.save(self.controls.state.copy())

    def close(self) -> None:
        """Every LED off, pins released, pending state written; idempotent."""
        self._close_hardware()
        self._close_store()

    def __enter__(self) -> ControlPanel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
