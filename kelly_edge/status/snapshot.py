"""A JSON-able picture of the running box, built from an :class:`~kelly_edge.engine.engine.Engine`.

The live loop calls :func:`build_snapshot` a few times a second (not per hop) on its own thread and
hands the dict to :class:`~kelly_edge.status.server.StatusServer`, which serves it to
``kelly-edge status`` and ``kelly-edge monitor``. Building one costs about a tenth of a
millisecond (a sort of the last :data:`HOP_WINDOW` hop times, one thesaurus lookup, small dicts):
nothing at a few Hz. A snapshot is never mutated after it is returned, so the publisher can serve
it from another thread without a lock.

Layout (``SCHEMA_VERSION`` 1; every number a plain float/int, times in seconds, levels in dB)::

    kind, version, state ("running"), pid, time (unix wall clock), audio_s
    emotion   {valence, arousal, dominance, intensity, name, family, intent}
    key       {name, tonic, major, clarity, known}
    chord     "Am" | "N.C."
    input     {level_db, silent, silent_for_s}
    tempo     {bpm, source, detected_bpm}
    models    {name: {enabled, held, status, why, confidence, top, runs, deferrals, failures}}
    timing    {hops, deadline_misses, budget_ms, window_hops, hop_ms {p50, p99, p999, max}}
    audio, midi, last_error   from the live loop's extras (None when not given); with one port per
              synth ``midi`` also has ``ports`` [{port, want, key, voices, clock, state, since_s, sent,
              late, dropped, lost, sounding, late_p99_ms}] and ``voices`` {voice: {port, state}}

A model's ``enabled`` is its switch (footswitch, ``active.<name>``, preset): False while its part is
muted or neutral; ``status``/``why`` say what plays it when on ("fallback", "disabled in the
config" for ``models.<name>.enabled: false``); ``held``: frozen on its last output. All of it is
:meth:`kelly_edge.engine.model_state.ModelStates.snapshot`, the same the run report reads.

A model's ``confidence`` (0..1, None when the output has no such notion) says how decided its last
output was: the top probability of a softmax (harmony: chord, melody: note), the top family
membership for emotion, and for groove the mean of ``|2p - 1|`` over the 16 hit probabilities (1 =
every step surely played or surely rest). ``top`` names what won (chord name, note, family, hits).
"""

from __future__ import annotations

import os
import time
from typing import Any, Mapping

import numpy as np

from kelly_edge.emotion import thesaurus
from kelly_edge.models import spec
from kelly_edge.models.spec import Desc, Emo

SCHEMA_VERSION = 1
KIND = "kelly-edge-status"
HOP_WINDOW = 1000
"""Hop-time percentiles cover the last this many hops (10 s at 10 ms hops): what a player tuning
the box now wants, and cheap to compute at a few Hz even after hours of running."""

KNOWN_EXTRAS = ("audio", "midi", "last_error")

_HARMONY_PROB = spec.HARMONY.output_slice("chord_prob")
_MELODY_PROB = spec.MELODY.output_slice("note_prob")
_GROOVE_HITS = spec.GROOVE.output_slice("hit_prob")
_DYN_VELOCITY = spec.DYNAMICS.output_slice("velocity")


def note_name(note: int) -> str:
    """``60 -> "C4"`` (MIDI octave convention: C4 is middle C)."""
    return f"{spec.PITCH_NAMES[note % 12]}{note // 12 - 1}"


def _top_of_probs(p: np.ndarray) -> tuple[float, int]:
    """Top probability (after normalising, as a net's raw softmax may not sum to exactly 1) and its index."""
    total = float(np.sum(p))
    k = int(np.argmax(p))
    if not total > 0.0 or not np.isfinite(total):
        return 0.0, k
    return float(p[k]) / total, k


def model_confidence(name: str, output: np.ndarray) -> tuple[float | None, str]:
    """``(confidence 0..1 or None, what won)`` of one model's last output (see the module docstring)."""
    if name == "harmony":
        conf, k = _top_of_probs(output[_HARMONY_PROB])
        return conf, spec.chord_name(k)
    if name == "melody":
        conf, k = _top_of_probs(output[_MELODY_PROB])
        return conf, note_name(k)
    if name == "emotion":
        conf, k = _top_of_probs(output[Emo.FAMILIES])
        return conf, spec.EMOTION_FAMILIES[k]
    if name == "groove":
        p = np.clip(output[_GROOVE_HITS], 0.0, 1.0)
        return float(np.mean(np.abs(2.0 * p - 1.0))), f"{int(np.count_nonzero(p > 0.5))}/16 hits"
    if name == "dynamics":
        v = float(np.clip(output[_DYN_VELOCITY][0], 0.0, 1.0))
        return None, f"velocity {1 + round(126 * v)}"
    return None, ""


def recent_hop_times(engine: Any, n: int = HOP_WINDOW) -> np.ndarray:
    """The last ``n`` per-hop processing times in seconds, oldest first."""
    return np.asarray(engine.recent_hop_times(n))


def _percentiles_ms(seconds: np.ndarray) -> dict[str, float]:
    if seconds.size == 0:
        return {"p50": 0.0, "p99": 0.0, "p999": 0.0, "max": 0.0}
    ms = np.sort(seconds) * 1000.0  # one sort beats np.percentile's general machinery 5x here
    return {"p50": _quantile(ms, 0.5), "p99": _quantile(ms, 0.99), "p999": _quantile(ms, 0.999), "max": round(float(ms[-1]), 3)}


def _quantile(sorted_ms: np.ndarray, q: float) -> float:
    """Linear-interpolated quantile of sorted values (numpy's default "linear" method), rounded."""
    pos = q * (sorted_ms.size - 1)
    lo = int(pos)
    hi = min(lo + 1, sorted_ms.size - 1)
    value = sorted_ms[lo] + (pos - lo) * (sorted_ms[hi] - sorted_ms[lo])
    return round(float(value), 3)


def _finite(x: float, digits: int = 4) -> float | None:
    x = float(x)
    return round(x, digits) if np.isfinite(x) else None


def live_extras(live_status: Mapping[str, Any], *, backend: str | None = None,
                sample_rate: int | None = None, last_error: BaseException | str | None = None) -> dict[str, Any]:
    """The ``extras`` of :func:`build_snapshot` from :meth:`kelly_edge.live.loop.LiveLoop.status`.

    Maps the loop's flat status (``audio_input``, ``overflows``, ``midi_output``,
    ``midi_connected``...) onto the snapshot's ``audio`` / ``midi`` device dicts, whose ``state``
    is ``"running"``/``"missing"`` and ``"connected"``/``"missing"``. Missing keys are left out.
    """
    s = live_status
    audio: dict[str, Any] = {"state": "running" if s.get("audio_input") else "missing"}
    if backend:
        audio["backend"] = backend
    if s.get("audio_input"):
        audio["device"] = s["audio_input"]
    if sample_rate:
        audio["sample_rate"] = int(sample_rate)
    for key, name in (("input_gain_db", "gain_db"), ("calibrated", "calibrated"), ("overflows", "overflows"),
                      ("dropped_frames", "dropped"), ("clipped_hops", "clipped_hops")):
        if key in s:
            audio[name] = s[key]
    midi: dict[str, Any] = {"state": "connected" if s.get("midi_connected") else "missing"}
    if s.get("midi_output"):
        midi["port"] = s["midi_output"]
    for key, name in (("midi_sent", "sent"), ("midi_late", "late")):
        if key in s:
            midi[name] = s[key]
    if s.get("midi_thru"):
        midi["thru"] = dict(s["midi_thru"])  # input, connected, passed, filtered, player_sounding, ...
    lateness = s.get("midi_lateness_ms")
    if isinstance(lateness, Mapping) and "p99" in lateness:
        midi["late_p99_ms"] = lateness["p99"]
    if s.get("midi_ports"):  # one port per synth: each destination, and each voice's port and state
        midi["ports"] = [dict(p) for p in s["midi_ports"]]
        midi["voices"] = {v: dict(p) for v, p in s.get("midi_voices", {}).items()}
    extras: dict[str, Any] = {"audio": audio, "midi": midi, "last_error": str(last_error) if last_error else None}
    if s.get("tempo_source"):
        extras["tempo_source"] = s["tempo_source"]
    return extras


def build_snapshot(engine: Any, extras: Mapping[str, Any] | None = None, *, now: float | None = None) -> dict[str, Any]:
    """The status dict of ``engine`` now (see the module docstring for the layout).

    ``extras`` comes from the live loop (see :func:`live_extras`): ``audio`` (e.g. ``{"backend",
    "device", "sample_rate", "state", "overflows"}``), ``midi`` (e.g. ``{"port", "state"}``),
    ``last_error`` (text or None), ``tempo_source`` (overrides the config's), ``state``,
    ``input_file`` (shown in the title when the box plays a recording), and anything else, which is
    copied as is (it must be JSON-able). ``now`` is the wall-clock time to stamp (default
    ``time.time()``).
    """
    extras = dict(extras or {})
    cfg = engine.config
    ctx = engine.ctx
    sched = engine.scheduler
    vadi = engine.emotion_vadi
    v, a = float(vadi[0]), float(vadi[1])
    node = thesaurus.nearest(v, a)
    states = engine.model_states
    models: dict[str, Any] = {}
    for name, info in states.snapshot().items():
        conf, top = model_confidence(name, states.output(name))
        entry = info.as_dict()
        entry["confidence"] = None if conf is None else _finite(conf, 3)
        entry["top"] = top
        models[name] = entry
    chord = getattr(engine.generator, "current_chord", spec.NO_CHORD)
    window = recent_hop_times(engine)
    intent = getattr(cfg.emotion, "intent", None)
    snap: dict[str, Any] = {
        "kind": KIND,
        "version": SCHEMA_VERSION,
        "state": extras.pop("state", "running"),
        "pid": os.getpid(),
        "time": round(time.time() if now is None else now, 3),
        "audio_s": round(float(engine.time_s), 3),
        "emotion": {
            "valence": _finite(v),
            "arousal": _finite(a),
            "dominance": _finite(vadi[2]),
            "intensity": _finite(vadi[3]),
            "name": node.name,
            "family": node.family,
            "intent": intent,
        },
        "key": {
            "name": ctx.key_name,
            "tonic": int(ctx.tonic),
            "major": bool(ctx.major),
            "clarity": _finite(getattr(ctx, "key_clarity", 0.0), 3),
            "known": bool(getattr(ctx, "key_known", True)),
        },
        "chord": spec.chord_name(int(chord)) if chord is not None else "N.C.",
        "input": {
            "level_db": _finite(ctx.level_db, 1),
            "silent": bool(ctx.silent),
            "silent_for_s": _finite(getattr(ctx, "silent_for_s", 0.0), 2),
        },
        "tempo": {
            "bpm": _finite(engine.grid.bpm, 2),
            "source": extras.pop("tempo_source", cfg.tempo.source),
            "detected_bpm": _finite(ctx.descriptors[Desc.INDEX["tempo_bpm"]], 1),
        },
        "models": models,
        "timing": {
            "hops": int(sched.hops),
            "deadline_misses": int(sched.deadline_misses),
            "budget_ms": round(sched.budget_s * 1000.0, 3),
            "window_hops": int(window.size),
            "hop_ms": _percentiles_ms(window),
        },
    }
    for key in KNOWN_EXTRAS:
        snap[key] = extras.pop(key, None)
    for key, value in extras.items():
        snap.setdefault(key, value)
    return snap
