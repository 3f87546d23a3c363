"""Start-up without devices, as a real process: one clear line and exit code 2, or (when the config
says so) a wait that logs once and stops cleanly on SIGTERM. No JACK server is reachable here: the
tests point JACK clients at a server name that does not exist."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kelly_edge.live.commands import devices_main
from tests.cli_box import Box
from tests.live.live_fakes import wait_until

NO_SERVER = {"JACK_DEFAULT_SERVER": f"kelly-nobody-{os.getpid()}", "JACK_NO_START_SERVER": "1"}


def _config(tmp_path: Path, audio: dict[str, object], midi: dict[str, object] | None = None) -> Path:
    path = tmp_path / "box.yaml"
    path.write_text(json.dumps({"audio": audio, "midi": midi or {"backend": "jack"}}), encoding="utf-8")
    return path


def _one_error(box: Box) -> str:
    errors = [line for line in box.lines if "error" in line]
    assert len(errors) == 1, box.lines
    assert not any("Traceback" in line for line in box.lines), box.lines
    return errors[0]


def _portaudio_inputs() -> int:
    """PortAudio's input count with no JACK server reachable (a subprocess: PortAudio keeps state)."""
    code = ("from kelly_edge.audio.pyaudio_capture import list_inputs; print(len(list_inputs()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **NO_SERVER},
                         cwd=Path(__file__).resolve().parents[2], timeout=60)
    return int(out.stdout.strip() or 0)


def test_no_audio_devices_at_all(tmp_path: Path) -> None:
    if _portaudio_inputs():
        pytest.skip("this machine has a sound card: 'no audio devices at all' cannot be staged")
    box = Box(_config(tmp_path, {"backend": "pyaudio"}), extra_env=NO_SERVER)
    assert box.wait(60) == 2
    assert "no audio input devices found" in _one_error(box)


def test_jack_backend_without_a_server(tmp_path: Path) -> None:
    box = Box(_config(tmp_path, {"backend": "jack"}), extra_env=NO_SERVER)
    assert box.wait(60) == 2
    assert "no JACK server is running" in _one_error(box)


def test_waiting_for_devices_logs_once_and_stops_on_sigterm(tmp_path: Path) -> None:
    if _portaudio_inputs():
        pytest.skip("this machine has a sound card: a missing input cannot be staged")
    box = Box(_config(tmp_path, {"backend": "pyaudio", "wait_for_devices": True}), extra_env=NO_SERVER)
    try:
        assert wait_until(lambda: box.has("waiting"), 60), box.lines
        time.sleep(3.5)  # two more retries
        assert box.proc.poll() is None
        box.proc.send_signal(signal.SIGTERM)
        assert box.wait(15) == 0, box.lines
    finally:
        if box.proc.poll() is None:
            box.proc.kill()
    assert box.count("waiting") == 1, box.lines
    assert not any("Traceback" in line or "error" in line for line in box.lines), box.lines


def test_devices_lists_every_backend_even_when_nothing_is_there(capsys, monkeypatch) -> None:
    for key, value in NO_SERVER.items():
        monkeypatch.setenv(key, value)
    assert devices_main() == 0
    out = capsys.readouterr().out
    assert "audio inputs (audio.backend: pyaudio" in out and "audio inputs (audio.backend: jack" in out
    assert "MIDI outputs (midi.backend: alsa" in out and "MIDI outputs (midi.backend: jack" in out
    assert "no JACK server is running" in out


def test_thru_wiring_picks_the_input_by_backend_and_the_voice_to_follow() -> None:
    """``midi.thru_port`` on the ALSA path: a python-rtmidi input named by that key, joining the sink;
    ``thru_to`` a voice: that voice is followed for its voice-off."""
    import dataclasses

    from kelly_edge.config.schema import default_config
    from kelly_edge.live.commands import _thru
    from kelly_edge.midi.rtmidi_sink import RtMidiInput, ScheduledSink
    from kelly_edge.midi.thru import ThruFilter, ThruProcessor
    from tests.live.live_fakes import FakeOutput

    config = default_config()
    midi = dataclasses.replace(config.midi, thru_port="keystep", thru_to="bass", thru_channel=3)
    config = dataclasses.replace(config, midi=midi)
    sink = ScheduledSink(FakeOutput(), to_wall=lambda t: t)
    assert _thru(config, None, sink) is None
    proc = ThruProcessor(ThruFilter.from_config(config.midi))
    thru = _thru(config, proc, sink)
    assert thru is not None and thru.voice == "bass" and thru.processor is proc
    assert isinstance(thru.source, RtMidiInput)
    assert (thru.source.want, thru.source.key, thru.source.api) == ("keystep", "midi.thru_port", "alsa")
    assert proc.settings.channel == 2
