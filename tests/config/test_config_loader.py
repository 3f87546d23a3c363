"""load_config / parse_config / check_config_main: values, defaults and every class of error."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kelly_edge.config.loader import check_config_main, load_config, parse_config
from kelly_edge.config.schema import default_config
from kelly_edge.emotion import thesaurus
from kelly_edge.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "config" / "examples").glob("*.yaml"))


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(tmp_path: Path, text: str) -> tuple[str, list[str]]:
    """``(path as messages name it, messages)`` of a config that must be rejected."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(path), info.value.messages


# --- values and defaults ---------------------------------------------------------------------


def test_given_keys_are_read_and_the_rest_are_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "audio:\n  sample_rate: 44100\ngenerator:\n  melody:\n    channel: 9\n"))
    default = default_config()
    assert config.audio.sample_rate == 44100
    assert config.generator.melody.channel == 9
    assert config.generator.melody.low == default.generator.melody.low
    assert config.audio.backend == default.audio.backend
    assert config.tempo == default.tempo


def test_partial_voice_keeps_that_voices_own_defaults() -> None:
    chord = parse_config("generator:\n  chord: {channel: 5}\n").generator.chord
    default = default_config().generator.chord
    assert chord.channel == 5
    assert (chord.low, chord.high, chord.enabled) == (default.low, default.high, default.enabled)
    assert (chord.low, chord.high) != (default_config().generator.melody.low, default_config().generator.melody.high)


def test_int_is_accepted_for_a_number_key_and_becomes_float() -> None:
    config = parse_config("tempo:\n  bpm: 120\n")
    assert config.tempo.bpm == 120.0 and isinstance(config.tempo.bpm, float)


def test_empty_file_gives_all_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")) == default_config()
    assert load_config(write(tmp_path, "# only a comment\n\n", "c.yaml")) == default_config()


def test_empty_section_gives_its_defaults() -> None:
    assert parse_config("audio:\n  # sample_rate: 44100\nmidi:\n") == default_config()


def test_merge_keys_work_as_in_safe_load() -> None:
    text = "generator:\n  melody: &v {channel: 4, low: 40, high: 70}\n  chord:\n    <<: *v\n    channel: 5\n"
    gen = parse_config(text).generator
    assert (gen.chord.channel, gen.chord.low, gen.chord.high) == (5, 40, 70)
    assert gen.melody.channel == 4


def test_null_is_accepted_where_allowed() -> None:
    config = parse_config("emotion:\n  intent: null\nmodels:\n  dir: ~\n")
    assert config.emotion.intent is None and config.models.dir is None


def test_thesaurus_emotion_is_accepted_as_intent() -> None:
    name = thesaurus.THESAURUS[len(thesaurus.THESAURUS) // 2].name
    assert parse_config(f"emotion:\n  intent: {name}\n").emotion.intent == name


# --- errors: one class each, exact file:line and dotted key ---------------------------------


def test_channel_out_of_range_names_file_line_and_key(tmp_path: Path) -> None:
    path, messages = errors_of(tmp_path, "# box\ngenerator:\n  seed: 3\n  melody:\n    channel: 17\n")
    assert messages == [f"{path}:5: generator.melody.channel must be 1-16, got 17"]


def test_unknown_key_with_suggestion(tmp_path: Path) -> None:
    path, messages = errors_of(tmp_path, "audio:\n  backend: jack\n  samplerate: 44100\n")
    assert messages == [f"{path}:3: unknown key audio.samplerate (did you mean audio.sample_rate?)"]


def test_unknown_section_with_suggestion(tmp_path: Path) -> None:
    path, messages = errors_of(tmp_path, "tempo:\n  bpm: 90\nautio:\n  channels: 2\n")
    assert messages == [f"{path}:3: unknown key autio (did you mean audio?)"]


def test_unknown_key_without_a_close_name_lists_the_valid_keys(tmp_path: Path) -> None:
    path, messages = errors_of(tmp_path, "midi:\n  xyzzy: 1\n")
    assert messages == [f"{path}:2: unknown key midi.xyzzy (valid keys: port, clock_out, clock_out_ports, backend, virtual, latency_ms, clock_in_port, thru_port, thru_to, thru_channel, thru_clock, thru_active_sensing)"]


def test_wrong_type_text_for_number(tmp_path: Path) -> None:
    path, messages = errors_of(tmp_path, "tempo:\n  bpm: fast\n")
    assert messages == [f"{path}:2: tempo.bpm must be a number, got 'fast'"]


def test_bool_is_not_an_int(tmp_path: Path) -> None:
    path, messages = errors_of(tmp_path, "audio:\n  channels: true\n")
    assert messages == [f"{path}:2: audio.channels must be a whole number, got true"]


def test_bool_is_not_a_number(tmp_path: Path) -> None:
    path, messages = errors_of(tmp_path, "scheduler:\n  budget_ms: yes\n")
    assert messages == [f"{path}:2: scheduler.budget_ms must be a number, got true"]


def test_float_is_not_an_int(tmp_path: Path) -> None:
    path, messages = errors_of(tmp_path, "generator:\n  seed: 1.5\n")
    assert messages == [f"{path}:2: generator.seed must be a whole number, got 1.5"]


def test_unquoted_yaml_bool_for_text_says_to_quote_it(tmp_path: Path) -> None:
    path, messages = errors_of(tmp_path, "midi:\n  port: no\n")
    assert messages == [f"{path}:2: midi.port must be text, got false (put it in quotes)"]


def test_null_where_not_allowed(tmp_path: Path) -> None:
    path, messages = errors_of(tmp_path, "tempo:\n  bpm:\n")
    assert messages == [f"{path}:2: tempo.bpm must be a number, got null"]


def test_nan_is_rejected(tmp_path: Path) -> None:
    path, messages = errors_of(tmp_path, "emotion:\n  intent_amount: .nan\n")
    assert len(messages) == 1 and messages[0].startswith(f"{path}:2: emotion.intent_amount must be a finite number")


def test_bad_choice_with_suggestion(tmp_path: Path) -> None:
    path, messages = errors_of(tmp_path, "audio:\n  backend: jak\n")
    assert messages == [f"{path}:2: audio.backend must be one of pyaudio, jack, got 'jak' (did you mean jack?)"]


def test_bad_numeric_choice(tmp_path: Path) -> None:
    path, messages = errors_of(tmp_path, "audio:\n  sample_rate: 44000\n")
    assert messages == [f"{path}:2: audio.sample_rate must be one of 16000, 22050, 44100, 48000, 96000, got 44000"]


def test_negative_range_is_readable(tmp_path: Path) -> None:
    path, messages = errors_of(tmp_path, "audio:\n  gate_db: 3\n")
    assert messages == [f"{path}:2: audio.gate_db must be -100 to 0, got 3"]


def test_low_not_below_high_blames_low(tmp_path: Path) -> None:
    path, messages = errors_of(tmp_path, "generator:\n  bass:\n    low: 50\n    high: 50\n")
    assert messages == [f"{path}:3: generator.bass.low must be below generator.bass.high (50), got 50"]


def test_low_not_below_high_blames_the_key_in_the_file(tmp_path: Path) -> None:
    low = default_config().generator.melody.low
    path, messages = errors_of(tmp_path, f"generator:\n  melody:\n    enabled: true\n    high: {low - 1}\n")
    assert messages == [f"{path}:4: generator.melody.low must be below generator.melody.high ({low - 1}), got {low}"]


def test_section_that_is_not_a_mapping(tmp_path: Path) -> None:
    path, messages = errors_of(tmp_path, "midi: 5\n")
    assert messages == [f"{path}:1: midi must be a mapping of keys (port, clock_out, clock_out_ports, backend, virtual, latency_ms, clock_in_port, thru_port, thru_to, thru_channel, thru_clock, thru_active_sensing), got 5"]


def test_duplicate_key(tmp_path: Path) -> None:
    path, messages = errors_of(tmp_path, "audio:\n  channels: 2\n  gate_db: -40\n  channels: 4\n")
    assert messages == [f"{path}:4: duplicate key audio.channels (first at line 2)"]


def test_unknown_intent_emotion(tmp_path: Path) -> None:
    path, messages = errors_of(tmp_path, "emotion:\n  intent_amount: 0.2\n  intent: hapiness\n")
    assert len(messages) == 1
    assert messages[0].startswith(f"{path}:3: emotion.intent must be an emotion name from the thesaurus")
    assert "happiness" in messages[0]  # the thesaurus's suggestion is passed on


def test_blank_models_dir(tmp_path: Path) -> None:
    path, messages = errors_of(tmp_path, 'models:\n  dir: ""\n')
    assert messages == [f"{path}:2: models.dir must be a folder path or null, got ''"]


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    path, messages = errors_of(tmp_path, "audio:\n  backend: jack\n  device: [usb\ntempo:\n  bpm: 90\n")
    assert len(messages) == 1
    prefix, _, problem = messages[0].partition(": YAML syntax error: ")
    assert problem
    line = int(prefix.removeprefix(f"{path}:"))
    assert 3 <= line <= 5


def test_tab_indentation_is_a_syntax_error_on_its_line(tmp_path: Path) -> None:
    path, messages = errors_of(tmp_path, "audio:\n\tbackend: jack\n")
    assert len(messages) == 1 and messages[0].startswith(f"{path}:2: YAML syntax error: ")


def test_two_documents_are_an_error(tmp_path: Path) -> None:
    path, messages = errors_of(tmp_path, "audio: {}\n---\ntempo: {}\n")
    assert len(messages) == 1 and messages[0].startswith(f"{path}:2: YAML syntax error: ")
    assert "single document" in messages[0]


def test_list_at_top_level(tmp_path: Path) -> None:
    path, messages = errors_of(tmp_path, "- audio\n- tempo\n")
    assert len(messages) == 1
    assert messages[0].startswith(f"{path}:1: the top level must be a mapping of sections")
    assert messages[0].endswith("got a list")


def test_scalar_at_top_level(tmp_path: Path) -> None:
    path, messages = errors_of(tmp_path, "hello\n")
    assert len(messages) == 1 and messages[0].startswith(f"{path}:1: the top level must be a mapping")


def test_all_errors_are_reported_in_line_order(tmp_path: Path) -> None:
    text = (
        "audio:\n"  # 1
        "  samplerate: 44100\n"  # 2
        "  channels: 0\n"  # 3
        "generator:\n"  # 4
        "  melody:\n"  # 5
        "    channel: 17\n"  # 6
        "  chord:\n"  # 7
        "    low: 80\n"  # 8
        "tempo:\n"  # 9
        "  source: tapped\n"  # 10
        "  bpm: false\n"  # 11
    )
    path, messages = errors_of(tmp_path, text)
    lines = [int(m.removeprefix(f"{path}:").split(":", 1)[0]) for m in messages]
    assert lines == [2, 3, 6, 8, 10, 11]
    keys = ["audio.samplerate", "audio.channels", "generator.melody.channel", "generator.chord.low",
            "tempo.source", "tempo.bpm"]
    assert all(key in message for key, message in zip(keys, messages))


def test_cross_key_rule_is_skipped_when_a_key_is_already_wrong(tmp_path: Path) -> None:
    # low 200 is out of range; a "low must be below high" on top would only confuse
    path, messages = errors_of(tmp_path, "generator:\n  melody:\n    low: 200\n")
    assert messages == [f"{path}:3: generator.melody.low must be 0-127, got 200"]


def test_parse_config_names_the_source() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("tempo:\n  bpm: 400\n")
    assert info.value.messages == ["<string>:2: tempo.bpm must be 20-300, got 400"]
    with pytest.raises(ConfigError) as info:
        parse_config("tempo:\n  bpm: 400\n", source="live.yaml")
    assert info.value.messages[0].startswith("live.yaml:2: ")


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=-1000, max_value=1000))
def test_channel_is_valid_exactly_in_1_to_16(channel: int) -> None:
    text = f"generator:\n  bass:\n    channel: {channel}\n"
    if 1 <= channel <= 16:
        assert parse_config(text).generator.bass.channel == channel
    else:
        with pytest.raises(ConfigError):
            parse_config(text)


# --- files ----------------------------------------------------------------------------------


def test_missing_file_is_one_message_naming_path_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert len(info.value.messages) == 1
    assert info.value.messages[0].startswith(f"{path}: ") and "default.yaml" in info.value.messages[0]


def test_folder_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert len(info.value.messages) == 1 and info.value.messages[0].startswith(f"{tmp_path}: ")


def test_non_utf8_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("midi:\n  port: 'Gerät'\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.messages == [f"{path}:2: not UTF-8 text (save the file as UTF-8)"]


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_config("[1, 2]")


# --- check_config_main --------------------------------------------------------------------------


def test_check_config_main_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "tempo:\n  bpm: 90\n")
    assert check_config_main(str(path)) == 0
    out, err = capsys.readouterr()
    assert out == f"OK: {path}\n"
    assert err == ""


def test_check_config_main_reports_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "tempo:\n  bpm: 900\nmidi:\n  clock_out: maybe\n"
    path = write(tmp_path, text)
    assert check_config_main(str(path)) == 1
    out, err = capsys.readouterr()
    assert out == ""
    with pytest.raises(ConfigError) as info:
        parse_config(text, source=str(path))
    assert err.splitlines() == info.value.messages
    assert len(info.value.messages) == 2


def test_check_config_main_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_config_main(str(tmp_path / "missing.yaml")) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and "missing.yaml" in err


# --- the shipped examples -------------------------------------------------------------------


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_valid_and_differs_from_the_defaults(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_config_main(str(path)) == 0, capsys.readouterr().err
    assert load_config(path) != default_config()
