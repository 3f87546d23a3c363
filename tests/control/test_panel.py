"""The control panel end to end: mock pins -> actions on a real engine -> LEDs, state kept across restarts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kelly_edge.config.loader import parse_config
from kelly_edge.control.panel import ControlPanel
from kelly_edge.engine.engine import Engine
from kelly_edge.midi.sinks import RecordingSink
from kelly_edge.models.runner import load_all

SR = 22050


def panel_config(tmp_path: Path, switch_pin: int = 17, persist: bool = True) -> str:
    return f"""\
footswitches:
  melody: {{pin: {switch_pin}, press: toggle_melody}}
  preset: {{pin: 22, press: preset_next}}
leds:
  melody: 5
  harmony: 6
  tempo: 20
  error: 21
state:
  persist: {str(persist).lower()}
  path: {tmp_path / "state.json"}
presets:
  slow: {{tempo: {{bpm: 60}}}}
"""


def make(text: str, factory: Any, clock: Any) -> tuple[ControlPanel, Engine]:
    config = parse_config(text)
    engine = Engine(config, RecordingSink(), sample_rate=SR, models=load_all(None))
    return ControlPanel(engine, config, pin_factory=factory, clock=clock, synchronous_state=True), engine


def run(panel: ControlPanel, engine: Engine, clock: Any, seconds: float) -> None:
    """Silent hops with a panel tick after each, as the processing loop does."""
    hop = np.zeros(engine.hop_length, dtype=np.float32)
    for _ in range(int(seconds * SR / engine.hop_length)):
        engine.process_hop(hop)
        clock.advance(engine.hop_length / SR)
        panel.tick()


def press(factory: Any, pin: int, panel: ControlPanel, engine: Engine, clock: Any) -> None:
    factory.pin(pin).drive_low()
    run(panel, engine, clock, 0.1)
    factory.pin(pin).drive_high()
    run(panel, engine, clock, 0.1)


def test_a_stomp_switches_the_model_and_its_led(tmp_path: Path, mock_factory: Any, clock: Any) -> None:
    panel, engine = make(panel_config(tmp_path), mock_factory, clock)
    with panel:
        run(panel, engine, clock, 0.3)
        blinking = set()
        for _ in range(30):
            run(panel, engine, clock, 0.02)
            blinking.add(bool(mock_factory.pin(5).state))
        assert blinking == {True, False}  # on, but running its heuristic fallback
        press(mock_factory, 17, panel, engine, clock)
        assert panel.controls.state.active["melody"] is False
        for _ in range(30):
            run(panel, engine, clock, 0.02)
            assert not mock_factory.pin(5).state  # switched off: dark
    assert not any(mock_factory.pin(p).state for p in (5, 6, 20, 21))  # all off on exit


def test_the_tempo_led_flashes_once_per_beat(tmp_path: Path, mock_factory: Any, clock: Any) -> None:
    panel, engine = make(panel_config(tmp_path), mock_factory, clock)
    with panel:
        flashes, was = 0, False
        hop = np.zeros(engine.hop_length, dtype=np.float32)
        for _ in range(int(6.0 * SR / engine.hop_length)):  # 6 s at 100 BPM: 10 beats
            engine.process_hop(hop)
            clock.advance(engine.hop_length / SR)
            panel.tick()
            lit = bool(mock_factory.pin(20).state)
            flashes += lit and not was
            was = lit
    assert flashes in (10, 11)


def test_state_survives_a_restart(tmp_path: Path, mock_factory: Any, clock: Any) -> None:
    text = panel_config(tmp_path)
    panel, engine = make(text, mock_factory, clock)
    with panel:
        press(mock_factory, 22, panel, engine, clock)  # a preset sets all switches: select it first
        press(mock_factory, 17, panel, engine, clock)
    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved["active"]["melody"] is False and saved["preset"] == "slow"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary files left
    panel, engine = make(text, mock_factory, clock)
    with panel:
        assert panel.controls.state.active["melody"] is False
        assert panel.controls.state.preset == "slow" and engine.grid.bpm == 60.0


def test_without_persistence_nothing_is_written_or_restored(tmp_path: Path, mock_factory: Any, clock: Any) -> None:
    text = panel_config(tmp_path, persist=False)
    panel, engine = make(text, mock_factory, clock)
    with panel:
        press(mock_factory, 17, panel, engine, clock)
    assert not (tmp_path / "state.json").exists()


def test_a_reload_moves_a_switch_to_its_new_pin(tmp_path: Path, mock_factory: Any, clock: Any) -> None:
    panel, engine = make(panel_config(tmp_path), mock_factory, clock)
    with panel:
        panel.apply_config(parse_config(panel_config(tmp_path, switch_pin=23)))
        press(mock_factory, 17, panel, engine, clock)
        assert panel.controls.state.active["melody"] is True  # the old pin does nothing now
        press(mock_factory, 23, panel, engine, clock)
        assert panel.controls.state.active["melody"] is False


def test_errors_flash_the_error_led_for_a_while(tmp_path: Path, mock_factory: Any, clock: Any) -> None:
    panel, engine = make(panel_config(tmp_path), mock_factory, clock)
    with panel:
        panel.flag_error(hold_s=2.0)
        seen = set()
        for _ in range(50):
            run(panel, engine, clock, 0.02)
            seen.add(bool(mock_factory.pin(21).state))
        assert seen == {True, False}
        run(panel, engine, clock, 2.0)
        for _ in range(60):
            run(panel, engine, clock, 0.02)
            assert not mock_factory.pin(21).state
        panel.set_fault("midi", True)
        assert panel.error_active()
        panel.set_fault("midi", False)
        assert not panel.error_active()


def test_a_config_without_pins_opens_no_gpio(tmp_path: Path, clock: Any) -> None:
    config = parse_config("gpio: {backend: lgpio}\n")  # would fail on this machine if it were opened
    engine = Engine(config, RecordingSink(), sample_rate=SR, models=load_all(None))
    with ControlPanel(engine, config, clock=clock) as panel:
        panel.tick()
        assert panel.footswitches is None and panel.leds is None


def test_the_configured_backend_is_used_when_none_is_injected(tmp_path: Path, clock: Any) -> None:
    config = parse_config("gpio: {backend: mock}\nfootswitches:\n  a: {pin: 4, press: panic}\n")
    engine = Engine(config, RecordingSink(), sample_rate=SR, models=load_all(None))
    with ControlPanel(engine, config, clock=clock) as panel:
        assert panel.footswitches is not None and len(panel.footswitches.switches) == 1


@pytest.mark.parametrize("backend", ["lgpio", "rpigpio", "pigpio"])
def test_a_hardware_backend_that_cannot_start_is_one_device_error(backend: str) -> None:
    from kelly_edge.control.pins import make_pin_factory
    from kelly_edge.errors import DeviceError

    try:
        factory = make_pin_factory(backend)
    except DeviceError as err:
        assert f"gpio.backend {backend}" in str(err)
    else:  # a machine with real GPIO: fine
        factory.close()
