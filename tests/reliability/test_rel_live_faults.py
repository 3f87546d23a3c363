"""Faults injected into the live loop (fake devices, real engine, real scheduled MIDI sink), and into
the engine's model slots. Each must end with every note off and the loop alive.

* a model that takes 50 ms per run: deferred, then handed to its fallback; hops stay in budget;
* the MIDI port vanishing and returning mid-run;
* the audio device vanishing mid-run (and staying away for a while);
* a model file replaced by garbage before a reload (SIGHUP): that model falls back, the rest stay.

SIGTERM at random moments and SIGHUP bursts against the real process are in
``test_rel_live_signals.py``.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from kelly_edge.config.loader import default_config
from kelly_edge.control.box import EngineControls
from kelly_edge.engine.engine import Engine
from kelly_edge.engine.scheduler import Scheduler
from kelly_edge.midi import messages as mm
from kelly_edge.midi.sinks import RecordingSink
from kelly_edge.models import spec
from kelly_edge.models.fallbacks import make_fallback
from kelly_edge.models.reload import ModelReloader, swap_in
from kelly_edge.models.runner import LoadedModel, load_all
from tests.live.live_fakes import LoopRig, demo_samples, synth_state, wait_until
from tests.reliability.rel_cli import REPO
from tests.reliability.rel_harness import StreamCheck, check_stream, feed

SR = 48000


# --- a 50 ms model ------------------------------------------------------------------------------
class FakeClock:
    """The scheduler's clock; only a model's 'work' moves it, so budgets are exact arithmetic."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class SlowModel:
    """Its fallback's answer, 50 ms late on the scheduler's clock."""

    def __init__(self, name: str, clock: FakeClock, cost_s: float = 0.050) -> None:
        self.inner = make_fallback(name)
        self.clock = clock
        self.cost_s = cost_s
        self.calls = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.clock.t += self.cost_s
        return self.inner(x)


@pytest.mark.parametrize("name", ["emotion", "melody", "harmony"])
def test_a_50ms_model_is_deferred_then_replaced_and_hops_stay_in_budget(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="kelly_edge.engine.model_state")
    clock = FakeClock()
    slow = SlowModel(name, clock)
    models = {s.name: LoadedModel(s, make_fallback(s.name), "trained", "test") for s in spec.MODELS}
    models[name] = LoadedModel(models[name].spec, slow, "trained", "slow")
    sink = RecordingSink()
    engine = Engine(default_config(), sink, sample_rate=SR, models=models, clock=clock)
    demo = demo_samples(SR, 20.0)
    for _ in range(6):  # a step- or beat-rate model is probed every few seconds: up to two minutes
        feed(engine, demo)
        if engine.models[name].status == "fallback":
            break
    feed(engine, demo[: 5 * SR])  # five more seconds after the hand-over
    engine.close()
    sched = engine.scheduler
    # it ran a few times (each a miss: nobody knew), was deferred in between, then handed over
    assert 1 <= slow.calls <= Scheduler.MAX_OVERRUNS
    assert sched.deadline_misses == slow.calls
    assert sched.slots[name].deferrals > 0
    assert engine.models[name].status == "fallback" and "budget" in engine.models[name].reason
    assert sum("switching to its heuristic fallback" in r.getMessage() for r in caplog.records) == 1
    # after the hand-over no hop is over budget (the fake clock only moves for the slow model)
    recent = engine.recent_hop_times(500)
    assert recent.size == 500 and float(recent.max()) <= sched.budget_s
    # and the box kept playing, cleanly, across it
    notes = check_stream(sink.events, StreamCheck(channels={0, 1, 2}, ranges={0: [(60, 84)], 1: [(48, 72)], 2: [(28, 52)]},
                                                  panics=[engine.time_s]))
    assert sum(n.start > engine.time_s - 5.0 for n in notes) >= 5


def test_a_model_that_is_only_slow_once_keeps_its_place() -> None:
    clock = FakeClock()
    slow = SlowModel("emotion", clock)
    models = {s.name: LoadedModel(s, make_fallback(s.name), "trained", "test") for s in spec.MODELS}
    models["emotion"] = LoadedModel(models["emotion"].spec, slow, "trained", "spiky")
    engine = Engine(default_config(), RecordingSink(), sample_rate=SR, models=models, clock=clock)
    x = demo_samples(SR, 15.0)
    feed(engine, x[: SR])
    slow.cost_s = 0.0005  # the spike is over
    feed(engine, x[SR:])
    slot = engine.scheduler.slots["emotion"]
    assert engine.models["emotion"].status == "trained" and slot.call is slow
    assert slot.estimate_s * Scheduler.MARGIN < engine.scheduler.budget_s  # it fits again...
    runs, deferrals = slot.runs, slot.deferrals
    feed(engine, x[: 2 * SR])
    assert slot.runs > runs and slot.deferrals == deferrals  # ...and runs whenever it is due again


# --- the live loop with fake devices -----------------------------------------------------------
def test_the_midi_port_vanishing_and_returning_leaves_nothing_sounding() -> None:
    rig = LoopRig(seconds=6.0, sink_retry_s=0.1)
    stop, runner, codes = rig.start()
    try:
        assert wait_until(lambda: any(mm.is_note_on(m) for m in rig.output.messages()), 4.0)
        time.sleep(0.3)
        rig.output.plugged = False  # unplugged in the middle of playing: note-offs are lost
        assert wait_until(lambda: not rig.sink.connected, 2.0)
        time.sleep(0.6)
        n_before = len(rig.output.messages())
        rig.output.plugged = True
        assert wait_until(lambda: rig.sink.connected, 2.0)
        # back: all notes off at once, then the box plays on
        after = rig.output.messages()[n_before:]
        assert after[: len(after)] and any(m == mm.all_notes_off(0) for m in after[:12])
        time.sleep(1.5)
    finally:
        stop.set()
        runner.join(10.0)
    assert codes == [0] and rig.loop.error is None
    assert rig.sink.lost_count == 1 and rig.output.opens >= 1
    msgs = rig.output.messages()
    sounding, problems = synth_state(msgs)
    assert problems == [] and sounding == set()
    assert sum(mm.is_note_on(m) for m in msgs[n_before:]) >= 1  # it kept playing after the return


def test_the_audio_device_vanishing_silences_and_the_loop_lives_on() -> None:
    rig = LoopRig(seconds=5.0, vanish_after_s=1.5, refuse_reopens=4, sink_retry_s=0.1)
    stop, runner, codes = rig.start()
    try:
        assert wait_until(lambda: rig.loop.stats.audio_losses == 1, 4.0)
        n_lost = len(rig.output.messages())
        time.sleep(0.5)
        # gone: everything was silenced at the loss, and nothing starts while it is away
        sounding, _ = synth_state(rig.output.messages())
        assert sounding == set()
        assert not any(mm.is_note_on(m) for m in rig.output.messages()[n_lost:])
        hops = rig.loop.stats.hops
        assert wait_until(lambda: rig.loop.stats.hops > hops + 20, 2.0)  # the timeline goes on
        assert wait_until(lambda: len(rig.captures) == 2 and rig.captures[1].started, 4.0)  # back
        time.sleep(1.0)
    finally:
        stop.set()
        runner.join(10.0)
    assert codes == [0] and rig.loop.error is None
    assert rig.loop.stats.silent_fill_hops > 0
    sounding, problems = synth_state(rig.output.messages())
    assert problems == [] and sounding == set()


# --- model files replaced under a running box ---------------------------------------------------
def _models_copy(tmp: Path) -> Path:
    folder = tmp / "models"
    shutil.copytree(REPO / "models_tflite", folder)
    return folder


def test_a_model_file_replaced_by_garbage_falls_back_at_reload(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = _models_copy(tmp_path)
    engine = Engine(default_config(), RecordingSink(), sample_rate=SR, models=load_all(folder))
    if any(m.status != "trained" for m in engine.models.values()):
        pytest.skip("the bundled models are not all trained")
    controls = EngineControls(engine, default_config())
    reloader = ModelReloader(folder)
    x = demo_samples(SR, 6.0)
    feed(engine, x[: 2 * SR])
    assert reloader.changed() == {}  # nothing changed: nothing re-loaded
    caplog.set_level(logging.WARNING)
    (folder / "melody.tflite").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    (folder / "harmony.tflite").write_bytes(b"")  # truncated to nothing
    controls.toggle_model("groove")  # switched off by the player: keeps its neutral stand-in
    (folder / "groove.tflite").write_bytes((REPO / "models_tflite" / "groove.tflite").read_bytes())  # same bytes, new file
    loaded = reloader.changed()
    assert set(loaded) == {"melody", "harmony", "groove"}
    swap_in(engine, loaded)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len([w for w in warnings if "MelodyTransformer" in w]) == 1
    assert len([w for w in warnings if "HarmonyPredictor" in w]) == 1
    status = engine.model_status()
    assert status["melody"] == status["harmony"] == "fallback"
    assert status["emotion"] == status["dynamics"] == status["groove"] == "trained"
    assert engine.scheduler.slots["melody"].call is engine.models["melody"].call
    assert engine.scheduler.slots["groove"].call is not engine.models["groove"].call  # still switched off
    controls.toggle_model("groove")
    assert engine.scheduler.slots["groove"].call is engine.models["groove"].call  # the re-loaded one
    feed(engine, x[2 * SR :])  # and it plays on
    engine.close()
    notes = check_stream(engine.sink.events, StreamCheck(  # type: ignore[attr-defined]
        channels={0, 1, 2}, ranges={0: [(60, 84)], 1: [(48, 72)], 2: [(28, 52)]}, panics=[engine.time_s]))
    assert sum(n.start > 2.5 for n in notes) >= 5
