"""Fixtures for the control tests: gpiozero's MockFactory (restored after each test), a fake clock
and a BoxControls fake that records what the footswitches asked for."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory


class FakeClock:
    """A clock the test moves by hand (seconds)."""

    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> float:
        self.t += dt
        return self.t


class RecordingControls:
    """BoxControls that records every call as ``(method, argument)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def toggle_model(self, name: str) -> None:
        self.calls.append(("toggle_model", name))

    def panic(self) -> None:
        self.calls.append(("panic", None))

    def tap(self, t: float) -> None:
        self.calls.append(("tap", t))

    def cycle_intent(self, step: int) -> None:
        self.calls.append(("cycle_intent", step))

    def select_preset(self, step: int) -> None:
        self.calls.append(("select_preset", step))

    def freeze_emotion(self) -> None:
        self.calls.append(("freeze_emotion", None))


@pytest.fixture
def mock_factory() -> Iterator[MockFactory]:
    """A fresh MockFactory, also installed as gpiozero's default; the previous one is put back."""
    previous = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.reset()
        Device.pin_factory = previous


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def controls() -> RecordingControls:
    return RecordingControls()
