"""JACK client lifecycle rules that a server restart depends on (no server needed here)."""

from __future__ import annotations

from typing import Any

import pytest

from kelly_edge.audio import jack_capture
from kelly_edge.midi import jack_sink


def test_opening_jack_never_replaces_libjacks_message_callbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    """JACK-Client frees the old callback before installing a new one; libjack's dying client
    threads call it during a server restart, so it must be installed once (native_log) and never
    replaced by a reopen."""
    jack: Any = pytest.importorskip("jack")
    calls: list[str] = []
    monkeypatch.setattr(jack, "set_error_function", lambda cb=None: calls.append("error"))
    monkeypatch.setattr(jack, "set_info_function", lambda cb=None: calls.append("info"))
    for _ in range(3):  # every reopen attempt while the server is away
        jack_capture._jack()
        jack_sink._jack()
    assert calls == []
