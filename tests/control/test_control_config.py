"""The control rows of the config: footswitches, LEDs, presets, state; each bad input with file:line and key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kelly_edge.config.loader import load_config, parse_config
from kelly_edge.config.schema import (
    ActiveConfig,
    Config,
    FrozenMap,
    default_config,
    default_yaml,
    emotion_cycle,
    state_path,
    with_preset,
)
from kelly_edge.errors import ConfigError
from kelly_edge.models import spec

GOOD = """\
tempo:
  bpm: 96
emotion:
  intent: joy
  cycle: tenderness, melancholy
gpio:
  backend: mock
  debounce_ms: 10
footswitches:
  tap:
    pin: 17
    press: tap_tempo
    long_press: panic
  melody:
    pin: 27
    press: toggle_melody
    double_press: freeze_emotion
    hold_s: 1.5
leds:
  melody: 5
  tempo: 6
active:
  groove: false
state:
  persist: true
  path: state/box.json
presets:
  ballad:
    tempo: {bpm: 70}
    emotion: {intent: tenderness}
    active: {harmony: false}
  rock:
    emotion: {intent_amount: 0.9}
"""


def errors(tmp_path: Path, text: str) -> tuple[str, list[str]]:
    path = tmp_path / "box.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(path), info.value.messages


def test_a_full_pedalboard_config_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "box.yaml"
    path.write_text(GOOD, encoding="utf-8")
    config = load_config(path)
    assert list(config.footswitches) == ["tap", "melody"]  # the file's order
    tap, melody = config.footswitches["tap"], config.footswitches["melody"]
    assert (tap.pin, tap.press, tap.long_press, tap.double_press, tap.hold_s) == (17, "tap_tempo", "panic", "none", None)
    assert (melody.pin, melody.double_press, melody.hold_s) == (27, "freeze_emotion", 1.5)
    assert (config.leds.melody, config.leds.tempo, config.leds.error) == (5, 6, None)
    assert config.active.groove is False and config.active.melody is True
    assert state_path(config) == tmp_path.resolve() / "state" / "box.json"
    assert emotion_cycle(config.emotion.cycle) == ("tenderness", "melancholy")
    hash(config)  # still a frozen, hashable config


def test_presets_start_from_the_files_values() -> None:
    config = parse_config(GOOD)
    ballad, rock = config.presets["ballad"], config.presets["rock"]
    assert ballad.tempo.bpm == 70.0 and ballad.emotion.intent == "tenderness"
    assert ballad.active.harmony is False and ballad.active.groove is False  # groove: the file's value
    assert rock.tempo.bpm == 96.0 and rock.emotion.intent == "joy" and rock.emotion.intent_amount == 0.9
    playing = with_preset(config, "ballad")
    assert playing.tempo.bpm == 70.0 and playing.tempo.source == config.tempo.source
    assert playing.emotion.intent == "tenderness" and playing.active == ballad.active
    assert playing.footswitches == config.footswitches
    assert with_preset(config, None) is config
    with pytest.raises(KeyError):
        with_preset(config, "jazz")


def test_presets_written_before_the_sections_they_override_still_start_from_them() -> None:
    config = parse_config("presets:\n  slow: {emotion: {intent_amount: 0.2}}\ntempo:\n  bpm: 123\n")
    assert config.presets["slow"].tempo.bpm == 123.0


def test_the_defaults_have_no_switches_leds_or_presets() -> None:
    config = default_config()
    assert config.footswitches == {} and config.presets == {}
    assert isinstance(config.footswitches, FrozenMap)
    assert all(getattr(config.leds, name) is None for name in (*spec.MODEL_NAMES, "tempo", "error"))
    assert config.active == ActiveConfig() and all(getattr(config.active, m) for m in spec.MODEL_NAMES)
    assert config.state.persist is False


def test_default_yaml_examples_are_valid_when_uncommented() -> None:
    lines = default_yaml().splitlines()
    for section in ("footswitches", "presets"):
        start = next(i for i, line in enumerate(lines) if line.startswith(f"{section}:"))
        example = [line[4:] for line in lines[start + 1:] if line.startswith("#   ")]
        body = []
        for line in lines[start + 1:]:
            if not line.startswith("#   "):
                break
            body.append("  " + line[4:])
        assert example
        config = parse_config(f"{section}:\n" + "\n".join(body) + "\n")
        assert len(getattr(config, section)) >= 1


def test_frozen_map_behaves_as_a_read_only_mapping() -> None:
    m = FrozenMap([("b", 1), ("a", 2)])
    assert list(m) == ["b", "a"] and m["a"] == 2 and len(m) == 2 and dict(m) == {"b": 1, "a": 2}
    assert m == FrozenMap([("b", 1), ("a", 2)]) and m != FrozenMap([("a", 2), ("b", 1)])
    assert hash(m) == hash(FrozenMap([("b", 1), ("a", 2)]))
    with pytest.raises(TypeError):
        m["c"] = 3  # type: ignore[index]


# --- bad input: each with file:line and the dotted key ------------------------------------------


def test_gpio_pin_used_twice(tmp_path: Path) -> None:
    text = "footswitches:\n  a:\n    pin: 17\n  b:\n    pin: 18\nleds:\n  tempo: 17\n  error: 18\n"
    path, messages = errors(tmp_path, text)
    assert messages == [
        f"{path}:7: leds.tempo uses GPIO 17, already used by footswitches.a.pin",
        f"{path}:8: leds.error uses GPIO 18, already used by footswitches.b.pin",
    ]


def test_two_switches_on_one_pin(tmp_path: Path) -> None:
    path, messages = errors(tmp_path, "footswitches:\n  a: {pin: 4}\n  b:\n    press: panic\n    pin: 4\n")
    assert messages == [f"{path}:5: footswitches.b.pin uses GPIO 4, already used by footswitches.a.pin"]


def test_unknown_model_in_a_switch_action(tmp_path: Path) -> None:
    path, messages = errors(tmp_path, "footswitches:\n  a:\n    pin: 4\n    long_press: toggle_bass\n")
    assert len(messages) == 1
    assert messages[0].startswith(f"{path}:4: footswitches.a.long_press names an unknown model 'bass'")


def test_unknown_action(tmp_path: Path) -> None:
    path, messages = errors(tmp_path, "footswitches:\n  a:\n    pin: 4\n    press: tap\n")
    assert len(messages) == 1 and messages[0].startswith(f"{path}:4: footswitches.a.press must be an action (")
    assert "did you mean tap_tempo?" in messages[0]


def test_unknown_key_in_a_switch(tmp_path: Path) -> None:
    path, messages = errors(tmp_path, "footswitches:\n  a:\n    pin: 4\n    pres: panic\n")
    assert messages == [f"{path}:4: unknown key footswitches.a.pres (did you mean footswitches.a.press?)"]


def test_wrong_types(tmp_path: Path) -> None:
    text = "footswitches:\n  a:\n    pin: seventeen\n    hold_s: true\nleds:\n  tempo: 4.5\nstate:\n  persist: 1\n"
    path, messages = errors(tmp_path, text)
    assert messages == [
        f"{path}:3: footswitches.a.pin must be a whole number, got 'seventeen'",
        f"{path}:4: footswitches.a.hold_s must be a number or null, got true",
        f"{path}:6: leds.tempo must be a whole number or null, got 4.5",
        f"{path}:8: state.persist must be true or false, got 1",
    ]


def test_pin_out_of_range(tmp_path: Path) -> None:
    path, messages = errors(tmp_path, "leds:\n  melody: 40\n")
    assert messages == [f"{path}:2: leds.melody must be 0-27, got 40"]


def test_a_switch_without_a_pin(tmp_path: Path) -> None:
    path, messages = errors(tmp_path, "footswitches:\n  tap:\n    press: tap_tempo\n")
    assert len(messages) == 1 and messages[0].startswith(f"{path}:2: footswitches.tap is missing pin")


def test_a_switch_that_is_not_a_mapping(tmp_path: Path) -> None:
    path, messages = errors(tmp_path, "footswitches:\n  tap: 17\n")
    assert len(messages) == 1 and messages[0].startswith(f"{path}:2: footswitches.tap must be a mapping of keys (pin,")


def test_footswitches_that_are_a_list(tmp_path: Path) -> None:
    path, messages = errors(tmp_path, "footswitches:\n  - pin: 17\n")
    assert len(messages) == 1 and messages[0].startswith(f"{path}:2: footswitches must be a mapping of names")


def test_duplicate_switch_name(tmp_path: Path) -> None:
    path, messages = errors(tmp_path, "footswitches:\n  a: {pin: 4}\n  a: {pin: 5}\n")
    assert messages == [f"{path}:3: duplicate key footswitches.a (first at line 2)"]


def test_preset_with_a_section_presets_cannot_set(tmp_path: Path) -> None:
    path, messages = errors(tmp_path, "presets:\n  loud:\n    audio: {input_gain_db: 6}\n")
    assert messages == [f"{path}:3: unknown key presets.loud.audio (valid keys: tempo, emotion, active)"]


def test_preset_values_are_checked_like_the_rest(tmp_path: Path) -> None:
    path, messages = errors(tmp_path, "presets:\n  fast:\n    tempo:\n      bpm: 400\n    emotion: {intent: glee}\n")
    assert messages[0] == f"{path}:4: presets.fast.tempo.bpm must be 20-300, got 400"
    assert messages[1].startswith(f"{path}:5: presets.fast.emotion.intent must be an emotion name")
    assert len(messages) == 2


def test_unknown_emotion_in_the_cycle(tmp_path: Path) -> None:
    path, messages = errors(tmp_path, "emotion:\n  cycle: joy, hapiness\n")
    assert len(messages) == 1 and messages[0].startswith(f"{path}:2: emotion.cycle must be an emotion name")
    assert "happiness" in messages[0]


def test_bad_gpio_backend(tmp_path: Path) -> None:
    path, messages = errors(tmp_path, "gpio:\n  backend: RPi.GPIO\n")
    assert len(messages) == 1 and messages[0].startswith(f"{path}:2: gpio.backend must be one of auto, lgpio, rpigpio")


def test_yaml_syntax_error_inside_the_switches(tmp_path: Path) -> None:
    path, messages = errors(tmp_path, "footswitches:\n  a:\n    pin: 4\n    press: [panic\n")
    assert len(messages) == 1 and ": YAML syntax error: " in messages[0] and messages[0].startswith(f"{path}:")


def test_channel_out_of_range_still_caught_with_the_control_rows_present(tmp_path: Path) -> None:
    path, messages = errors(tmp_path, GOOD + "generator:\n  bass:\n    channel: 0\n")
    line = len(GOOD.splitlines()) + 3
    assert messages == [f"{path}:{line}: generator.bass.channel must be 1-16, got 0"]


def test_every_config_row_is_documented_in_default_yaml_as_the_loader_reads_it() -> None:
    data = yaml.safe_load(default_yaml())
    assert data["footswitches"] == {} and data["presets"] == {}
    assert parse_config(default_yaml()) == Config()


def test_a_pin_clash_is_reported_alongside_other_mistakes(tmp_path: Path) -> None:
    text = "footswitches:\n  a: {pin: 4, press: toggle_melodie}\n  b: {pin: 4}\n  c: {pin: 99}\nleds: {tempo: 4}\n"
    path, messages = errors(tmp_path, text)
    assert [m.split(":")[1] for m in messages] == ["2", "3", "4", "5"]
    assert messages[1] == f"{path}:3: footswitches.b.pin uses GPIO 4, already used by footswitches.a.pin"
    assert messages[2] == f"{path}:4: footswitches.c.pin must be 0-27, got 99"
    assert messages[3] == f"{path}:5: leds.tempo uses GPIO 4, already used by footswitches.a.pin"
