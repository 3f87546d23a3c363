"""Footswitches: gpiozero edges -> our own debounce -> press / long_press / double_press -> actions.

Two layers. :class:`SwitchGestures` is pure logic over *timestamped* raw edges: it debounces and
recognises gestures, with every duration measured on the edge timestamps, so tests feed it
synthetic bounce and a fake clock and never sleep. :class:`Footswitches` owns the gpiozero
devices (one ``DigitalInputDevice`` per switch, built on the pin factory it is given) whose
callbacks, on gpiozero's thread, only timestamp the edge and append it to a deque; the processing
thread calls :meth:`Footswitches.poll` between hops, which runs the logic and the actions there,
so actions never race the engine.

Debounce (ours, because gpiozero's mock pins do not bounce and its ``bounce_time`` drops edges
rather than waiting for the contact to settle): a new level counts once the raw pin has stayed
at it for ``debounce_s``, and the change is dated at the *first* edge of the burst, so tap tempo
and gesture timing are not skewed by the debounce delay. A glitch shorter than ``debounce_s``
that returns to the old level is ignored entirely.

Gestures (per switch, depending on which gestures have an action):

- only ``press``: it fires on the press itself (after debounce): no waiting.
- with ``long_press``: held ``hold_s`` fires ``long_press`` while still held (its release then
  does nothing); released earlier fires ``press``.
- with ``double_press``: a second press starting within ``double_press_s`` of the first release
  fires ``double_press`` (the rest of that press is ignored); otherwise ``press`` fires once the
  window has passed.

The time passed to an action is the press time of the gesture (for a double press, the second
press), on the footswitch clock (``time.monotonic`` unless injected).
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any, Callable

from kelly_edge.control.actions import NONE, BoxControls, run_action
from kelly_edge.errors import DeviceError

log = logging.getLogger(__name__)

PRESS, LONG_PRESS, DOUBLE_PRESS = "press", "long_press", "double_press"
GESTURES = (PRESS, LONG_PRESS, DOUBLE_PRESS)

Emit = Callable[[str, float], None]


class SwitchGestures:
    """Debounce and gesture recognition for one switch, on timestamps (seconds, any monotonic clock).

    Feed raw edges in time order with :meth:`edge` (bounce and repeats allowed) and call
    :meth:`poll` with the current time often (every hop is fine; the gesture timing does not
    depend on how often, only on the timestamps, except that a gesture is emitted at the first
    poll after it is certain). Recognised gestures are passed to ``emit(gesture, t)``.
    """

    def __init__(
        self,
        *,
        debounce_s: float,
        hold_s: float,
        double_s: float,
        long_press: bool,
        double_press: bool,
        pressed: bool = False,
    ) -> None:
        if debounce_s < 0 or hold_s <= 0 or double_s <= 0:
            raise ValueError(f"need debounce_s >= 0, hold_s > 0, double_s > 0; got {debounce_s}, {hold_s}, {double_s}")
        self.debounce_s = float(debounce_s)
        self.hold_s = float(hold_s)
        self.double_s = float(double_s)
        self.has_long = bool(long_press)
        self.has_double = bool(double_press)
        self.pressed = bool(pressed)  # the debounced level
        self._raw = self.pressed
        self._raw_t = -float("inf")  # time of the latest raw edge
        self._burst_t = -float("inf")  # time of the first edge of the current (unsettled) burst
        self._down_t: float | None = None  # debounced press start, while held
        self._long_fired = False
        self._swallow = False  # the rest of this press belongs to a double press already fired
        self._pending_down_t: float | None = None  # a press waiting to see whether a second one comes
        self._pending_up_t = 0.0

    @property
    def busy(self) -> bool:
        """Whether :meth:`poll` could fire or change anything (False: the switch is at rest)."""
        return (
            self._raw != self.pressed
            or self._pending_down_t is not None
            or (self._down_t is not None and self.has_long and not self._long_fired and not self._swallow)
        )

    # --- input --------------------------------------------------------------------------------
    def edge(self, pressed: bool, t: float, emit: Emit) -> None:
        """A raw edge: the pin now reads ``pressed`` since ``t``."""
        pressed = bool(pressed)
        if pressed == self._raw:
            return
        self._settle(t, emit)  # the previous level may have been stable long enough
        if t - self._raw_t >= self.debounce_s:
            self._burst_t = t  # the first edge after a quiet spell starts a burst
        self._raw = pressed
        self._raw_t = t

    def poll(self, now: float, emit: Emit) -> None:
        """Settle the debounce and fire the gestures that are certain by ``now``."""
        self._settle(now, emit)
        # while a change is still settling, the level is only known up to the burst's start
        known = self._burst_t if self._raw != self.pressed else now
        self._timers(known, emit)

    # --- logic --------------------------------------------------------------------------------
    def _settle(self, now: float, emit: Emit) -> None:
        if self._raw != self.pressed and now - self._raw_t >= self.debounce_s:
            t = self._burst_t
            self._timers(t, emit)  # whatever was due before the change happened first
            self.pressed = self._raw
            if self.pressed:
                self._on_down(t, emit)
            else:
                self._on_up(t, emit)

    def _timers(self, now: float, emit: Emit) -> None:
        down = self._down_t
        if down is not None and self.has_long and not self._long_fired and not self._swallow:
            if now - down >= self.hold_s:
                self._long_fired = True
                emit(LONG_PRESS, down)
        if self._pending_down_t is not None and now - self._pending_up_t > self.double_s:
            t, self._pending_down_t = self._pending_down_t, None
            emit(PRESS, t)

    def _on_down(self, t: float, emit: Emit) -> None:
        if self._pending_down_t is not None:  # within the window (_timers would have fired it)
            self._pending_down_t = None
            self._swallow = True
            emit(DOUBLE_PRESS, t)
        self._down_t = t
        self._long_fired = False
        if not (self.has_long or self.has_double):
            emit(PRESS, t)

    def _on_up(self, t: float, emit: Emit) -> None:
        down, self._down_t = self._down_t, None
        if self._swallow or self._long_fired or down is None:
            self._swallow = False
            self._long_fired = False
            return
        if self.has_double:
            self._pending_down_t = down
            self._pending_up_t = t
        elif self.has_long:
            emit(PRESS, down)


class _Switch:
    """One configured switch: its device, its logic and the action of each gesture."""

    def __init__(self, name: str, device: Any, logic: SwitchGestures, actions: dict[str, str]) -> None:
        self.name = name
        self.device = device
        self.logic = logic
        self.actions = actions
        self.fired: list[tuple[str, float]] = []  # gestures recognised, drained by Footswitches._run

    def emit(self, gesture: str, t: float) -> None:
        self.fired.append((gesture, t))


class Footswitches:
    """The configured footswitches, on gpiozero, dispatching to a :class:`BoxControls`.

    ``config`` is the whole :class:`~kelly_edge.config.schema.Config` (``footswitches`` and
    ``gpio``). ``pin_factory`` comes from :func:`kelly_edge.control.pins.make_pin_factory` (None:
    gpiozero's default). ``clock`` stamps edges (seconds; ``time.monotonic``). Opening a pin that
    does not exist or is busy raises :class:`DeviceError` naming the switch and pin.

    Threading: the gpiozero callbacks only append ``(switch, pressed, time)`` to a deque;
    :meth:`poll` (one thread, the one that owns the engine) does the rest.
    """

    def __init__(
        self,
        config: Any,
        controls: BoxControls,
        *,
        pin_factory: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from gpiozero import DigitalInputDevice
        from gpiozero.exc import GPIOZeroError

        self.controls = controls
        self.clock = clock
        self._edges: collections.deque[tuple[int, bool, float]] = collections.deque()
        self.switches: list[_Switch] = []
        self.fired: collections.Counter[str] = collections.Counter()  # gestures recognised, by "name.gesture"
        gpio = config.gpio
        try:
            for index, (name, sw) in enumerate(config.footswitches.items()):
                actions = {PRESS: sw.press, LONG_PRESS: sw.long_press, DOUBLE_PRESS: sw.double_press}
                try:
                    device = DigitalInputDevice(sw.pin, pull_up=gpio.pull_up, bounce_time=None, pin_factory=pin_factory)
                except (GPIOZeroError, OSError, RuntimeError) as err:
                    raise DeviceError(f"footswitch {name!r}: cannot open GPIO {sw.pin}: {err} "
                                      "(check the pin number, gpio.backend and that the user is in the gpio group)") from err
                logic = SwitchGestures(
                    debounce_s=gpio.debounce_ms / 1000.0,
                    hold_s=sw.hold_s if sw.hold_s is not None else gpio.hold_s,
                    double_s=gpio.double_press_s,
                    long_press=sw.long_press != NONE,
                    double_press=sw.double_press != NONE,
                    pressed=bool(device.is_active),
                )
                self.switches.append(_Switch(name, device, logic, actions))
                device.when_activated = self._callback(index, True)
                device.when_deactivated = self._callback(index, False)
        except BaseException:
            self.close()
            raise
        self.closed = False

    def _callback(self, index: int, pressed: bool) -> Callable[[], None]:
        edges, clock = self._edges, self.clock

        def on_edge() -> None:  # gpiozero's thread: timestamp and enqueue, nothing else
            edges.append((index, pressed, clock()))

        return on_edge

    def poll(self, now: float | None = None) -> int:
        """Process the queued edges and the timers; run the actions of recognised gestures.

        Call from the thread that owns the engine, every hop or every few hops. Returns the
        number of gestures recognised. An action that raises is logged and does not stop others.
        """
        if now is None:
            now = self.clock()
        count = 0
        edges = self._edges
        switches = self.switches
        while edges:
            index, pressed, t = edges.popleft()
            sw = switches[index]
            count += self._feed(sw, pressed, t)
        for sw in switches:
            count += self._tick(sw, now)
        return count

    def _feed(self, sw: _Switch, pressed: bool, t: float) -> int:
        sw.logic.edge(pressed, t, sw.emit)
        return self._run(sw)

    def _tick(self, sw: _Switch, now: float) -> int:
        if not sw.logic.busy:
            return 0  # at rest: nothing can fire (the common case)
        sw.logic.poll(now, sw.emit)
        return self._run(sw)

    def _run(self, sw: _Switch) -> int:
        fired = sw.fired
        n = len(fired)
        while fired:
            gesture, t = fired.pop(0)
            action = sw.actions[gesture]
            self.fired[f"{sw.name}.{gesture}"] += 1
            if action == NONE:
                continue
            log.info("footswitch %s: %s -> %s", sw.name, gesture, action)
            try:
                run_action(action, self.controls, t)
            except Exception:  # an action must not take the loop down
                log.exception("footswitch %s: action %s failed", sw.name, action)
        return n

    def close(self) -> None:
        """Release the pins; idempotent."""
        for sw in self.switches:
            try:
                sw.device.close()
            except Exception:  # closing must not fail the shutdown
                log.debug("closing footswitch %s failed", sw.name, exc_info=True)
        self.switches = []
        self._edges.clear()
        self.closed = True

    def __enter__(self) -> Footswitches:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
