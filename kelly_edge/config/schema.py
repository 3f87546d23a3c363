"""The configuration schema: the frozen dataclasses below *are* the table of keys.

Every leaf key is one line ``name: type = key(default, doc, <rule>)``; every nested group is one
line ``name: SubConfig = section(default_instance, doc)``. The annotation gives the type, the
``key()`` call the default, the allowed values and the description. The loader
(:mod:`kelly_edge.config.loader`) validates against these rows, :func:`schema_markdown` renders
them as documentation and :func:`default_yaml` renders ``config/default.yaml`` from them, so the
code, the checks, the defaults and the docs cannot drift apart. Adding a key later (footswitches,
presets, live options) is one row here; a new group is a small frozen dataclass plus one
``section()`` row.

Defaults are those of the *instance* a section row carries, not of its class: the three voices
share :class:`VoiceConfig` but have different channels and ranges, so ``VoiceConfig`` and
``ModelConfig`` have no class defaults and a missing ``generator.chord.low`` falls back to 48,
not to the melody's 60.

Cross-key rules that one key cannot express (a voice's ``low < high``) are :class:`Relation` rows
in the class's ``RELATIONS``.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Union

import yaml

import kelly_edge
from kelly_edge.models import spec


REQUIRED: Any = dataclasses.MISSING
"""Default of a key whose value always comes from the enclosing section's default instance."""

# The trained models ship inside the package: in the repo kelly_edge/models_tflite is a symlink to
# the top-level models_tflite/ (where `make models` writes), and a wheel or sdist holds the files
# themselves, so one path serves the source tree, editable, wheel and sdist installs alike.
BUNDLED_MODELS_DIR = (Path(kelly_edge.__file__).parent / "models_tflite").resolve()


# --- table row helpers -----------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """What a leaf key accepts beyond its type; also what its documentation says."""

    doc: str
    lo: float | None = None  # inclusive bounds for int/float keys
    hi: float | None = None
    choices: tuple[Any, ...] | None = None
    check: Callable[[Any], str | None] | None = None  # extra rule: returns "must be ..., got ..." or None
    allowed: str | None = None  # how the docs describe ``check``


def key(
    default: Any,
    doc: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    choices: tuple[Any, ...] | None = None,
    check: Callable[[Any], str | None] | None = None,
    allowed: str | None = None,
) -> Any:
    """One leaf row: ``name: type = key(default, "what it does", lo=.., hi=.. | choices=..)``."""
    rule = Rule(doc, lo, hi, tuple(choices) if choices is not None else None, check, allowed)
    return field(default=default, metadata={"rule": rule})


def section(default: Any, doc: str) -> Any:
    """One nested-group row; ``default`` is the frozen instance used for every missing sub-key."""
    return field(default=default, metadata={"section": doc})


_T = typing.TypeVar("_T")


class FrozenMap(typing.Mapping[str, _T]):
    """An immutable, ordered, hashable ``{name: section}``: the value of a :func:`named` row.

    A plain dict would make the frozen config unhashable; order is the file's order (presets and
    footswitches are listed and cycled in the order the user wrote them).
    """

    __slots__ = ("_items", "_index")

    def __init__(self, items: typing.Iterable[tuple[str, _T]] = ()) -> None:
        self._items = tuple(items)
        self._index = dict(self._items)

    def __getitem__(self, name: str) -> _T:
        return self._index[name]

    def __iter__(self) -> typing.Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return self._items == other._items
        if isinstance(other, typing.Mapping):
            return dict(self._items) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({dict(self._items)!r})"


def named(item: type, doc: str, *, base: Callable[[Any], Any] | None = None, example: str = "") -> Any:
    """One mapping row of user-chosen names, each a section of ``item`` keys.

    ``footswitches: {tap: {pin: 17, press: tap_tempo}}``. Every entry starts from ``base(parent)``
    (the enclosing section as read from the same file, so a preset starts from the file's own
    values) or, without ``base``, from ``item``'s class defaults; a key with no class default
    (``REQUIRED``) must then be given. ``example`` (YAML text) is shown in ``default.yaml``.
    """
    return field(default=FrozenMap(), metadata={"named": (item, doc, base, example)})


@dataclass(frozen=True)
class Relation:
    """A rule across keys of one section, checked only when each key on its own is valid.

    ``check(obj, prefix)`` returns the whole problem ("generator.melody.low must be below ...")
    or None. The message's line is that of the first of ``keys`` present in the file. A check may
    instead return ``(dotted key, problem)`` pairs (one or a list) to blame the line of that key
    ("footswitches.b.pin uses GPIO 17, already used by ..."). ``always``: check even when other
    keys of the section are wrong (the check then sees defaults in place of the wrong values).
    """

    keys: tuple[str, ...]
    check: Callable[[Any, str], str | tuple[str, str] | list[tuple[str, str]] | None]
    always: bool = False


# --- the key and section descriptions derived from the rows ----------------------------------

_SCALARS = (bool, int, float, str)


def show(value: Any) -> str:
    """A value as a message shows it: YAML spellings for bools/null, quotes around text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


def _num(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class KeySpec:
    """One leaf key of a section class: its Python type, nullability and rule."""

    name: str
    type: type  # bool, int, float or str
    nullable: bool
    rule: Rule

    @property
    def type_name(self) -> str:
        base = {bool: "bool", int: "int", float: "number", str: "text"}[self.type]
        return f"{base} or null" if self.nullable else base

    def allowed_text(self, sep: str = " | ") -> str:
        """Allowed values for docs and messages: ``1-16``, ``-40 to 40``, ``>= 0``, ``a | b``."""
        r = self.rule
        if r.choices is not None:
            return sep.join(str(c) for c in r.choices)
        if r.lo is not None and r.hi is not None:
            return f"{_num(r.lo)}-{_num(r.hi)}" if r.lo >= 0 else f"{_num(r.lo)} to {_num(r.hi)}"
        if r.lo is not None:
            return f">= {_num(r.lo)}"
        if r.hi is not None:
            return f"<= {_num(r.hi)}"
        return r.allowed or ""

    def _expected_type(self) -> str:
        base = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}[self.type]
        return f"{base} or null" if self.nullable else base

    def check(self, value: Any) -> tuple[Any, str | None]:
        """``(python value, None)`` when ``value`` (as YAML gave it) is valid, else ``(None, problem)``.

        ``problem`` reads after the dotted key: ``"must be 1-16, got 17"``. YAML bools are not
        numbers; ints are accepted for float keys (and converted); NaN is never accepted.
        """
        if value is None:
            if self.nullable:
                return None, None
            return None, f"must be {self._expected_type()}, got null"
        raw = value  # messages show the value as written (400, not 400.0)
        ok = isinstance(value, self.type) and not (self.type is not bool and isinstance(value, bool))
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            try:
                value, ok = float(value), True
            except OverflowError:
                return None, f"must be a finite number, got {value!r}"
        if not ok:
            hint = " (put it in quotes)" if self.type is str and not isinstance(value, (list, dict)) else ""
            return None, f"must be {self._expected_type()}, got {show(value)}{hint}"
        if self.type is float and not math.isfinite(value):
            return None, f"must be a finite number, got {value!r}"
        r = self.rule
        if r.choices is not None and value not in r.choices:
            hint = ""
            if isinstance(value, str):
                close = closest(value, [str(c) for c in r.choices])
                hint = f" (did you mean {close}?)" if close else ""
            return None, f"must be one of {self.allowed_text(', ')}, got {show(raw)}{hint}"
        if (r.lo is not None and value < r.lo) or (r.hi is not None and value > r.hi):
            return None, f"must be {self.allowed_text()}, got {show(raw)}"
        if r.check is not None:
            problem = r.check(value)
            if problem:
                return None, problem
        return value, None


@dataclass(frozen=True)
class SectionSpec:
    """One nested group of a section class."""

    name: str
    cls: type
    doc: str


@dataclass(frozen=True)
class NamedSpec:
    """A mapping row of named entries, each an ``item`` section (see :func:`named`)."""

    name: str
    item: type
    doc: str
    base: Callable[[Any], Any] | None
    example: str = ""


def required_keys(cls: type) -> tuple[str, ...]:
    """The keys of a section class that have no class default (must be given in a named entry)."""
    return tuple(
        f.name for f in dataclasses.fields(cls)
        if "rule" in f.metadata and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )


def closest(word: str, candidates: list[str]) -> str | None:
    """The closest candidate to a misspelt ``word``, or None when nothing is close."""
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return close[0] if close else None


def _leaf_type(hint: Any) -> tuple[type, bool]:
    if hint in _SCALARS:
        return hint, False
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and args[0] in _SCALARS and len(typing.get_args(hint)) == 2:
            return args[0], True
    raise TypeError(f"unsupported config key type {hint!r} (use bool, int, float, str or 'X | None')")


@functools.cache
def schema_of(cls: type) -> tuple[KeySpec | SectionSpec | NamedSpec, ...]:
    """The rows of a section class, in declaration order (fields without a row are skipped)."""
    hints = typing.get_type_hints(cls)
    rows: list[KeySpec | SectionSpec | NamedSpec] = []
    for f in dataclasses.fields(cls):
        if "section" in f.metadata:
            rows.append(SectionSpec(f.name, hints[f.name], f.metadata["section"]))
        elif "named" in f.metadata:
            rows.append(NamedSpec(f.name, *f.metadata["named"]))
        elif "rule" in f.metadata:
            typ, nullable = _leaf_type(hints[f.name])
            rows.append(KeySpec(f.name, typ, nullable, f.metadata["rule"]))
    return tuple(rows)


# --- extra rules ------------------------------------------------------------------------------


def _check_emotion_name(value: str) -> str | None:
    """``emotion.intent`` must name a thesaurus emotion (imported lazily: it pulls in numpy)."""
    from kelly_edge.emotion import thesaurus

    try:
        thesaurus.by_name(value)
    except KeyError as err:
        detail = err.args[0] if err.args and isinstance(err.args[0], str) else f"got {value!r}"
        return f"must be an emotion name from the thesaurus: {detail}"
    return None


def _check_folder(value: str) -> str | None:
    """A folder key may be null (the built-in default) but not blank, which would mean the cwd."""
    return None if value.strip() else f"must be a folder path or null, got {value!r}"


def port_list(text: str) -> tuple[str, ...]:
    """``"poly, drum machine"`` -> ``("poly", "drum machine")`` (``midi.clock_out_ports``)."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _check_port_list(value: str) -> str | None:
    if value.strip() and any(not part.strip() for part in value.split(",")):
        return f"must list port names separated by commas, got {value!r}"
    return None


def _voice_range(voice: VoiceConfig, prefix: str) -> str | None:
    if voice.low < voice.high:
        return None
    return f"{prefix}.low must be below {prefix}.high ({voice.high}), got {voice.low}"


def emotion_cycle(text: str) -> tuple[str, ...]:
    """The names in an ``emotion.cycle`` value; ``""`` means one per family (the family names)."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    return names or spec.EMOTION_FAMILIES


def _check_emotion_list(value: str) -> str | None:
    """``emotion.cycle``: comma-separated thesaurus names (checked one by one, first problem told)."""
    if value.strip() and not emotion_cycle(value):
        return f"must list emotion names separated by commas, got {value!r}"
    for name in emotion_cycle(value):
        problem = _check_emotion_name(name)
        if problem:
            return problem
    return None


def _check_action(value: str) -> str | None:
    from kelly_edge.control.actions import check_action

    return check_action(value)


def _check_path(value: str) -> str | None:
    return None if value.strip() else f"must be a file path, got {value!r}"


def _check_cpus(value: str) -> str | None:
    """``realtime.cpu_affinity``: "" or CPU numbers and ranges separated by commas ("2,3", "0-1")."""
    for part in value.replace(" ", "").split(","):
        if not part and value.strip():
            return f"must list CPU numbers like '2,3' or '0-1', got {value!r}"
        lo, _, hi = part.partition("-")
        if part and not (lo.isdigit() and (not hi or (hi.isdigit() and int(hi) >= int(lo)))):
            return f"must list CPU numbers like '2,3' or '0-1', got {value!r}"
    return None


# --- the table --------------------------------------------------------------------------------

MODEL_RATES = ("hop", "step", "beat", "bar")
SAMPLE_RATES = (16000, 22050, 44100, 48000, 96000)


@dataclass(frozen=True)
class AudioConfig:
    """Live audio input."""

    backend: str = key("pyaudio", "live capture backend", choices=("pyaudio", "jack"))
    device: str = key("", 'substring of the input device name; "" = system default')
    sample_rate: int = key(48000, "input sample rate, Hz", choices=SAMPLE_RATES)
    channels: int = key(1, "input channels captured (downmixed to mono)", lo=1, hi=32)
    input_gain_db: float = key(0.0, "gain in dB applied before every level-based cue", lo=-40, hi=40)
    gate_db: float = key(-50.0, "level in dBFS below which the input counts as silent", lo=-100, hi=0)
    silence_tail_s: float = key(2.0, "seconds below the gate after which no new notes start", lo=0, hi=60)
    wait_for_devices: bool = key(
        False, "a missing audio input or MIDI port at start-up: wait for it (retry every 1.5 s) instead of exit code 2"
    )


@dataclass(frozen=True)
class TempoConfig:
    """The tempo and where it comes from."""

    bpm: float = key(
        100.0, "beats per minute: the tempo for source config, the starting guess (and the tracker's prior centre) otherwise",
        lo=20, hi=300,
    )
    source: str = key(
        "player",
        "player: the grid locks to the beats and bars heard (live and run --input); config: this file's bpm; "
        "tap: a footswitch; midi_clock: an incoming MIDI clock; onsets: old name of player",
        choices=("player", "config", "tap", "midi_clock", "onsets"),
    )


@dataclass(frozen=True)
class SchedulerConfig:
    """Real-time budget of the per-hop model scheduler."""

    budget_ms: float = key(10.0, "milliseconds of model time allowed per 10 ms hop", lo=1, hi=100)


@dataclass(frozen=True)
class RealtimeConfig:
    """Scheduling of the live box's processing and MIDI threads."""

    priority: int = key(0, "SCHED_FIFO priority of the processing and MIDI threads (needs rtprio); 0 = normal", lo=0, hi=99)
    cpu_affinity: str = key("", 'CPUs the box runs on, e.g. "2,3" or "1-3"; "" = any', check=_check_cpus,
                            allowed="CPU list")


@dataclass(frozen=True)
class ModelConfig:
    """One model: whether the network runs and how often."""

    enabled: bool = key(REQUIRED, "run the network (false = always use its heuristic fallback)")
    rate: str = key(REQUIRED, "how often it runs: every hop (10 ms), 16th step, beat or bar", choices=MODEL_RATES)


def _model_section(name: str, rate: str) -> Any:
    m = spec.BY_NAME[name]
    return section(ModelConfig(enabled=True, rate=rate), f"{m.name} model ({m.title})")


@dataclass(frozen=True)
class ModelsConfig:
    """The five models (names from :data:`kelly_edge.models.spec.MODEL_NAMES`)."""

    dir: str | None = key(
        None,
        "folder of the .tflite files; null = the bundled models_tflite/; "
        "relative paths are relative to this config file's folder",
        check=_check_folder,
        allowed="folder path",
    )
    emotion: ModelConfig = _model_section("emotion", "step")  # smoothed over 1 s: every 10 ms buys nothing
    harmony: ModelConfig = _model_section("harmony", "hop")  # hop: run every 2nd hop, the chord voice strikes a change when heard
    melody: ModelConfig = _model_section("melody", "step")
    dynamics: ModelConfig = _model_section("dynamics", "beat")
    groove: ModelConfig = _model_section("groove", "bar")

    def get(self, name: str) -> ModelConfig:
        """The settings of model ``name`` (one of ``spec.MODEL_NAMES``)."""
        if name not in spec.MODEL_NAMES:
            raise KeyError(f"unknown model {name!r} (one of {', '.join(spec.MODEL_NAMES)})")
        value: ModelConfig = getattr(self, name)
        return value


@dataclass(frozen=True)
class VoiceConfig:
    """One generated MIDI voice."""

    enabled: bool = key(REQUIRED, "play this voice")
    channel: int = key(REQUIRED, "MIDI channel", lo=1, hi=16)
    low: int = key(REQUIRED, "lowest MIDI note", lo=0, hi=127)
    high: int = key(REQUIRED, "highest MIDI note (above low)", lo=0, hi=127)
    program: int | None = key(
        None, "program change sent on this voice's channel at start and on every MIDI reconnection; null = none",
        lo=0, hi=127)
    bank: int | None = key(None, "bank select (CC0/CC32, 0-16383) sent before the program; null = none", lo=0,
                           hi=16383)
    port: str = key("", 'substring of the MIDI output port of this voice\'s synth; "" = midi.port')

    RELATIONS: ClassVar[tuple[Relation, ...]] = (Relation(("low", "high"), _voice_range),)


@dataclass(frozen=True)
class GeneratorConfig:
    """The MIDI generator."""

    seed: int = key(0, "random seed: the random choices are repeatable", lo=0)
    melody: VoiceConfig = section(VoiceConfig(enabled=True, channel=1, low=60, high=84), "melody voice")
    chord: VoiceConfig = section(VoiceConfig(enabled=True, channel=2, low=48, high=72), "chord voice")
    bass: VoiceConfig = section(VoiceConfig(enabled=True, channel=3, low=28, high=52), "bass voice")
    melody_density: float = key(1.0, "scales the groove's hit probabilities for the melody", lo=0, hi=2)
    temperature: float = key(0.7, "sampling temperature for the melody note choice", lo=0.05, hi=2)
    progression_memory: bool = key(
        True,
        "learn a repeated 2-8 bar chord loop and strike its changes on the player's beat instead of "
        "a recognition lag after it (false: chords follow recognition only)",
    )

    RELATIONS: ClassVar[tuple[Relation, ...]] = (
    )


@dataclass(frozen=True)
class MidiConfig:
    """MIDI output."""

    port: str = key("", 'substring of the output port name; "" = first port')
    clock_out: bool = key(False, "send MIDI clock (24 PPQN)")
    clock_out_ports: str = key(
        "", 'comma-separated substrings of the output ports that get the clock (and Start/Stop); "" = every port '
        "the box plays to (a port no voice uses is opened for the clock alone)", check=_check_port_list,
        allowed="port list")
    backend: str = key("alsa", "MIDI system of the output, clock-in and thru ports", choices=("alsa", "jack"))
    virtual: bool = key(False, "open a virtual output port (kelly-edge:out) for others to connect, instead of midi.port")
    latency_ms: float | None = key(
        None,
        "constant delay added to every live MIDI event so that each leaves exactly at its scheduled time; "
        "null = the backend's own: 2 ms through JACK (each event written at its own frame), 5 ms through ALSA",
        lo=0,
        hi=100,
    )
    clock_in_port: str = key("", 'substring of the MIDI input port followed when tempo.source is midi_clock; "" = first port')
    thru_port: str = key(
        "", 'MIDI thru: substring of the MIDI input port (a keyboard, a controller) whose playing passes to the '
        'output, merged with the box\'s own MIDI; "" = off')
    thru_to: str = key(
        "port", "where thru goes: port (midi.port) or the output of a voice (melody, chord, bass); switching that "
        "voice off releases the player's notes", choices=("port", "melody", "chord", "bass"))
    thru_channel: int | None = key(
        None, "MIDI channel the controller's channel messages are moved to; null = each keeps its own", lo=1, hi=16)
    thru_clock: bool = key(False, "pass the controller's MIDI clock, Start/Continue/Stop and Song Position through")
    thru_active_sensing: bool = key(False, "pass the controller's Active Sensing (0xFE) through")


@dataclass(frozen=True)
class EmotionConfig:
    """The emotion the output leans toward."""

    intent: str | None = key(
        None,
        "a thesaurus emotion name the output leans toward, or null",
        check=_check_emotion_name,
        allowed="thesaurus emotion name",
    )
    intent_amount: float = key(0.5, "how far the output leans toward intent", lo=0, hi=1)
    cycle: str = key(
        "",
        'emotions the intent_next/intent_prev footswitches step through, comma-separated, then "no intent"; '
        '"" = one per family (' + ", ".join(spec.EMOTION_FAMILIES) + ")",
        check=_check_emotion_list,
        allowed="thesaurus emotion names, comma-separated",
    )


GPIO_BACKENDS = ("auto", "lgpio", "rpigpio", "pigpio", "native", "mock")
GPIO_LO, GPIO_HI = 0, 27  # BCM numbers of the Pi's 40-pin header


@dataclass(frozen=True)
class GpioConfig:
    """Footswitch and LED hardware, through gpiozero."""

    backend: str = key(
        "auto",
        "gpiozero pin backend: auto (lgpio on a Pi 5 or a current Pi OS), rpigpio or pigpio for older setups, "
        "native, or mock (no hardware: rehearsal on a laptop)",
        choices=GPIO_BACKENDS,
    )
    pull_up: bool = key(True, "switches connect their pin to ground (internal pull-up); false = to 3.3 V")
    debounce_ms: float = key(20.0, "a switch must stay put this long before a change counts, ms", lo=0, hi=200)
    hold_s: float = key(0.8, "a press held this long is a long_press, seconds", lo=0.2, hi=5)
    double_press_s: float = key(0.35, "a second press within this is a double_press, seconds", lo=0.05, hi=2)
    led_active_high: bool = key(True, "LEDs light when their pin is high (false: lit when low)")


@dataclass(frozen=True)
class FootswitchConfig:
    """One footswitch: its pin and the action of each gesture."""

    pin: int = key(REQUIRED, "BCM GPIO number of the switch", lo=GPIO_LO, hi=GPIO_HI)
    press: str = key("none", "action of a short press", check=_check_action, allowed="an action")
    long_press: str = key("none", "action when held for hold_s", check=_check_action, allowed="an action")
    double_press: str = key("none", "action of two presses within gpio.double_press_s",
                            check=_check_action, allowed="an action")
    hold_s: float | None = key(None, "this switch's long-press time, seconds; null = gpio.hold_s", lo=0.2, hi=5)


def _led(doc: str) -> Any:
    return key(None, doc, lo=GPIO_LO, hi=GPIO_HI)


@dataclass(frozen=True)
class LedsConfig:
    """Status LEDs by BCM GPIO number; null = no LED. Model LEDs: on = switched on, off = switched
    off, blinking = running its heuristic fallback or recently deferred."""

    emotion: int | None = _led("GPIO of the emotion model's LED")
    harmony: int | None = _led("GPIO of the harmony model's LED")
    melody: int | None = _led("GPIO of the melody model's LED")
    dynamics: int | None = _led("GPIO of the dynamics model's LED")
    groove: int | None = _led("GPIO of the groove model's LED")
    tempo: int | None = _led("GPIO of the LED that flashes on every beat")
    error: int | None = _led("GPIO of the error LED (flashes while something is wrong); null = the tempo LED flashes it")


def _switched(name: str) -> Any:
    return key(True, f"{name} model switched on (the toggle_{name} footswitch flips it)")


@dataclass(frozen=True)
class ActiveConfig:
    """Which models are switched on at start. Off: melody mutes the melody voice, harmony the chord
    and bass voices (their notes are released; switched on, they resume on the next beat); emotion
    holds a neutral emotion (only the intent steers); dynamics and groove play a neutral, straight
    feel."""

    emotion: bool = _switched("emotion")
    harmony: bool = _switched("harmony")
    melody: bool = _switched("melody")
    dynamics: bool = _switched("dynamics")
    groove: bool = _switched("groove")


@dataclass(frozen=True)
class StateConfig:
    """Remembering the footswitch state and the input calibration across restarts."""

    persist: bool = key(False, "keep switched models, preset, intent and tapped tempo across restarts")
    path: str = key(
        "/var/lib/kelly-edge/state.json",
        "state file (written atomically); relative paths are relative to this config file's folder",
        check=_check_path,
        allowed="file path",
    )
    calibration: str = key(
        "/var/lib/kelly-edge/calibration.json",
        "input gain per audio device, written by kelly-edge calibrate; relative paths are relative to this config file's folder",
        check=_check_path,
        allowed="file path",
    )


@dataclass(frozen=True)
class PresetTempoConfig:
    """The tempo a preset sets."""

    bpm: float = key(TempoConfig().bpm, "beats per minute set when the preset is selected", lo=20, hi=300)


@dataclass(frozen=True)
class PresetConfig:
    """One preset: what it sets when selected; keys it leaves out keep this file's values."""

    tempo: PresetTempoConfig = section(PresetTempoConfig(), "tempo")
    emotion: EmotionConfig = section(EmotionConfig(), "emotional intent")
    active: ActiveConfig = section(ActiveConfig(), "models switched on")


def _preset_base(config: Any) -> PresetConfig:
    """A preset starts from the file's own values (so it only lists what it changes)."""
    return PresetConfig(tempo=PresetTempoConfig(bpm=config.tempo.bpm), emotion=config.emotion, active=config.active)


def _unique_pins(config: Any, prefix: str) -> list[tuple[str, str]] | None:
    """No GPIO pin may serve two footswitches/LEDs; the later use is blamed."""
    uses = [(f"footswitches.{name}.pin", sw.pin) for name, sw in config.footswitches.items()]
    uses += [(f"leds.{f.name}", getattr(config.leds, f.name)) for f in dataclasses.fields(LedsConfig)]
    seen: dict[int, str] = {}
    problems = []
    for path, pin in uses:
        if pin is None:
            continue
        if pin in seen:
            problems.append((path, f"{path} uses GPIO {pin}, already used by {seen[pin]}"))
        else:
            seen[pin] = path
    return problems or None


_FOOTSWITCH_EXAMPLE = """\
tap:
  pin: 17
  press: tap_tempo
  long_press: panic
melody:
  pin: 27
  press: toggle_melody
  double_press: freeze_emotion"""

_PRESET_EXAMPLE = """\
ballad:
  tempo: {bpm: 70}
  emotion: {intent: tenderness}
  active: {groove: false}"""


@dataclass(frozen=True)
class Config:
    """The whole configuration; ``source`` (the file it came from) is not a key and not compared."""

    audio: AudioConfig = section(AudioConfig(), "live audio input")
    tempo: TempoConfig = section(TempoConfig(), "tempo and where it comes from")
    scheduler: SchedulerConfig = section(SchedulerConfig(), "per-hop model scheduler")
    realtime: RealtimeConfig = section(RealtimeConfig(), "real-time scheduling of the live box")
    models: ModelsConfig = section(ModelsConfig(), "the five models")
    generator: GeneratorConfig = section(GeneratorConfig(), "MIDI generator")
    midi: MidiConfig = section(MidiConfig(), "MIDI output")
    emotion: EmotionConfig = section(EmotionConfig(), "emotional intent")
    gpio: GpioConfig = section(GpioConfig(), "footswitch and LED hardware")
    footswitches: FrozenMap[FootswitchConfig] = named(
        FootswitchConfig, "footswitches by name, each with a pin and gesture actions", example=_FOOTSWITCH_EXAMPLE
    )
    leds: LedsConfig = section(LedsConfig(), "status LEDs")
    active: ActiveConfig = section(ActiveConfig(), "models switched on at start")
    state: StateConfig = section(StateConfig(), "footswitch state and input calibration kept across restarts")
    presets: FrozenMap[PresetConfig] = named(
        PresetConfig, "named presets: tempo, emotion and active overrides selected by footswitch",
        base=_preset_base, example=_PRESET_EXAMPLE,
    )
    source: str = field(default="<default>", compare=False)

    RELATIONS: ClassVar[tuple[Relation, ...]] = (Relation(("footswitches", "leds"), _unique_pins, always=True),)


def default_config() -> Config:
    """Every key at its default (what an empty file gives)."""
    return Config()


def models_dir(config: Config) -> Path:
    """The folder the .tflite files are read from.

    ``models.dir`` null -> the package's ``models_tflite`` (the repo's top-level folder, through a
    symlink, in a source tree); ``~`` is expanded; a relative
    path is relative to the folder of the config file (or the working folder when the config did
    not come from a file).
    """
    if config.models.dir is None:
        return BUNDLED_MODELS_DIR
    folder = Path(config.models.dir).expanduser()
    if folder.is_absolute():
        return folder
    base = Path.cwd() if config.source.startswith("<") else Path(config.source).resolve().parent
    return Path(os.path.normpath(base / folder))


def state_path(config: Config) -> Path:
    """The state file: ``state.path`` with ``~`` expanded, relative paths beside the config file."""
    path = Path(config.state.path).expanduser()
    if path.is_absolute():
        return path
    base = Path.cwd() if config.source.startswith("<") else Path(config.source).resolve().parent
    return Path(os.path.normpath(base / path))


def with_preset(config: Config, name: str | None) -> Config:
    """The config as it plays with preset ``name`` selected (None: the file's own values).

    A preset sets ``tempo.bpm``, the ``emotion`` section and the ``active`` switches; everything
    else (and the presets themselves) stays. ``KeyError`` for an unknown preset name.
    """
    if name is None:
        return config
    preset = config.presets[name]
    return dataclasses.replace(
        config,
        tempo=dataclasses.replace(config.tempo, bpm=preset.tempo.bpm),
        emotion=preset.emotion,
        active=preset.active,
    )


# --- rendering: documentation and default.yaml ------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One rendered row: a key (``spec`` set) or a section (``spec`` None), with its default."""

    path: str
    depth: int
    doc: str
    default: Any = None
    spec: KeySpec | None = None
    named: NamedSpec | None = None  # a mapping row of named entries (``spec`` None too)


def named_item_rows(named_spec: NamedSpec, prefix: str) -> tuple[Row, ...]:
    """The keys of one entry of a named row, as ``<prefix>.<name>.<key>`` rows for the docs.

    ``default`` is the class default, or ``REQUIRED`` for a required key or (``base`` set) a key
    whose default is the file's own value.
    """
    def walk(cls: type, path: str, depth: int) -> list[Row]:
        out: list[Row] = []
        for item in schema_of(cls):
            sub = f"{path}.{item.name}"
            if isinstance(item, SectionSpec):
                out.append(Row(sub, depth, item.doc))
                out.extend(walk(item.cls, sub, depth + 1))
            elif isinstance(item, KeySpec):
                f = next(f for f in dataclasses.fields(cls) if f.name == item.name)
                given = named_spec.base is None and f.default is not dataclasses.MISSING
                out.append(Row(sub, depth, item.rule.doc, f.default if given else REQUIRED, item))
        return out

    return tuple(walk(named_spec.item, f"{prefix}.<name>", 1))


def schema_rows(cls: type = Config, default: Any = None, prefix: str = "", depth: int = 0) -> tuple[Row, ...]:
    """Every section and key, depth first in declaration order, with defaults from the instance."""
    if default is None:
        default = cls()
    rows: list[Row] = []
    for item in schema_of(cls):
        path = f"{prefix}.{item.name}" if prefix else item.name
        if isinstance(item, SectionSpec):
            rows.append(Row(path, depth, item.doc))
            rows.extend(schema_rows(item.cls, getattr(default, item.name), path, depth + 1))
        elif isinstance(item, NamedSpec):  # its entries' keys: named_item_rows (not in default.yaml)
            rows.append(Row(path, depth, item.doc, getattr(default, item.name), named=item))
        else:
            rows.append(Row(path, depth, item.rule.doc, getattr(default, item.name), item))
    return tuple(rows)


def yaml_scalar(value: Any) -> str:
    """``value`` as a YAML scalar that safe_load reads back unchanged (``""`` for empty text)."""
    if isinstance(value, str) and value == "":
        return '""'
    text = yaml.safe_dump(value, default_flow_style=True)
    return text.removesuffix("\n").removesuffix("\n...")


def schema_markdown() -> str:
    """Markdown reference of every key: one table per top-level section."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    out: list[str] = ["# Configuration keys", ""]
    out.append("All keys are optional; a missing key takes its default. Generated from "
               "`kelly_edge/config/schema.py`.")
    for row in schema_rows():
        if row.depth == 0:
            out += ["", f"## `{row.path}`: {row.doc}", "",
                    "| Key | Type | Default | Allowed | Description |", "|---|---|---|---|---|"]
        if row.named is not None:
            out.append(f"| `{row.path}` | named entries | `{{}}` | any names | {cell(row.doc)} |")
            starts = "the file's value" if row.named.base is not None else "required"
            for sub in named_item_rows(row.named, row.path):
                if sub.spec is None:
                    out.append(f"| `{sub.path}` | section | | | {cell(sub.doc)} |")
                    continue
                default = starts if sub.default is REQUIRED else f"`{cell(yaml_scalar(sub.default))}`"
                out.append(f"| `{sub.path}` | {sub.spec.type_name} | {default} | "
                           f"{cell(sub.spec.allowed_text(', '))} | {cell(sub.doc)} |")
        elif row.depth == 0:
            pass
        elif row.spec is None:
            out.append(f"| `{row.path}` | section | | | {cell(row.doc)} |")
        else:
            allowed = row.spec.allowed_text(", ")
            allowed = cell(allowed) if allowed else ""
            out.append(f"| `{row.path}` | {row.spec.type_name} | `{cell(yaml_scalar(row.default))}` "
                       f"| {allowed} | {cell(row.doc)} |")
    return "\n".join(out) + "\n"


DEFAULT_YAML_HEADER = """\
# kelly-edge configuration: every key with its default value.
# All keys are optional: a missing key (or section) takes the default shown here, so a config
# file only needs the lines you change. Unknown keys and bad values are reported with their line.
# Generated by kelly_edge.config.schema.default_yaml(); edit the schema, then regenerate.
"""


def default_yaml() -> str:
    """The text of ``config/default.yaml``: every key at its default with a comment."""
    body: list[tuple[str, str]] = []
    for row in schema_rows():
        name = row.path.rsplit(".", 1)[-1]
        indent = "  " * row.depth
        if row.named is not None:
            if row.depth == 0 and body:
                body.append(("", ""))
            body.append((f"{indent}{name}: {{}}", f"{row.doc}; for example:"))
            body.extend((f"{indent}#   {line}", "") for line in row.named.example.splitlines())
        elif row.spec is None:
            if row.depth == 0 and body:
                body.append(("", ""))
            body.append((f"{indent}{name}:", row.doc))
        else:
            allowed = row.spec.allowed_text()
            comment = f"{allowed}: {row.doc}" if allowed and row.spec.rule.allowed is None else row.doc
            body.append((f"{indent}{name}: {yaml_scalar(row.default)}", comment))
    width = max(len(text) for text, _ in body) + 2
    lines = [f"{text:<{width}}# {comment}" if comment else text for text, comment in body]
    return DEFAULT_YAML_HEADER + "\n" + "\n".join(lines) + "\n"
