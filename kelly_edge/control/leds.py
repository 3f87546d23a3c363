"""Status LEDs: one per model, a tempo LED and an error pattern, driven from the processing loop.

Patterns are computed here from a time and a state rather than left to gpiozero's ``blink()``
threads: they are then testable with a fake clock, they stay in phase with the music (the tempo
LED follows the engine's beat grid, not a free-running timer) and a pin is written only when its
level changes. :meth:`LedBank.show` is cheap enough to call every hop.

- model LED: ``"on"`` lit, ``"off"`` dark, ``"blink"`` (running its heuristic fallback, or deferred
  within the last second) 2 Hz blink;
- tempo LED: lit for the first :data:`TEMPO_FLASH` of every beat;
- error: a double flash every second on the error LED, or on the tempo LED when there is no
  error LED (it then stops showing the beat until the error clears).

Every LED is switched off by :meth:`LedBank.close` (also when the program exits through it).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Mapping

from kelly_edge.errors import DeviceError
from kelly_edge.models import spec

log = logging.getLogger(__name__)

ON, OFF, BLINK = "on", "off", "blink"
MODES = (ON, OFF, BLINK)
BLINK_PERIOD_S = 0.5  # 2 Hz: readable from a standing position
TEMPO_FLASH = 0.15  # share of a beat the tempo LED is lit
ERROR_PERIOD_S = 1.0
ERROR_FLASHES = ((0.0, 0.1), (0.2, 0.3))  # lit spans within each error period, seconds
LED_NAMES = (*spec.MODEL_NAMES, "tempo", "error")


def mode_level(mode: str, now: float) -> bool:
    """Whether an LED in ``mode`` is lit at ``now`` seconds."""
    if mode == ON:
        return True
    if mode == BLINK:
        return (now % BLINK_PERIOD_S) < BLINK_PERIOD_S / 2
    return False


def tempo_level(beat_phase: float | None) -> bool:
    """Lit at the start of each beat; ``beat_phase`` is the position in beats (any real, or None: dark)."""
    if beat_phase is None or not math.isfinite(beat_phase):
        return False
    return (beat_phase % 1.0) < TEMPO_FLASH


def error_level(now: float) -> bool:
    """The error pattern: two short flashes each second."""
    t = now % ERROR_PERIOD_S
    return any(a <= t < b for a, b in ERROR_FLASHES)


class LedBank:
    """The configured LEDs (``config.leds``, ``config.gpio.led_active_high``) on gpiozero.

    ``pin_factory`` as for :class:`~kelly_edge.control.footswitch.Footswitches`. LEDs without a pin
    in the config are simply absent. ``levels`` holds what each present LED shows now.
    """

    def __init__(self, config: Any, *, pin_factory: Any = None) -> None:
        from gpiozero import LED
        from gpiozero.exc import GPIOZeroError

        self.leds: dict[str, Any] = {}
        self.levels: dict[str, bool] = {}
        active_high = config.gpio.led_active_high
        try:
            for name in LED_NAMES:
                pin = getattr(config.leds, name)
                if pin is None:
                    continue
                try:
                    self.leds[name] = LED(pin, active_high=active_high, initial_value=False, pin_factory=pin_factory)
                except (GPIOZeroError, OSError, RuntimeError) as err:
                    raise DeviceError(f"LED {name!r}: cannot open GPIO {pin}: {err} "
                                      "(check the pin number, gpio.backend and the gpio group)") from err
                self.levels[name] = False
        except BaseException:
            self.close()
            raise
        self._error_on_tempo = "error" not in self.leds
        self.closed = False

    def _set(self, name: str, lit: bool) -> None:
        if name in self.leds and self.levels[name] != lit:
            self.levels[name] = lit
            led = self.leds[name]
            led.on() if lit else led.off()

    def show(self, *, models: Mapping[str, str], beat_phase: float | None, error: bool, now: float) -> None:
        """Set every LED for this moment: ``models`` maps model name -> ``"on" | "off" | "blink"``."""
        if self.closed:
            return
        for name in spec.MODEL_NAMES:
            self._set(name, mode_level(models.get(name, OFF), now))
        if error and self._error_on_tempo:
            self._set("tempo", error_level(now))
        else:
            self._set("tempo", tempo_level(beat_phase))
        self._set("error", error and error_level(now))

    def off(self) -> None:
        """Every LED dark."""
        for name in self.leds:
            self._set(name, False)

    def close(self) -> None:
        """Switch every LED off and release the pins; idempotent."""
        for name, led in list(self.leds.items()):
            try:
                led.off()
                self.levels[name] = False
                led.close()
            except Exception:  # shutting down: keep going for the other LEDs
                log.debug("closing LED %s failed", name, exc_info=True)
        self.leds = {}
        self.closed = True

    def __enter__(self) -> LedBank:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
