"""Status LEDs on gpiozero mock pins: model modes, the tempo flash, the error pattern, all off on exit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from kelly_edge.config.loader import parse_config
from kelly_edge.control import leds as L
from kelly_edge.control.leds import BLINK, OFF, ON, LedBank
from kelly_edge.errors import DeviceError
from kelly_edge.models import spec

PINS = {"emotion": 5, "harmony": 6, "melody": 13, "dynamics": 19, "groove": 26, "tempo": 20, "error": 21}


def config(active_high: bool = True, without: tuple[str, ...] = ()) -> Any:
    lines = [f"  {name}: {pin}" for name, pin in PINS.items() if name not in without]
    return parse_config(f"gpio:\n  led_active_high: {str(active_high).lower()}\nleds:\n" + "\n".join(lines) + "\n")


def lit(factory: Any, name: str, active_high: bool = True) -> bool:
    return bool(factory.pin(PINS[name]).state) == active_high


def all_on() -> dict[str, str]:
    return {name: ON for name in spec.MODEL_NAMES}


def test_model_leds_follow_their_modes(mock_factory: Any) -> None:
    modes = {"emotion": ON, "harmony": OFF, "melody": BLINK, "dynamics": ON, "groove": OFF}
    with LedBank(config(), pin_factory=mock_factory) as bank:
        seen = {name: set() for name in spec.MODEL_NAMES}
        for now in np.arange(0.0, 2.0, 0.01):
            bank.show(models=modes, beat_phase=None, error=False, now=float(now))
            for name in spec.MODEL_NAMES:
                seen[name].add(lit(mock_factory, name))
    assert seen["emotion"] == {True} and seen["dynamics"] == {True}
    assert seen["harmony"] == {False} and seen["groove"] == {False}
    assert seen["melody"] == {True, False}


def test_blinking_is_about_half_on_at_2_hz() -> None:
    times = np.arange(0.0, 10.0, 0.001)
    levels = np.array([L.mode_level(BLINK, float(t)) for t in times])
    assert levels.mean() == pytest.approx(0.5, abs=0.01)
    rising = np.count_nonzero(levels[1:] & ~levels[:-1])
    assert rising == pytest.approx(10.0 / L.BLINK_PERIOD_S, abs=1)


def test_tempo_led_flashes_at_the_start_of_each_beat(mock_factory: Any) -> None:
    with LedBank(config(), pin_factory=mock_factory) as bank:
        flashes = 0
        was = False
        for phase in np.arange(0.0, 8.0, 0.01):  # 8 beats
            bank.show(models=all_on(), beat_phase=float(phase), error=False, now=0.0)
            now_lit = lit(mock_factory, "tempo")
            if now_lit and not was:
                flashes += 1
                assert float(phase) % 1.0 < L.TEMPO_FLASH
            was = now_lit
    assert flashes == 8


def test_error_pattern_on_the_error_led_leaves_the_tempo_led_alone(mock_factory: Any) -> None:
    with LedBank(config(), pin_factory=mock_factory) as bank:
        error_levels, tempo_levels = set(), set()
        for now in np.arange(0.0, 3.0, 0.01):
            bank.show(models=all_on(), beat_phase=0.5, error=True, now=float(now))  # mid-beat: tempo dark
            error_levels.add(lit(mock_factory, "error"))
            tempo_levels.add(lit(mock_factory, "tempo"))
        assert error_levels == {True, False}
        assert tempo_levels == {False}
        bank.show(models=all_on(), beat_phase=0.5, error=False, now=0.05)  # in a flash, but no error
        assert not lit(mock_factory, "error")


def test_without_an_error_led_the_tempo_led_shows_the_error(mock_factory: Any) -> None:
    with LedBank(config(without=("error",)), pin_factory=mock_factory) as bank:
        pattern = []
        for now in np.arange(0.0, 1.0, 0.01):
            bank.show(models=all_on(), beat_phase=0.5, error=True, now=float(now))
            pattern.append(lit(mock_factory, "tempo"))
    assert pattern == [L.error_level(float(t)) for t in np.arange(0.0, 1.0, 0.01)]
    assert any(pattern)


def test_close_switches_every_led_off_and_frees_the_pins(mock_factory: Any) -> None:
    for active_high in (True, False):
        bank = LedBank(config(active_high), pin_factory=mock_factory)
        bank.show(models=all_on(), beat_phase=0.0, error=True, now=0.05)
        assert any(lit(mock_factory, name, active_high) for name in PINS)
        bank.close()
        assert not any(lit(mock_factory, name, active_high) for name in PINS)
        bank.close()  # idempotent
        bank.show(models=all_on(), beat_phase=0.0, error=True, now=0.05)  # after close: nothing happens
        assert not any(lit(mock_factory, name, active_high) for name in PINS)


def test_leds_without_a_pin_are_absent(mock_factory: Any) -> None:
    with LedBank(parse_config("leds: {tempo: 4}\n"), pin_factory=mock_factory) as bank:
        assert set(bank.leds) == {"tempo"}
        bank.show(models=all_on(), beat_phase=0.0, error=False, now=0.0)
        assert mock_factory.pin(4).state


def test_a_busy_led_pin_is_a_device_error(mock_factory: Any) -> None:
    with LedBank(parse_config("leds: {tempo: 4}\n"), pin_factory=mock_factory):
        with pytest.raises(DeviceError, match=r"LED 'tempo'.*GPIO 4"):
            LedBank(parse_config("leds: {tempo: 4}\n"), pin_factory=mock_factory)


def test_led_names_match_the_config_section() -> None:
    import dataclasses

    from kelly_edge.config.schema import LedsConfig

    assert tuple(f.name for f in dataclasses.fields(LedsConfig)) == L.LED_NAMES
