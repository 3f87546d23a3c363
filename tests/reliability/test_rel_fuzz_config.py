"""Fuzzing the config edge: random YAML documents, random text, and mutations of the shipped
``config/default.yaml`` (values replaced by other types and extremes, lines dropped, duplicated or
re-indented, anchors and aliases).

A document is either a valid :class:`Config` -- and then an engine built from it runs and plays a
clean MIDI stream -- or a :class:`ConfigError` whose every message names the source and a line:
nothing else may escape the loader. A few go through ``kelly-edge check-config`` and
``kelly-edge run --config`` as a user would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from kelly_edge.config.loader import parse_config
from kelly_edge.config.schema import Config
from kelly_edge.engine.engine import Engine
from kelly_edge.errors import ConfigError
from kelly_edge.midi import messages as mm
from kelly_edge.midi.sinks import RecordingSink
from tests.reliability.rel_cli import DEMO, REPO, assert_clean, run_in_process, run_subprocess
from tests.reliability.rel_harness import StreamCheck, audio_segment, check_stream, feed, odd_models

DEFAULT_YAML = (REPO / "config" / "default.yaml").read_text()
SOURCE = "fuzz.yaml"


def outcome_of(text: str) -> Config | ConfigError:
    """Parse ``text``; anything but a Config or a ConfigError fails the test."""
    try:
        return parse_config(text, SOURCE)
    except ConfigError as err:
        assert err.messages, "a ConfigError must say what is wrong"
        for message in err.messages:
            assert message.startswith(f"{SOURCE}:"), message
            assert "\n" not in message, message
        return err


def plays_cleanly(config: Config) -> None:
    """An engine built from an accepted config runs two seconds of tones and silence cleanly."""
    sink = RecordingSink()
    engine = Engine(config, sink, sample_rate=16000, models=odd_models({}, 0))
    rng = np.random.default_rng(0)
    for kind in ("tone", "chord", "silence", "tone"):
        feed(engine, audio_segment(kind, 8000, 16000, rng))
    engine.close()
    gen = config.generator
    voices = (gen.melody, gen.chord, gen.bass)
    ranges: dict[int, list[tuple[int, int]]] = {}
    for v in voices:
        ranges.setdefault(mm.wire_channel(v.channel), []).append((v.low, v.high))
    check_stream(sink.events, StreamCheck(channels=set(ranges), ranges=ranges, panics=[engine.time_s]))


# --- random YAML documents ------------------------------------------------------------------------
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), st.sampled_from(["pyaudio", "jack", "hop", "bar", "config", "tap", "joy", "", "~", "null"]),
)
keys = st.one_of(st.sampled_from(
    ["audio", "tempo", "bpm", "generator", "melody", "channel", "low", "high", "models", "emotion", "enabled", "rate",
     "scheduler", "budget_ms", "midi", "port", "presets", "footswitches", "leds", "active", "state", "gpio", "pin",
     "press", "intent", "seed", "dir", "source"]), st.text(max_size=8))
documents = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)), max_leaves=25)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_random_yaml_documents_load_or_say_why(doc: object) -> None:
    text = yaml.safe_dump(doc, allow_unicode=True)
    result = outcome_of(text)
    if isinstance(result, Config):
        plays_cleanly(result)


@hsettings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_random_text_loads_or_says_why(text: str) -> None:
    outcome_of(text)


# --- mutations of the default config ----------------------------------------------------------------
REPLACEMENTS = ["0", "-1", "1e309", "-1e309", ".nan", ".inf", "true", "null", "''", "[]", "{}", "[1, 2]", "abc",
                "999999999999999999999", "0x10", "1_000", "\"17\"", "!!binary aGVsbG8=", "*nowhere", "&a 3", "|\n  x",
                "2001-12-14", "{a: 1}", "!!python/object:os.system 'echo pwned'", "- 1", "1:2", "@", "%"]


def _mutate(lines: list[str], rng: np.random.Generator) -> str:
    lines = list(lines)
    for _ in range(int(rng.integers(1, 4))):
        i = int(rng.integers(0, len(lines)))
        line = lines[i]
        op = int(rng.integers(0, 6))
        if op == 0 and ":" in line:  # a value replaced
            key, _, rest = line.partition(":")
            comment = rest[rest.index("#"):] if "#" in rest else ""
            lines[i] = f"{key}: {REPLACEMENTS[int(rng.integers(0, len(REPLACEMENTS)))]} {comment}"
        elif op == 1:  # a line dropped
            del lines[i]
        elif op == 2:  # a line duplicated
            lines.insert(i, line)
        elif op == 3:  # re-indented
            lines[i] = " " * int(rng.integers(0, 5)) + line.lstrip()
        elif op == 4:  # a tab or a control character inserted
            pos = int(rng.integers(0, len(line) + 1))
            lines[i] = line[:pos] + str(rng.choice(["\t", "\x00", "\x07", "\u2028", "'", '"', "{", "["])) + line[pos:]
        else:  # the line cut short
            lines[i] = line[: int(rng.integers(0, len(line) + 1))]
        if not lines:
            lines = [""]
    return "\n".join(lines) + "\n"


def test_mutations_of_the_default_config_load_or_say_why() -> None:
    lines = DEFAULT_YAML.splitlines()
    assert isinstance(outcome_of(DEFAULT_YAML), Config)
    rng = np.random.default_rng(11)
    accepted = rejected = 0
    for i in range(300):
        result = outcome_of(_mutate(lines, rng))
        if isinstance(result, Config):
            accepted += 1
            if accepted <= 25:
                plays_cleanly(result)
        else:
            rejected += 1
    assert accepted and rejected  # the mutations hit both sides


def test_alias_bombs_and_deep_nesting_are_refused_quickly() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    assert isinstance(outcome_of(bomb), ConfigError)
    assert isinstance(outcome_of("presets: " + "[" * 500 + "]" * 500 + "\n"), ConfigError)
    assert isinstance(outcome_of("tempo:\n  bpm: &x 120\naudio: *x\n"), ConfigError)


def test_bad_configs_through_the_command_line(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    lines = DEFAULT_YAML.splitlines()
    cases = {"binary": b"\xff\xfe\x00garbage\x80", "empty": b"", "list": b"- 1\n- 2\n",
             "bad_channel": b"generator:\n  melody: {channel: 17}\n"}
    for i in range(12):
        cases[f"mut{i}"] = _mutate(lines, rng).encode("utf-8", "surrogatepass")
    mid = tmp_path / "out.mid"
    for name, data in cases.items():
        path = tmp_path / f"{name}.yaml"
        path.write_bytes(data)
        check = run_in_process(["check-config", str(path)])
        assert check.code in (0, 1), (name, check)
        assert "Traceback" not in check.stderr
        if check.code == 1:
            assert_clean(check, what=f"check-config {name}", config_path=str(path))
        run = run_in_process(["-q", "run", "--config", str(path), "--input", str(DEMO), "--midi-out", str(mid)], 60)
        assert_clean(run, [mid], what=f"run --config {name}")
        assert (run.code == 0) == (check.code == 0), (name, run, check)
        mid.unlink(missing_ok=True)
    # and twice in a real process
    for name in ("binary", "bad_channel"):
        out = run_subprocess(["-q", "run", "--config", str(tmp_path / f"{name}.yaml"), "--input", str(DEMO),
                              "--midi-out", str(mid)])
        assert out.code == 2 and not mid.exists(), out
        assert_clean(out, [mid], what=f"process {name}")
