"""The pin-factory seam: which gpiozero backend drives the footswitch and LED pins.

gpiozero already abstracts GPIO libraries behind *pin factories*; the box only chooses one, from
``gpio.backend`` in the config, and passes it to every device it builds (``pin_factory=``), so
nothing here touches a GPIO library directly:

- ``auto``: gpiozero's own choice (lgpio first: the only one that works on a Pi 5);
- ``lgpio``: the Pi 5 and current Raspberry Pi OS on any Pi;
- ``rpigpio``: RPi.GPIO underneath, for owners of older Pis who keep it (it does not work on a Pi 5);
- ``pigpio``: the pigpio daemon (remote GPIO);
- ``native``: gpiozero's pure-Python fallback;
- ``mock``: :class:`gpiozero.pins.mock.MockFactory`: no hardware (rehearsal on a laptop, tests).

Backend modules are imported lazily, so a machine without lgpio can still run with ``mock``.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from kelly_edge.errors import DeviceError

log = logging.getLogger(__name__)

FACTORIES: dict[str, tuple[str, str, str]] = {
    # backend: (module, class, what to install when the import fails)
    "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory", "python3-lgpio (apt) or lgpio (pip)"),
    "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory", "python3-rpi.gpio (apt) or RPi.GPIO (pip); not on a Pi 5"),
    "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory", "python3-pigpio and a running pigpiod"),
    "native": ("gpiozero.pins.native", "NativeFactory", "nothing (part of gpiozero)"),
    "mock": ("gpiozero.pins.mock", "MockFactory", "nothing (part of gpiozero)"),
}
BACKENDS = ("auto", *FACTORIES)


def make_pin_factory(backend: str) -> Any:
    """A gpiozero pin factory for ``backend`` (one of :data:`BACKENDS`), or None for ``auto``.

    None means "let gpiozero choose" (``Device.pin_factory`` or its default search, which the
    ``GPIOZERO_PIN_FACTORY`` environment variable can override). Raises :class:`DeviceError` with
    the package to install when the backend cannot be loaded or finds no GPIO chip.
    """
    if backend == "auto":
        return None
    if backend not in FACTORIES:
        raise DeviceError(f"unknown gpio.backend {backend!r} (one of {', '.join(BACKENDS)})")
    module_name, class_name, needs = FACTORIES[backend]
    try:
        module = importlib.import_module(module_name)
        factory = getattr(module, class_name)()
    except ImportError as err:
        raise DeviceError(f"gpio.backend {backend} is not installed: {err} (install {needs})") from err
    except Exception as err:  # the library loaded but found no GPIO (not a Pi, no /dev/gpiochip*)
        raise DeviceError(
            f"gpio.backend {backend} cannot start: {type(err).__name__}: {err} "
            "(on a Pi: is the user in the gpio group? elsewhere use gpio.backend: mock)"
        ) from err
    log.debug("gpio backend %s: %s", backend, type(factory).__name__)
    return factory


def needs_pins(config: Any) -> bool:
    """Whether the config uses any GPIO pin (a box without switches or LEDs opens no backend)."""
    if config.footswitches:
        return True
    leds = config.leds
    return any(getattr(leds, name) is not None for name in leds.__dataclass_fields__)
