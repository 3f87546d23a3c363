"""EngineControls on a real Engine (heuristic models, recording sink): what each switch does to the music."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from kelly_edge.config.loader import parse_config
from kelly_edge.control.box import EngineControls
from kelly_edge.control.leds import BLINK, OFF, ON
from kelly_edge.emotion import thesaurus
from kelly_edge.engine.engine import Engine
from kelly_edge.engine.model_state import NEUTRAL_DYNAMICS, NEUTRAL_GROOVE
from kelly_edge.midi.sinks import RecordingSink
from kelly_edge.models import spec
from kelly_edge.models.fallbacks import make_fallback
from kelly_edge.models.runner import LoadedModel, load_all
from kelly_edge.service.state import ControlState

SR = 22050
NOTE_ON, NOTE_OFF = 0x90, 0x80
MELODY_CH, CHORD_CH, BASS_CH = 0, 1, 2  # wire channels of the default config (1, 2, 3)


def arpeggio(seconds: float) -> np.ndarray:
    """A plucked C-major arpeggio, a note every 0.25 s: enough for every voice to play."""
    t = np.arange(int(SR * seconds)) / SR
    out = np.zeros_like(t)
    notes = [60, 64, 67, 72, 67, 64]
    for k in range(int(seconds / 0.25)):
        f = 440.0 * 2 ** ((notes[k % len(notes)] - 69) / 12)
        s, e = int(k * 0.25 * SR), min(len(t), int((k + 1) * 0.25 * SR))
        tt = t[s:e] - t[s]
        out[s:e] += 0.3 * np.exp(-3 * tt) * (np.sin(2 * np.pi * f * tt) + 0.5 * np.sin(4 * np.pi * f * tt))
    return out.astype(np.float32)


AUDIO = arpeggio(16.0)


class Box:
    """An engine on the arpeggio, played hop by hop."""

    def __init__(self, text: str = "", models: dict[str, LoadedModel] | None = None) -> None:
        self.config = parse_config(text)
        self.sink = RecordingSink()
        self.engine = Engine(self.config, self.sink, sample_rate=SR, models=models or load_all(None))
        self.hop = self.engine.hop_length
        self.pos = 0

    def play(self, seconds: float) -> None:
        end = self.pos + int(seconds * SR)
        while self.pos + self.hop <= end:
            self.engine.process_hop(AUDIO[self.pos % (len(AUDIO) - self.hop):][: self.hop])
            self.pos += self.hop

    def note_ons(self, channel: int, after: float = -1.0, before: float = math.inf) -> list[float]:
        return [t for t, m in self.sink.events if m[0] == NOTE_ON | channel and m[2] > 0 and after <= t < before]

    def sounding(self, channel: int, at: float) -> set[int]:
        """Pitches whose note-on came before ``at`` and whose note-off did not come by ``at``."""
        on: set[int] = set()
        for t, m in self.sink.events:
            if t > at:
                break
            if m[0] == NOTE_ON | channel and m[2] > 0:
                on.add(m[1])
            elif m[0] == NOTE_OFF | channel or (m[0] == NOTE_ON | channel and m[2] == 0):
                on.discard(m[1])
        return on


@pytest.fixture
def box() -> Box:
    return Box()


def next_beat_time(engine: Any, t: float) -> float:
    grid = engine.grid
    step = math.ceil(grid.position(t) - 1e-9)
    beat_step = step + (-step) % 4
    return float(grid.time_of(beat_step))


def test_melody_off_releases_its_notes_and_on_resumes_on_the_next_beat(box: Box) -> None:
    controls = EngineControls(box.engine, box.config)
    box.play(4.0)
    assert box.note_ons(MELODY_CH), "the melody should play before the switch"
    t_off = box.engine.time_s
    controls.toggle_model("melody")
    box.play(3.0)
    assert box.sounding(MELODY_CH, t_off + 1e-6) == set()  # released at the switch
    assert box.note_ons(MELODY_CH, after=t_off) == []
    assert box.note_ons(CHORD_CH, after=t_off), "the other voices go on"
    t_on = box.engine.time_s
    beat = next_beat_time(box.engine, t_on)
    controls.toggle_model("melody")
    box.play(3.0)
    resumed = box.note_ons(MELODY_CH, after=t_on)
    assert resumed
    assert resumed[0] >= beat - 0.5 * box.engine.grid.step_s  # micro-timing may pull it a little early


def test_harmony_off_mutes_chord_and_bass_and_keeps_the_melody(box: Box) -> None:
    controls = EngineControls(box.engine, box.config)
    box.play(4.0)
    t_off = box.engine.time_s
    controls.toggle_model("harmony")
    box.play(4.0)
    for ch in (CHORD_CH, BASS_CH):
        assert box.sounding(ch, t_off + 1e-6) == set()
        assert box.note_ons(ch, after=t_off) == []
    assert box.note_ons(MELODY_CH, after=t_off)
    controls.toggle_model("harmony")
    box.play(4.0)
    assert box.note_ons(CHORD_CH, after=t_off + 4.0)


def test_a_voice_disabled_in_the_config_stays_silent_when_its_model_is_switched_on() -> None:
    box = Box("generator:\n  chord: {enabled: false}\nactive:\n  harmony: false\n")
    controls = EngineControls(box.engine, box.config)
    box.play(4.0)
    assert not box.note_ons(BASS_CH) and not box.note_ons(CHORD_CH)  # harmony switched off at start
    t = box.engine.time_s
    controls.toggle_model("harmony")
    box.play(6.0)
    assert box.note_ons(BASS_CH, after=t) and not box.note_ons(CHORD_CH)


def test_groove_and_dynamics_off_play_their_neutral_outputs(box: Box) -> None:
    controls = EngineControls(box.engine, box.config)
    box.play(4.0)
    groove, dynamics = box.engine.model_states.output("groove"), box.engine.model_states.output("dynamics")
    assert not np.allclose(groove, NEUTRAL_GROOVE) and not np.allclose(dynamics, NEUTRAL_DYNAMICS)
    controls.toggle_model("groove")
    controls.toggle_model("dynamics")
    box.play(4.0)  # at least one bar: both run again
    np.testing.assert_allclose(box.engine.model_states.output("groove"), NEUTRAL_GROOVE)
    np.testing.assert_allclose(box.engine.model_states.output("dynamics"), NEUTRAL_DYNAMICS)
    controls.toggle_model("groove")
    box.play(4.0)
    assert not np.allclose(box.engine.model_states.output("groove"), NEUTRAL_GROOVE)


def test_emotion_off_glides_to_neutral_and_freeze_holds_it(box: Box) -> None:
    controls = EngineControls(box.engine, box.config)
    box.play(6.0)
    heard = np.abs(box.engine.emotion_vadi[:2]).max()
    assert heard > 0.05
    controls.toggle_model("emotion")
    box.play(6.0)
    assert np.abs(box.engine.emotion_vadi[:2]).max() < 0.05 * heard + 1e-3
    controls.toggle_model("emotion")
    box.play(1.0)
    states = box.engine.model_states
    controls.freeze_emotion()
    runs, held = states.info("emotion").runs, box.engine.emotion_vadi.copy()
    box.play(2.0)
    assert states.info("emotion").runs == runs and states.info("emotion").held
    np.testing.assert_array_equal(box.engine.emotion_vadi, held)
    controls.freeze_emotion()
    box.play(0.5)
    assert states.info("emotion").runs > runs and not states.info("emotion").held


def test_tap_tempo_sets_the_engine_tempo(box: Box) -> None:
    changes: list[int] = []
    controls = EngineControls(box.engine, box.config, on_change=lambda: changes.append(1))
    for k in range(4):
        controls.tap(50.0 + 0.5 * k)
    assert box.engine.grid.bpm == pytest.approx(120.0)
    assert controls.state.bpm == pytest.approx(120.0) and changes


def test_taps_go_to_the_tempo_source_when_it_takes_them(box: Box) -> None:
    taps: list[float] = []
    controls = EngineControls(box.engine, box.config, tap=lambda t: taps.append(t) or (90.0 if len(taps) > 2 else None))
    before = box.engine.grid.bpm
    for k in range(3):
        controls.tap(10.0 + k)
    assert taps == [10.0, 11.0, 12.0]
    assert box.engine.grid.bpm == before  # the source applies it at its next poll
    assert controls.state.bpm == 90.0


def test_intent_cycle_steers_the_emotion_and_wraps_to_no_intent() -> None:
    box = Box("emotion:\n  intent_amount: 1.0\n  cycle: tenderness, anger\n")
    controls = EngineControls(box.engine, box.config)
    box.play(0.5)
    seen = []
    for _ in range(3):
        controls.cycle_intent(1)
        box.play(0.05)
        seen.append(controls.state.intent)
        if controls.state.intent is not None:
            node = thesaurus.by_name(controls.state.intent)
            np.testing.assert_allclose(box.engine.emotion_vadi, [node.valence, node.arousal, node.dominance,
                                                                  node.intensity], atol=1e-5)
    assert seen == ["tenderness", "anger", None]
    controls.cycle_intent(-1)
    assert controls.state.intent == "anger"


def test_the_default_cycle_is_one_emotion_per_family(box: Box) -> None:
    controls = EngineControls(box.engine, box.config)
    seen = []
    for _ in range(len(spec.EMOTION_FAMILIES) + 1):
        controls.cycle_intent(1)
        seen.append(controls.state.intent)
    assert seen == [*spec.EMOTION_FAMILIES, None]


PRESETS = """\
tempo: {bpm: 100, source: config}
presets:
  ballad:
    tempo: {bpm: 70}
    emotion: {intent: tenderness}
    active: {harmony: false}
  rock:
    tempo: {bpm: 140}
"""


def test_presets_cycle_and_return_to_the_files_values() -> None:
    box = Box(PRESETS)
    controls = EngineControls(box.engine, box.config)
    box.play(2.0)
    controls.select_preset(1)
    box.play(1.0)
    assert (controls.state.preset, box.engine.grid.bpm, controls.state.intent) == ("ballad", 70.0, "tenderness")
    assert controls.state.active["harmony"] is False
    t = box.engine.time_s
    box.play(2.0)
    assert box.note_ons(CHORD_CH, after=t) == []
    controls.select_preset(1)
    assert (controls.state.preset, box.engine.grid.bpm, controls.state.intent) == ("rock", 140.0, None)
    assert controls.state.active["harmony"] is True
    controls.select_preset(1)
    assert (controls.state.preset, box.engine.grid.bpm) == (None, 100.0)
    controls.select_preset(-1)
    assert controls.state.preset == "rock"


def test_no_presets_means_the_preset_switch_does_nothing(box: Box) -> None:
    controls = EngineControls(box.engine, box.config)
    controls.select_preset(1)
    assert controls.state.preset is None


def test_a_reload_applies_what_changed_and_keeps_what_the_switches_set() -> None:
    box = Box(PRESETS)
    controls = EngineControls(box.engine, box.config)
    for k in range(4):
        controls.tap(5.0 + 0.6 * k)  # 100 BPM
    controls.toggle_model("groove")
    controls.apply_config(parse_config(PRESETS + "emotion: {intent: joy}\n"))
    assert box.engine.grid.bpm == pytest.approx(100.0) and controls.state.active["groove"] is False
    assert controls.state.intent == "joy"
    controls.apply_config(parse_config(PRESETS.replace("bpm: 100", "bpm: 90") + "active: {melody: false}\n"))
    assert box.engine.grid.bpm == 90.0 and controls.state.bpm is None
    assert controls.state.active["melody"] is False and controls.state.active["groove"] is False
    controls.select_preset(1)
    assert controls.state.preset == "ballad"
    controls.apply_config(parse_config("tempo: {bpm: 90}\n"))  # the presets are gone
    assert controls.state.preset is None and box.engine.grid.bpm == 90.0


def test_restore_puts_back_a_saved_state_and_ignores_stale_names() -> None:
    box = Box(PRESETS)
    controls = EngineControls(box.engine, box.config)
    controls.restore(ControlState(active={**{m: True for m in spec.MODEL_NAMES}, "melody": False},
                                  preset="rock", intent="anger", bpm=133.0))
    assert controls.state.preset == "rock" and controls.state.intent == "anger"
    assert controls.state.active["melody"] is False and box.engine.grid.bpm == 133.0
    other = EngineControls(box.engine, box.config)
    other.restore(ControlState(active={"melody": True, "drums": False}, preset="gone", intent="glee", bpm=None))
    assert other.state.preset is None and other.state.intent is None and "drums" not in other.state.active


def test_model_leds_show_switched_off_fallback_deferred_and_running() -> None:
    models = load_all(None)
    models["harmony"] = LoadedModel(spec.HARMONY, make_fallback("harmony"), "trained", "a stand-in network")
    models["melody"] = LoadedModel(spec.MELODY, make_fallback("melody"), "trained", "a stand-in network")
    box = Box(models=models)
    controls = EngineControls(box.engine, box.config)
    box.play(1.0)
    controls.toggle_model("groove")
    leds = controls.model_leds(now=10.0)
    assert leds["groove"] == OFF and leds["harmony"] == ON and leds["melody"] == ON
    assert leds["emotion"] == BLINK  # running its heuristic fallback
    box.engine.scheduler.slots["melody"].deferrals += 1  # the scheduler deferred it just now
    assert controls.model_leds(now=11.0)["melody"] == BLINK
    assert controls.model_leds(now=12.5)["melody"] == ON


def test_panic_silences_every_voice(box: Box) -> None:
    controls = EngineControls(box.engine, box.config)
    box.play(3.0)
    t = box.engine.time_s
    controls.panic()
    for ch in (MELODY_CH, CHORD_CH, BASS_CH):
        assert box.sounding(ch, t + 1e-6) == set()


def test_panic_goes_to_the_live_loops_panic_when_given(box: Box) -> None:
    calls: list[str] = []
    controls = EngineControls(box.engine, box.config, panic=lambda: calls.append("loop panic"))
    controls.panic()
    assert calls == ["loop panic"]
