"""Footswitch debounce and gestures: pure logic on synthetic edges, then real gpiozero mock pins."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kelly_edge.config.loader import parse_config
from kelly_edge.control.footswitch import DOUBLE_PRESS, LONG_PRESS, PRESS, Footswitches, SwitchGestures
from kelly_edge.errors import DeviceError

DEBOUNCE = 0.02
HOLD = 0.8
DOUBLE = 0.35


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, float]] = []

    def __call__(self, gesture: str, t: float) -> None:
        self.events.append((gesture, t))

    @property
    def gestures(self) -> list[str]:
        return [g for g, _ in self.events]


def logic(*, long_press: bool = False, double_press: bool = False, debounce: float = DEBOUNCE) -> SwitchGestures:
    return SwitchGestures(debounce_s=debounce, hold_s=HOLD, double_s=DOUBLE, long_press=long_press,
                          double_press=double_press)


def bounce(sw: SwitchGestures, emit: Recorder, pressed: bool, t: float, n: int = 5, gap: float = 0.001) -> float:
    """A contact closing (or opening) with ``n`` bounces of ``gap`` s: ends at ``pressed``."""
    level = pressed
    for i in range(2 * n + 1):
        sw.edge(level, t + i * gap, emit)
        level = not level
    return t + 2 * n * gap


def run(sw: SwitchGestures, emit: Recorder, t0: float, t1: float, step: float = 0.005) -> None:
    """Poll from t0 to t1 as the processing loop would (every ``step`` s)."""
    t = t0
    while t <= t1:
        sw.poll(t, emit)
        t += step


# --- debounce ------------------------------------------------------------------------------------


def test_a_bouncing_press_is_one_press_dated_at_its_first_edge() -> None:
    sw, rec = logic(), Recorder()
    end = bounce(sw, rec, True, 1.0)
    run(sw, rec, end, end + 0.1)
    assert rec.events == [(PRESS, 1.0)]
    end = bounce(sw, rec, False, 1.3)
    run(sw, rec, end, end + 0.1)
    assert rec.gestures == [PRESS]  # the bouncing release fires nothing


def test_without_debounce_the_same_bounce_fires_many_presses() -> None:
    sw, rec = logic(debounce=0.0), Recorder()
    end = bounce(sw, rec, True, 1.0)
    run(sw, rec, end, end + 0.1)
    assert len(rec.events) > 1  # so the debounce in the previous test is doing the work


def test_a_glitch_shorter_than_the_debounce_is_ignored() -> None:
    sw, rec = logic(), Recorder()
    sw.edge(True, 1.0, rec)
    sw.edge(False, 1.0 + DEBOUNCE / 2, rec)
    run(sw, rec, 1.0, 1.5)
    assert rec.events == []
    assert not sw.pressed


def test_a_press_is_not_believed_before_it_is_stable() -> None:
    sw, rec = logic(), Recorder()
    sw.edge(True, 1.0, rec)
    sw.poll(1.0 + DEBOUNCE / 2, rec)
    assert rec.events == []
    sw.poll(1.0 + DEBOUNCE, rec)
    assert rec.events == [(PRESS, 1.0)]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6),
                          st.floats(0.05, 0.5), st.floats(0.05, 0.6)), min_size=1, max_size=6))
def test_any_bounce_shorter_than_the_debounce_gives_one_press_per_stomp(stomps: list[tuple[int, int, float, float]]) -> None:
    sw, rec = logic(), Recorder()
    t = 1.0
    starts = []
    for n_down, n_up, held, rest in stomps:
        gap = DEBOUNCE / (2 * max(n_down, n_up, 1) + 2)  # the whole bounce fits in the debounce time
        starts.append(t)
        bounce(sw, rec, True, t, n_down, gap)
        run(sw, rec, t, t + held)
        t += held
        bounce(sw, rec, False, t, n_up, gap)
        run(sw, rec, t, t + rest)
        t += rest
    assert rec.gestures == [PRESS] * len(stomps)
    assert [at for _, at in rec.events] == pytest.approx(starts)


# --- gestures -------------------------------------------------------------------------------------


def test_long_press_fires_while_held_and_its_release_fires_nothing() -> None:
    sw, rec = logic(long_press=True), Recorder()
    sw.edge(True, 1.0, rec)
    run(sw, rec, 1.0, 1.0 + HOLD - 0.05)
    assert rec.events == []  # with a long_press action, a press must wait to know which it is
    run(sw, rec, 1.0 + HOLD - 0.05, 1.0 + HOLD + 0.05)
    assert rec.events == [(LONG_PRESS, 1.0)]
    sw.edge(False, 2.5, rec)
    run(sw, rec, 2.5, 3.0)
    assert rec.gestures == [LONG_PRESS]


def test_a_short_press_on_a_long_press_switch_fires_press_at_release() -> None:
    sw, rec = logic(long_press=True), Recorder()
    sw.edge(True, 1.0, rec)
    run(sw, rec, 1.0, 1.3)
    sw.edge(False, 1.3, rec)
    run(sw, rec, 1.3, 2.5)
    assert rec.events == [(PRESS, 1.0)]


def test_a_release_just_before_the_hold_time_is_not_a_long_press_even_when_polled_late() -> None:
    # the release is only certain a debounce later, by which time the hold time has passed
    sw, rec = logic(long_press=True), Recorder()
    sw.edge(True, 1.0, rec)
    run(sw, rec, 1.0, 1.0 + HOLD - 0.01, step=0.01)
    sw.edge(False, 1.0 + HOLD - 0.005, rec)
    sw.poll(1.0 + HOLD + DEBOUNCE, rec)
    assert rec.gestures == [PRESS]


def test_double_press_within_the_window() -> None:
    sw, rec = logic(double_press=True), Recorder()
    sw.edge(True, 1.0, rec)
    sw.edge(False, 1.1, rec)
    run(sw, rec, 1.0, 1.2)
    assert rec.events == []  # waiting for a possible second press
    sw.edge(True, 1.1 + DOUBLE - 0.05, rec)
    run(sw, rec, 1.2, 1.5)
    sw.edge(False, 1.6, rec)
    run(sw, rec, 1.5, 2.5)
    assert rec.events == [(DOUBLE_PRESS, 1.1 + DOUBLE - 0.05)]


def test_two_presses_further_apart_than_the_window_are_two_presses() -> None:
    sw, rec = logic(double_press=True), Recorder()
    sw.edge(True, 1.0, rec)
    sw.edge(False, 1.1, rec)
    run(sw, rec, 1.0, 1.1 + DOUBLE + 0.05)
    assert rec.events == [(PRESS, 1.0)]
    sw.edge(True, 1.6, rec)
    sw.edge(False, 1.7, rec)
    run(sw, rec, 1.6, 2.5)
    assert rec.events == [(PRESS, 1.0), (PRESS, 1.6)]


def test_all_three_gestures_on_one_switch() -> None:
    sw, rec = logic(long_press=True, double_press=True), Recorder()
    t = 1.0
    for down, up in ((0.0, 0.1), (0.2, 0.3)):  # a double press
        sw.edge(True, t + down, rec)
        sw.edge(False, t + up, rec)
    run(sw, rec, t, t + 1.5)
    sw.edge(True, 3.0, rec)  # a long press
    run(sw, rec, 3.0, 3.0 + HOLD + 0.1)
    sw.edge(False, 4.2, rec)
    sw.edge(True, 5.0, rec)  # a press
    sw.edge(False, 5.1, rec)
    run(sw, rec, 4.0, 6.0)
    assert rec.events == [(DOUBLE_PRESS, 1.2), (LONG_PRESS, 3.0), (PRESS, 5.0)]


def test_a_switch_held_at_start_fires_nothing_when_released() -> None:
    sw = SwitchGestures(debounce_s=DEBOUNCE, hold_s=HOLD, double_s=DOUBLE, long_press=True, double_press=False,
                        pressed=True)
    rec = Recorder()
    run(sw, rec, 0.0, 2.0)
    sw.edge(False, 2.0, rec)
    run(sw, rec, 2.0, 3.0)
    assert rec.events == []


def test_bad_timings_are_rejected() -> None:
    with pytest.raises(ValueError):
        SwitchGestures(debounce_s=-1, hold_s=HOLD, double_s=DOUBLE, long_press=False, double_press=False)


# --- on gpiozero mock pins --------------------------------------------------------------------------

CONFIG = """\
gpio:
  debounce_ms: 20
  hold_s: 0.8
  double_press_s: 0.35
footswitches:
  tap:
    pin: 17
    press: tap_tempo
    long_press: panic
  melody:
    pin: 27
    press: toggle_melody
    double_press: freeze_emotion
  presets:
    pin: 22
    press: preset_next
    hold_s: 0.5
    long_press: preset_prev
"""


def stomp(pin: Any, clock: Any, switches: Footswitches, *, held: float, bounces: int = 4) -> None:
    """Press and release a mock pin (active low) with contact bounce, polling like the loop does."""
    for level in range(bounces):
        pin.drive_low() if level % 2 == 0 else pin.drive_high()
        clock.advance(0.001)
    pin.drive_low()
    end = clock.t + held
    while clock.t < end:
        switches.poll()
        clock.advance(0.005)
    for level in range(bounces):
        pin.drive_high() if level % 2 == 0 else pin.drive_low()
        clock.advance(0.001)
    pin.drive_high()
    for _ in range(4):
        switches.poll()
        clock.advance(0.01)


def settle(switches: Footswitches, clock: Any, seconds: float) -> None:
    end = clock.t + seconds
    while clock.t < end:
        switches.poll()
        clock.advance(0.01)


def test_mock_pins_drive_the_configured_actions(mock_factory: Any, clock: Any, controls: Any) -> None:
    config = parse_config(CONFIG)
    with Footswitches(config, controls, pin_factory=mock_factory, clock=clock) as switches:
        tap, melody, presets = (mock_factory.pin(n) for n in (17, 27, 22))
        t_tap = clock.t
        stomp(tap, clock, switches, held=0.1)
        settle(switches, clock, 0.5)
        stomp(melody, clock, switches, held=0.1)
        settle(switches, clock, 0.5)
        stomp(presets, clock, switches, held=0.6)  # its own hold time: 0.5 s
        stomp(tap, clock, switches, held=1.0)
    assert controls.calls == [("tap", pytest.approx(t_tap)), ("toggle_model", "melody"), ("select_preset", -1), ("panic", None)]


def test_double_press_on_mock_pins(mock_factory: Any, clock: Any, controls: Any) -> None:
    config = parse_config(CONFIG)
    with Footswitches(config, controls, pin_factory=mock_factory, clock=clock) as switches:
        melody = mock_factory.pin(27)
        stomp(melody, clock, switches, held=0.08)
        stomp(melody, clock, switches, held=0.08)
        settle(switches, clock, 1.0)
    assert controls.calls == [("freeze_emotion", None)]
    assert switches.fired == {"melody.double_press": 1}


def test_pull_down_wiring_inverts_the_pin(mock_factory: Any, clock: Any, controls: Any) -> None:
    config = parse_config("gpio: {pull_up: false}\nfootswitches:\n  a: {pin: 5, press: panic}\n")
    with Footswitches(config, controls, pin_factory=mock_factory, clock=clock) as switches:
        pin = mock_factory.pin(5)
        pin.drive_low()  # pulled down at rest: low is "not pressed"
        settle(switches, clock, 0.1)
        assert controls.calls == []
        pin.drive_high()
        settle(switches, clock, 0.1)
    assert controls.calls == [("panic", None)]


def test_an_action_that_raises_does_not_stop_the_next_one(mock_factory: Any, clock: Any, controls: Any) -> None:
    class Grumpy(type(controls)):  # type: ignore[misc]
        def panic(self) -> None:
            raise RuntimeError("boom")

    grumpy = Grumpy()
    config = parse_config("footswitches:\n  a: {pin: 5, press: panic}\n  b: {pin: 6, press: toggle_groove}\n")
    with Footswitches(config, grumpy, pin_factory=mock_factory, clock=clock) as switches:
        mock_factory.pin(5).drive_low()
        mock_factory.pin(6).drive_low()
        settle(switches, clock, 0.1)
    assert grumpy.calls == [("toggle_model", "groove")]


def test_close_releases_the_pins(mock_factory: Any, clock: Any, controls: Any) -> None:
    config = parse_config("footswitches:\n  a: {pin: 5, press: panic}\n")
    Footswitches(config, controls, pin_factory=mock_factory, clock=clock).close()
    Footswitches(config, controls, pin_factory=mock_factory, clock=clock).close()  # the pin is free again


def test_a_busy_pin_is_a_device_error_naming_switch_and_pin(mock_factory: Any, clock: Any, controls: Any) -> None:
    config = parse_config("footswitches:\n  stomp: {pin: 5, press: panic}\n")
    with Footswitches(config, controls, pin_factory=mock_factory, clock=clock):
        with pytest.raises(DeviceError, match=r"footswitch 'stomp'.*GPIO 5"):
            Footswitches(config, controls, pin_factory=mock_factory, clock=clock)
