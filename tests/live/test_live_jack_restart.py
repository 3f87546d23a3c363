"""The box through a real jackd killed and started again under the same name, 20 times in a row:
its audio input and MIDI output come back by themselves, all notes off and then the voices'
programs before the first note, and the box never crashes (the earlier attempt segfaulted about once in 15 restarts).

The server has a fixed name of its own: a jackd killed with clients attached leaves its entry in
JACK's 8-server registry, and reusing one name reuses that entry. The test's own player and synth
clients are closed while the server still runs, just before each kill, and made again after: a
test client left attached to a killed server once held the GIL in a libjack thread and froze the
whole suite (the box's clients are the ones the kill is for).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kelly_edge.midi import messages as mm
from tests.cli_box import Box
from tests.live.conftest import PERIOD, RATE, jackd_flags
from tests.live.jack_rig import Player, Synth
from tests.live.live_fakes import demo_samples, wait_until

pytestmark = [pytest.mark.jack, pytest.mark.slow]

SERVER = "kelly-test-restart"
RESTARTS = int(os.environ.get("KELLY_JACK_RESTARTS", "20"))


class Jackd:
    """``jackd -n SERVER -d dummy`` that can be killed (SIGKILL, clients attached) and started again."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                ["jackd", "-n", SERVER, *jackd_flags(), "-d", "dummy", "-r", str(RATE), "-p", str(PERIOD)],
                stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        ready = subprocess.run(["jack_wait", "-w", "-t", "10"], capture_output=True, text=True)
        assert ready.returncode == 0 and self.proc.poll() is None, self.log.read_text(errors="replace")[-500:]

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


def _bounded(call: Callable[[], Any], seconds: float) -> tuple[bool, Any]:
    """``call()`` on a thread of its own, waited for at most ``seconds``: (finished, its result).
    libjack can block for good on a futex of a server that died (seen once in CI: the suite waited
    26 min); a test client's call that never returns must fail the test, not hang the run."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(call())
        except Exception as exc:  # handed back to the caller's thread
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True, name="jack-test-call")
    thread.start()
    thread.join(seconds)
    if not out:
        return False, None
    if isinstance(out[0], Exception):
        raise out[0]
    return True, out[0]


def _drop(client: Any) -> None:
    """Close a test client whose server may be dead (it must still be freed; one whose close
    blocks on the dead server is left to its thread)."""
    try:
        _bounded(client.close, 10.0)
    except Exception:
        pass


def _clients() -> tuple[Player, Synth]:
    """The test's player and synth on the server just started (a clear failure if libjack blocks)."""
    done, clients = _bounded(lambda: (Player(), Synth()), 30.0)
    if not done:
        pytest.fail("making the test's JACK clients blocked for 30 s (libjack, not the box)")
    return clients


def test_the_box_comes_back_after_jackd_is_killed_and_restarted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 measurements: dict[str, Any]) -> None:
    monkeypatch.setenv("JACK_DEFAULT_SERVER", SERVER)
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    config = tmp_path / "box.yaml"
    config.write_text(json.dumps({
        "audio": {"backend": "jack", "device": "kelly-test-player:out", "sample_rate": RATE},
        "midi": {"backend": "jack", "port": "kelly-test-synth"},
        "tempo": {"bpm": 120.0},
        "generator": {"bass": {"program": 33}},  # the synth must get its sound back too
        "realtime": {"priority": 50},
        "state": {"calibration": str(tmp_path / "calibration.json")},
    }), encoding="utf-8")
    server = Jackd(tmp_path / "jackd.log")
    server.start()
    player, synth = _clients()
    audio = np.tile(demo_samples(RATE, 8.0), 3)
    player.play(audio)
    box = Box(config)
    back_s: list[float] = []
    try:
        assert wait_until(lambda: box.has("listening") or box.proc.poll() is not None, 60), box.lines
        assert wait_until(lambda: any(mm.is_note_on(m) for _, m in synth.framed()), 20), box.lines
        for restart in range(RESTARTS):
            _drop(player)  # the test's own clients leave first; the box's stay attached
            _drop(synth)
            server.kill()
            time.sleep(0.3)
            server.start()
            started = time.monotonic()
            player, synth = _clients()
            player.play(audio)
            assert wait_until(lambda: any(mm.is_note_on(m) for _, m in synth.framed()) or box.proc.poll() is not None,
                              30), (restart, box.lines[-10:])
            assert box.proc.poll() is None, (restart, "\n".join(box.lines[-60:]))  # no crash
            back_s.append(time.monotonic() - started)
            msgs = [m for _, m in synth.framed()]
            first_on = next(i for i, m in enumerate(msgs) if mm.is_note_on(m))
            channels = {m[0] & 0x0F for m in msgs if mm.is_note_on(m)}
            for ch in channels:  # notes off first: the reconnect's all-notes-off before any note
                assert mm.all_notes_off(ch) in msgs[:first_on], (restart, [m.hex() for m in msgs[:first_on + 1]])
            program = msgs.index(mm.program_change(2, 33))  # then the bass's program, before a note
            assert msgs.index(mm.all_notes_off(2)) < program < first_on, (restart, [m.hex() for m in msgs[:first_on + 1]])
        code = box.terminate()
    finally:
        if box.proc.poll() is None:
            box.proc.kill()
        _drop(player)
        _drop(synth)
        server.kill()
    assert code == 0, box.lines[-20:]
    assert not any("Traceback" in line or "Fatal" in line for line in box.lines), box.lines
    assert box.count("audio input") >= RESTARTS and box.count("is back") >= 2 * RESTARTS, box.lines[-20:]
    measurements["jack restart: server up -> first note from the box again (s)"] = {
        "restarts": len(back_s), "p50": round(float(np.median(back_s)), 2), "max": round(float(max(back_s)), 2)}
