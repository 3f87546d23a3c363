"""The one owner of each model's state in the engine: what plays its role, whether it is on, and why.

A model has two independent properties, and everything that shows or changes them (footswitches,
LEDs, ``kelly-edge status``, the run report, a SIGHUP model re-load) goes through
:class:`ModelStates` instead of the scheduler's slots or the generator:

* its **source**: the trained network (``"trained"``) or its heuristic fallback (``"fallback"``),
  with the reason (file missing or bad, ``models.<name>.enabled: false`` in the config, failed or
  over budget at run time). A config-disabled network is *not* "off": the model is still on and
  its fallback plays the role.
* whether it is **switched on** (``active.<name>``, a footswitch, a preset). Off has one meaning,
  the player's (the README's): the model's part of the music goes quiet or neutral.

  - ``melody``: the melody voice is muted (its sounding notes released at once, its queued notes
    dropped) and the melody model stops running; switched on, the voice resumes on the next beat.
  - ``harmony``: the chord and bass voices are muted the same way; the harmony model keeps
    running, so a melody that is still on keeps following the chords.
  - ``emotion``: a neutral emotion (:data:`NEUTRAL_EMOTION`) stands in, so the music glides over
    the engine's 1 s smoothing to neutral and only the configured intent steers it.
  - ``dynamics`` / ``groove``: a fixed neutral feel (:data:`NEUTRAL_DYNAMICS`,
    :data:`NEUTRAL_GROOVE`).

  Switched on again, the model's current source runs (a model re-loaded while it was off is the
  one that comes back). A voice disabled in the config (``generator.<voice>.enabled: false``)
  stays silent whatever the switch says.

A model can also be **held** (the freeze-emotion footswitch): it stops running and its last output
stays in use until it is released.

Everything here runs on the thread that calls ``Engine.process_hop`` (between hops).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping

import numpy as np

from kelly_edge.engine.scheduler import Scheduler
from kelly_edge.models import spec
from kelly_edge.models.fallbacks import make_fallback
from kelly_edge.models.runner import LoadedModel
from kelly_edge.models.spec import Emo

log = logging.getLogger(__name__)

VOICES_OF = {"melody": ("melody",), "harmony": ("chord", "bass")}
"""The generator voices a model's switch mutes (the other models have a neutral stand-in)."""


def _neutral_dynamics() -> np.ndarray:
    out = np.zeros(spec.DYNAMICS.n_out, dtype=np.float32)
    values = {"velocity": 0.6, "velocity_spread": 0.1, "accent": 0.3, "length": 0.8, "cc1": 0.0, "cc11": 0.8,
              "cc74": 0.5, "cc64": 0.0, "voice_balance": 2.0 / 3.0, "humanize": 0.2}
    for part, value in values.items():
        out[spec.DYNAMICS.output_slice(part)] = value
    return out


def _neutral_groove() -> np.ndarray:
    out = np.zeros(spec.GROOVE.n_out, dtype=np.float32)
    hits = out[spec.GROOVE.output_slice("hit_prob")]
    hits[0::2] = 0.9  # every eighth note
    hits[1::2] = 0.05
    return out


def _neutral_emotion() -> np.ndarray:
    out = np.zeros(spec.EMOTION.n_out, dtype=np.float32)
    out[Emo.FAMILIES] = 1.0 / len(spec.EMOTION_FAMILIES)
    return out


NEUTRAL_DYNAMICS = _neutral_dynamics()
"""Dynamics with the model off, (16,) float32: velocity ~77, little spread, no CC movement, full voice balance."""
NEUTRAL_GROOVE = _neutral_groove()
"""Groove with the model off, (32,) float32: straight eighths, no micro-timing."""
NEUTRAL_EMOTION = _neutral_emotion()
"""Emotion with the model off, (64,) float32: VADI 0, families even."""
NEUTRAL_OUTPUT = {"emotion": NEUTRAL_EMOTION, "dynamics": NEUTRAL_DYNAMICS, "groove": NEUTRAL_GROOVE}


def _constant(value: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    frozen = value.copy()
    frozen.setflags(write=False)

    def neutral(x: np.ndarray) -> np.ndarray:
        return frozen

    return neutral


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model's state at a moment (see the module docstring)."""

    name: str
    on: bool  # switched on (off: its part is muted or neutral)
    held: bool  # frozen: its last output stays in use
    status: str  # "trained" | "fallback": what plays the role when it is on
    why: str  # how the source came to be (e.g. "disabled in the config", "failed at run time: ...")
    runs: int  # of its scheduler slot (a stand-in's runs count while it is off)
    deferrals: int
    failures: int

    def as_dict(self) -> dict[str, Any]:
        """The JSON-able fields shared by the status snapshot and the run report."""
        return {"enabled": self.on, "held": self.held, "status": self.status, "why": self.why,
                "runs": self.runs, "deferrals": self.deferrals, "failures": self.failures}


class ModelStates:
    """Owns the five models' sources and switches; installs what runs in each scheduler slot.

    ``config``: the engine's config (``models.<name>.enabled``, ``active.<name>`` at start and the
    voices' ``generator.<voice>.enabled``). ``loaded``: the models as loaded (a config-disabled one
    is replaced by its fallback here). ``initial``: each slot's output before its first run.
    ``generator``: anything with ``set_voice_enabled(voice, enabled, now)``; ``audio_time()``: the
    engine's audio time, when a switched-off voice's notes are released.
    """

    def __init__(self, config: Any, scheduler: Scheduler, generator: Any, loaded: Mapping[str, LoadedModel], *,
                 initial: Mapping[str, np.ndarray], audio_time: Callable[[], float]) -> None:
        self._scheduler = scheduler
        self._generator = generator
        self._audio_time: Callable[[], float] = lambda: 0.0  # the switches at start act at time 0
        self._config_enabled = {s.name: bool(config.models.get(s.name).enabled) for s in spec.MODELS}
        self._models: dict[str, LoadedModel] = {}
        for name, model in loaded.items():
            if not self._config_enabled.get(name, True):  # its heuristic takes the role
                model = LoadedModel(model.spec, make_fallback(name), "fallback", "disabled in the config")
            self._models[name] = model
        self.models: Mapping[str, LoadedModel] = MappingProxyType(self._models)
        """Each model as it is now (read-only: change it through :meth:`install`)."""
        self._on = {name: True for name in self._models}
        self._held = {name: False for name in self._models}
        self._voice_allowed = {voice: bool(getattr(config.generator, voice).enabled)
                               for voices in VOICES_OF.values() for voice in voices}
        self._stand_in = {name: _constant(value) for name, value in NEUTRAL_OUTPUT.items()}
        self._logged_failures: set[str] = set()
        for s in spec.MODELS:
            scheduler.add(s.name, self._models[s.name].call, s.n_out, initial=initial[s.name])
        scheduler.on_failure(self._failed)
        for name in self._models:
            self.switch(name, bool(getattr(config.active, name, True)))
        self._audio_time = audio_time

    # --- changes ------------------------------------------------------------------------------
    def switch(self, name: str, on: bool) -> None:
        """Switch model ``name`` on or off (what off does per model: see the module docstring)."""
        self._on[name] = bool(on)
        if name in VOICES_OF:
            self._apply_voices(name)
        self._apply(name)

    def hold(self, name: str, held: bool) -> None:
        """Freeze (True) or release model ``name``: while held it does not run; its last output stays."""
        self._held[name] = bool(held)
        self._apply(name)

    def install(self, name: str, model: LoadedModel) -> None:
        """A re-loaded ``model`` for ``name``: in use at once if the model is on, else when switched on.

        A network the config disables stays on its fallback; a fresh model's failure is logged again.
        """
        if not self._config_enabled.get(name, True):
            return
        self._models[name] = model
        self._logged_failures.discard(name)
        self._apply(name)

    def allow_voices(self, generator_config: Any) -> None:
        """The voices' ``enabled`` flags of a new config or preset (a switched-on model's voice
        plays only if its flag allows it)."""
        for voice in self._voice_allowed:
            self._voice_allowed[voice] = bool(getattr(generator_config, voice).enabled)
        for name in VOICES_OF:
            self._apply_voices(name)

    def _failed(self, name: str, err: BaseException) -> None:
        """The scheduler's failure handler: log once, continue on the fallback (the box keeps playing)."""
        if name not in self._logged_failures:
            self._logged_failures.add(name)
            log.error("%s model failed (%s); switching to its heuristic fallback", name, err)
        loaded = self._models[name]
        self._models[name] = LoadedModel(loaded.spec, make_fallback(name), "fallback", f"failed at run time: {err}")
        self._apply(name)

    def _apply(self, name: str) -> None:
        """Put in the scheduler what the switch, the hold and the source say."""
        on = self._on[name]
        stand_in = self._stand_in.get(name)
        call = self._models[name].call if on or stand_in is None else stand_in
        if self._scheduler.slots[name].call is not call:
            self._scheduler.replace(name, call)
        runs = not self._held[name] and (on or name != "melody")  # an off melody has nothing to play
        self._scheduler.set_enabled(name, runs)

    def _apply_voices(self, name: str) -> None:
        now = self._audio_time()
        for voice in VOICES_OF[name]:
            self._generator.set_voice_enabled(voice, self._on[name] and self._voice_allowed[voice], now)

    # --- what it is -----------------------------------------------------------------------------
    def is_on(self, name: str) -> bool:
        return self._on[name]

    def output(self, name: str) -> np.ndarray:
        """The output now in use for ``name`` (the stand-in's while it is off); do not modify it."""
        return self._scheduler.output(name)

    def info(self, name: str) -> ModelInfo:
        slot = self._scheduler.slots[name]
        model = self._models[name]
        return ModelInfo(name, self._on[name], self._held[name], model.status, model.reason,
                         slot.runs, slot.deferrals, slot.failures)

    def snapshot(self) -> dict[str, ModelInfo]:
        """Every model's :class:`ModelInfo`, in spec priority order."""
        return {name: self.info(name) for name in self._models}

    def statuses(self) -> dict[str, str]:
        """``{name: "trained" | "fallback"}``."""
        return {name: m.status for name, m in self._models.items()}
