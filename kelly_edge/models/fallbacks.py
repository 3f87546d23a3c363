"""The five heuristic fallbacks: the model contracts computed from music theory instead of a net.

Each class is a drop-in for its trained model: ``__call__(x: (n_in,) float32) -> (n_out,) float32``
on exactly the vectors :mod:`kelly_edge.features.encode` builds, returning the layout
:mod:`kelly_edge.models.spec` defines. They run when a model file is missing, corrupt or
disabled, so they have to make music on their own, not fill the shape with placeholders:

- :class:`EmotionFallback`   mode, tempo, loudness and brightness cues -> valence/arousal/...
- :class:`MelodyFallback`    key, chord, voice leading and register -> next-note distribution
- :class:`HarmonyFallback`   chord templates x diatonic prior x progression prior -> chord distribution
- :class:`DynamicsFallback`  level/arousal/accents -> velocity, length and expression CCs
- :class:`GrooveFallback`    heard rhythm blended with a metric template -> hit probability, timing

Real-time contract: everything is preallocated in ``__init__``; ``__call__`` writes into the
object's own buffers (``out=`` everywhere) and returns the same output array each time, which the
caller may read until the next call. Scalars are computed with plain Python floats. Any finite
input gives finite output in the documented ranges; NaN inputs are read as 0 (as the TFLite runner
does) and infinities as +-1e5.

The constants below are musical judgements, named and commented where they are set; they are the
baseline a trained net has to beat, so keep them simple enough to reason about.
"""

from __future__ import annotations

import logging
import math
from types import MappingProxyType
from typing import ClassVar, Mapping

import numpy as np

from kelly_edge.emotion import thesaurus
from kelly_edge.errors import ModelError
from kelly_edge.models import spec as specs
from kelly_edge.models.spec import Desc, ModelSpec

log = logging.getLogger(__name__)

_INPUT_LIMIT = 1.0e5  # inputs are clipped to +-this first: inf and absurd values stay finite


def _clip(value: float, lo: float, hi: float) -> float:
    return lo if value < lo else hi if value > hi else value


class Fallback:
    """Base of the five fallbacks: ``__call__((n_in,) float32) -> (n_out,) float32`` per ``spec``.

    Subclasses set the class attribute ``spec`` and implement ``__call__``, starting with
    :meth:`_load` (shape check, private sanitised copy of the input) and writing into ``self.out``,
    which they return. The output buffer is reused: copy it if you need it after the next call.
    """

    spec: ClassVar[ModelSpec]

    def __init__(self) -> None:
        self.out = np.zeros(self.spec.n_out, dtype=np.float32)
        self._x = np.zeros(self.spec.n_in, dtype=np.float32)

    def _load(self, x: np.ndarray) -> np.ndarray:
        """Copy ``x`` into the private (n_in,) float32 buffer, clipped and NaN-free; return it."""
        if x.shape != (self.spec.n_in,):
            raise ModelError(
                f"{self.spec.title} fallback: input shape {x.shape}, expected ({self.spec.n_in},)"
            )
        buf = self._x
        np.clip(x, -_INPUT_LIMIT, _INPUT_LIMIT, out=buf, casting="unsafe")
        if math.isnan(float(np.add.reduce(buf))):  # rare path: allocates masks, only on NaN input
            np.nan_to_num(buf, copy=False, nan=0.0)
        return buf

    def __call__(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError


# --- EmotionRecognizer ----------------------------------------------------------------------

_E_IN = {name: sl for name, sl in specs.EMOTION.inputs}
_D = {name: _E_IN["descriptors"].start + i for name, i in Desc.INDEX.items()}
_CHROMA_LONG = _E_IN["chroma_long"].start
_KEY_CORR = _E_IN["key_corr"].start


class EmotionFallback(Fallback):
    """EmotionRecognizer (128 -> 64) from the cues music psychology agrees on.

    - valence: mode (major + / minor -), read three ways relative to the tonic because mode only
      exists relative to it: the tonic-major vs tonic-minor key correlation (input ``key_corr``
      index 0 vs 12), the ``mode_margin`` descriptor, and the major vs minor third and sixth in the
      long-term tonic-rotated chroma; trusted in proportion to key clarity. Brightness and a clear
      tonality add a little, as does a fast tempo.
    - arousal: onset rate (note density), tempo (weighted by pulse clarity), loudness (short and
      long term), spectral flux and brightness; the share of silent hops pulls it toward calm.
    - dominance: loudness and low-frequency weight (big, heavy sound = in control), a little mode.
    - intensity: distance from the neutral centre of the VA plane and the dynamic range.

    ``families`` come from :func:`thesaurus.family_memberships`; ``tonal``, ``key_corr`` and
    ``descriptors`` pass through what was heard, so downstream models see the same evidence a
    trained net would forward.
    """

    spec = specs.EMOTION

    def __init__(self) -> None:
        super().__init__()
        self._scratch = thesaurus.membership_scratch()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = self._load(x)
        out = self.out
        f = x.item  # scalar reads without numpy scalar objects
        level = 0.4 * f(_D["level_db"]) + 0.6 * f(_D["level_db_long"])  # dBFS
        loud = _clip((level + 30.0) / 20.0, -1.0, 1.0)  # -50 dBFS -> -1, -10 dBFS -> +1
        rate = _clip((f(_D["onset_rate"]) - 3.0) / 3.0, -1.0, 1.0)  # 3 notes/s is moderate
        tempo_bpm = f(_D["tempo_bpm"])
        clarity = _clip(f(_D["pulse_clarity"]), 0.0, 1.0)
        tempo = _clip((tempo_bpm - 100.0) / 50.0, -1.0, 1.0) * (0.4 + 0.6 * clarity) if tempo_bpm > 0.0 else 0.0
        flux = 2.0 * _clip(f(_D["onset_strength"]), 0.0, 1.0) - 1.0
        bright = 0.7 * _clip((f(_D["centroid_hz"]) - 1500.0) / 1500.0, -1.0, 1.0) + 0.3 * _clip(
            (f(_D["high_ratio"]) - 0.15) / 0.15, -1.0, 1.0
        )
        heavy = _clip((f(_D["low_ratio"]) - 0.3) / 0.3, -1.0, 1.0)
        key_clarity = _clip(f(_D["key_clarity"]), -1.0, 1.0)
        silence = _clip(f(_D["silence"]), 0.0, 1.0)
        spread = _clip(f(_D["level_range_db"]) / 20.0, 0.0, 1.0)

        # mode, relative to the tonic
        tonic_margin = _clip((f(_KEY_CORR) - f(_KEY_CORR + 12)) / 0.4, -1.0, 1.0)
        margin = _clip(f(_D["mode_margin"]) / 0.3, -1.0, 1.0)
        major_deg = max(f(_CHROMA_LONG + 4), 0.0) + 0.5 * max(f(_CHROMA_LONG + 9), 0.0)
        minor_deg = max(f(_CHROMA_LONG + 3), 0.0) + 0.5 * max(f(_CHROMA_LONG + 8), 0.0)
        thirds = (major_deg - minor_deg) / (major_deg + minor_deg + 1e-3)
        mode = 0.4 * tonic_margin + 0.2 * margin + 0.4 * thirds  # -1 minor .. +1 major
        trust = _clip(key_clarity / 0.6, 0.0, 1.0)  # an atonal blur says nothing about mode
        tonal = _clip((key_clarity - 0.5) / 0.3, -1.0, 1.0)

        valence = 0.6 * trust * mode + 0.15 * bright + 0.1 * tonal + 0.1 * tempo + 0.05 * loud
        arousal = 0.3 * rate + 0.2 * tempo + 0.25 * loud + 0.1 * flux + 0.15 * bright
        arousal = (1.0 - silence) * arousal - 0.8 * silence
        dominance = 0.45 * loud + 0.3 * heavy + 0.1 * mode * trust + 0.15 * arousal - 0.3 * silence
        valence = _clip(valence, -1.0, 1.0)
        arousal = _clip(arousal, -1.0, 1.0)
        dominance = _clip(dominance, -1.0, 1.0)
        away = min(1.0, math.hypot(valence, arousal))
        intensity = _clip((0.75 * away + 0.25 * spread) * (1.0 - 0.5 * silence), 0.0, 1.0)

        out[specs.Emo.VALENCE] = valence
        out[specs.Emo.AROUSAL] = arousal
        out[specs.Emo.DOMINANCE] = dominance
        out[specs.Emo.INTENSITY] = intensity
        thesaurus.family_memberships(
            valence, arousal, out[specs.Emo.FAMILIES], dominance=dominance, scratch=self._scratch
        )
        out[specs.Emo.TONAL] = x[_E_IN["chroma_long"]]
        out[specs.Emo.KEY_CORR] = x[_E_IN["key_corr"]]
        out[specs.Emo.DESCRIPTORS] = x[_E_IN["descriptors"]]
        return out


# --- shared pitch-class tables --------------------------------------------------------------

_OUT_OF_KEY = 0.005
# Weight of each scale degree relative to the tonic: tonic, fifth and third slightly favoured
# (stable degrees), out-of-key degrees near zero.
_MAJOR_DEGREES = np.full(12, _OUT_OF_KEY, dtype=np.float32)
_MAJOR_DEGREES[[0, 2, 4, 5, 7, 9, 11]] = (1.25, 1.0, 1.1, 1.0, 1.15, 1.0, 0.9)
# Natural minor, with the raised 7th (harmonic minor's leading tone) allowed lightly and the
# raised 6th (melodic minor) barely.
_MINOR_DEGREES = np.full(12, _OUT_OF_KEY, dtype=np.float32)
_MINOR_DEGREES[[0, 2, 3, 5, 7, 8, 10, 11, 9]] = (1.25, 1.0, 1.1, 1.0, 1.15, 0.95, 0.8, 0.35, 0.03)
# _ROTATE[t] maps a tonic-relative table to absolute pitch classes: abs = rel[_ROTATE[t]]
_ROTATE = np.array([[(pc - t) % 12 for pc in range(12)] for t in range(12)], dtype=np.intp)


def _chord_masks() -> np.ndarray:
    """(61, 12) float32: 1 on the pitch classes of each chord class, all zero for N.C."""
    masks = np.zeros((specs.N_CHORD_CLASSES, 12), dtype=np.float32)
    for index in range(specs.N_CHORDS):
        root, quality = specs.chord_of_index(index)  # type: ignore[misc]
        for interval in specs.CHORD_INTERVALS[quality]:
            masks[index, (root + interval) % 12] = 1.0
    return masks


_CHORD_MASKS = _chord_masks()


def _argmax_if(x: np.ndarray, sl: slice, threshold: float = 0.5) -> int | None:
    """Index of the largest value in a one-hot range, or None when nothing in it is set."""
    part = x[sl]
    k = int(part.argmax())
    return k if part.item(k) > threshold else None


# --- MelodyTransformer ----------------------------------------------------------------------

_M_IN = {name: sl for name, sl in specs.MELODY.inputs}
_LOW_NOTE, _HIGH_NOTE = 36, 96  # C2..C7: outside this a melody note is penalised hard
_REGISTER_CENTRE = 72.0  # C5
_REGISTER_SIGMA = 8.0  # semitones
_CHORD_TONE_BOOST = 1.6  # off the downbeat
_DOWNBEAT_CHORD_BOOST = 0.9  # added on downbeats: strong beats land on chord tones
_UNISON = 0.5  # repeated notes: possible, less likely than a step
_LEAP = 5  # semitones: a fourth or more is a leap that wants resolving
_RESOLVE = 2.0  # step back against a leap
_CONTINUE = 0.6  # keep going in the leap's direction


class MelodyFallback(Fallback):
    """MelodyTransformer (64 -> 128): a next-note distribution from key, chord and voice leading.

    ``p(note) ~ degree(pc) * chord(pc) * heard(pc) * register(note) * motion(note)``, where

    - ``degree``: the key's scale (tonic + mode; minor is natural minor with a light raised 7th),
      out-of-key notes near zero;
    - ``chord``: chord tones boosted (x1.6, x2.5 on downbeats); a chord tone outside the key
      (the raised 3rd of V in minor) is lifted to a usable weight;
    - ``heard``: up to x1.3 for pitch classes the player is sounding (a mild nod to the input);
    - ``register``: Gaussian around C5 (MIDI 72), moved up by valence (+4) and arousal (+5);
    - ``motion``: Gaussian over the interval from the previous note (sigma 2.2 semitones, wider
      when aroused), repeated notes halved, and after a leap of a fourth or more a step back in the
      opposite direction doubled and further motion in the same direction damped (gap fill).

    With no previous note the register is narrower and the tonic and chord root are favoured, so
    a phrase starts on a stable note. The result is normalised to sum to 1.
    """

    spec = specs.MELODY

    def __init__(self) -> None:
        super().__init__()
        self._notes = np.arange(128, dtype=np.float32)
        self._pc_of_note = np.arange(128, dtype=np.intp) % 12
        outside = (self._notes < _LOW_NOTE) | (self._notes > _HIGH_NOTE)
        self._range_penalty = np.where(outside, -30.0, 0.0).astype(np.float32)
        self._rel = np.zeros(12, dtype=np.float32)  # degree weights, tonic-relative
        self._pcw = np.zeros(12, dtype=np.float32)  # pitch-class weights, absolute
        self._tmp12 = np.zeros(12, dtype=np.float32)
        self._expo = np.zeros(128, dtype=np.float32)  # log-weights of register and motion
        self._tmp128 = np.zeros(128, dtype=np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = self._load(x)
        out, pcw, tmp12, expo, tmp = self.out, self._pcw, self._tmp12, self._expo, self._tmp128
        f = x.item
        vadi = _M_IN["vadi"].start
        valence = _clip(f(vadi), -1.0, 1.0)
        arousal = _clip(f(vadi + 1), -1.0, 1.0)
        intensity = _clip(f(vadi + 3), 0.0, 1.0)

        # scale degrees, blended by the (0/1) mode input, rotated to the tonic
        tonic = _argmax_if(x, _M_IN["tonic"])
        tonic = 0 if tonic is None else tonic
        major = _clip(f(_M_IN["mode"].start), 0.0, 1.0)
        np.multiply(_MAJOR_DEGREES, major, out=self._rel)
        np.multiply(_MINOR_DEGREES, 1.0 - major, out=tmp12)
        np.add(self._rel, tmp12, out=self._rel)
        np.take(self._rel, _ROTATE[tonic], out=pcw)

        # chord tones
        root = _argmax_if(x, _M_IN["chord_root"])
        quality = _argmax_if(x, _M_IN["chord_quality"])
        if root is not None:
            mask = _CHORD_MASKS[specs.chord_index(root, specs.CHORD_QUALITIES[quality or 0])]
            downbeat = _clip(f(_M_IN["downbeat"].start), 0.0, 1.0)
            np.multiply(mask, 0.6, out=tmp12)
            np.maximum(pcw, tmp12, out=pcw)  # an out-of-key chord tone becomes usable
            np.multiply(mask, _CHORD_TONE_BOOST - 1.0 + _DOWNBEAT_CHORD_BOOST * downbeat, out=tmp12)
            tmp12 += 1.0
            pcw *= tmp12

        # what the player sounds, a mild boost
        np.clip(x[_M_IN["heard_chroma"]], 0.0, 1.0, out=tmp12)
        tmp12 *= 0.3
        tmp12 += 1.0
        pcw *= tmp12

        # register
        centre = _clip(_REGISTER_CENTRE + 4.0 * valence + 5.0 * arousal, _LOW_NOTE + 6.0, _HIGH_NOTE - 6.0)
        has_prev = _argmax_if(x, _M_IN["prev_pc"]) is not None
        sigma = _REGISTER_SIGMA if has_prev else 5.0
        np.subtract(self._notes, centre, out=expo)
        expo *= 1.0 / sigma
        np.square(expo, out=expo)
        expo *= -0.5
        expo += self._range_penalty

        if has_prev:
            prev = int(round(_clip(f(_M_IN["prev_pitch"].start), 0.0, 1.0) * 127.0))
            while prev < _LOW_NOTE:  # fold an out-of-register previous note back in by octaves
                prev += 12
            while prev > _HIGH_NOTE:
                prev -= 12
            step_sigma = 2.2 + 1.3 * max(arousal, 0.0) + 0.5 * intensity
            np.subtract(self._notes, float(prev), out=tmp)
            tmp *= 1.0 / step_sigma
            np.square(tmp, out=tmp)
            tmp *= -0.5
            expo += tmp
            expo[prev] += math.log(_UNISON)
            last = _clip(f(_M_IN["prev_interval"].start), -1.0, 1.0) * 12.0
            before = _clip(f(_M_IN["prev_interval2"].start), -1.0, 1.0) * 12.0
            if abs(last) >= _LEAP:
                resolve = _RESOLVE * (1.5 if abs(before) >= _LEAP and before * last > 0 else 1.0)
                if last > 0:  # leapt up: step down, damp further rise
                    expo[max(prev - 2, 0) : prev] += math.log(resolve)
                    expo[prev + 1 :] += math.log(_CONTINUE)
                else:
                    expo[prev + 1 : prev + 3] += math.log(resolve)
                    expo[:prev] += math.log(_CONTINUE)
        else:  # start of a phrase: tonic and chord root
            pcw[tonic] *= 1.5
            if root is not None:
                pcw[root] *= 1.5

        expo -= expo.max()
        np.exp(expo, out=expo)
        np.take(pcw, self._pc_of_note, out=out)
        out *= expo
        out *= 1.0 / float(out.sum())
        return out


# --- HarmonyPredictor -----------------------------------------------------------------------

_H_IN = {name: sl for name, sl in specs.HARMONY.inputs}
_TEMPLATE_SHARPNESS = 8.0  # logits per unit of cosine match
_BASS_WEIGHT = 1.5  # logits when the bass sounds the root
_NC_SILENCE = 1.2  # N.C. logit (x sharpness) when nothing sounds
_NC_NOISE = 0.9  # N.C. logit (x sharpness) for a flat (noise-like) chroma

# Diatonic priors: (interval above the tonic, quality) -> weight. Everything else gets _RARE.
_RARE = 0.04
_MAJOR_PRIOR = {
    (0, "maj"): 1.0, (7, "maj"): 0.9, (5, "maj"): 0.85, (9, "min"): 0.7, (2, "min"): 0.6,
    (4, "min"): 0.4, (11, "dim"): 0.25,
    (7, "7"): 0.8, (2, "m7"): 0.45, (9, "m7"): 0.35, (4, "m7"): 0.25,
    # secondary dominants and common borrowings
    (2, "7"): 0.15, (4, "7"): 0.15, (9, "7"): 0.12, (0, "7"): 0.12,
    (5, "min"): 0.12, (10, "maj"): 0.12, (8, "maj"): 0.08,
}  # fmt: skip
_MINOR_PRIOR = {
    (0, "min"): 1.0, (5, "min"): 0.8, (7, "maj"): 0.7, (7, "7"): 0.75, (8, "maj"): 0.7,
    (3, "maj"): 0.6, (10, "maj"): 0.6, (7, "min"): 0.4, (2, "dim"): 0.35, (11, "dim"): 0.3,
    (0, "m7"): 0.3, (5, "m7"): 0.3, (7, "m7"): 0.2, (10, "7"): 0.3,
    (5, "maj"): 0.12, (0, "maj"): 0.1, (1, "maj"): 0.06,
}  # fmt: skip


def _key_priors(table: Mapping[tuple[int, str], float]) -> np.ndarray:
    """(12 tonics, 61) chord prior for one mode; N.C. gets 1 (the chroma decides silence)."""
    prior = np.full((12, specs.N_CHORD_CLASSES), _RARE, dtype=np.float32)
    prior[:, specs.NO_CHORD] = 1.0
    for tonic in range(12):
        for (interval, quality), weight in table.items():
            prior[tonic, specs.chord_index(tonic + interval, quality)] = weight
    return prior


_PRIOR_MAJOR = _key_priors(_MAJOR_PRIOR)
_PRIOR_MINOR = _key_priors(_MINOR_PRIOR)


def _templates() -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm chord templates (60, 12) and bass weights (60, 12): root 1, other tones 0.3."""
    masks = _CHORD_MASKS[: specs.N_CHORDS]
    unit = masks / np.linalg.norm(masks, axis=1, keepdims=True)
    bass = 0.3 * masks
    for index in range(specs.N_CHORDS):
        root, _ = specs.chord_of_index(index)  # type: ignore[misc]
        bass[index, root] = 1.0
    return unit.astype(np.float32), bass.astype(np.float32)


_TEMPLATES, _BASS_TEMPLATES = _templates()
_NOW_WEIGHT = 0.65  # share of the ~0.25 s chroma in the heard chroma (the rest: the ~1 s one)

class HarmonyFallback(Fallback):
    """HarmonyPredictor (128 -> 64): the chord sounding now, by chord template x key prior.

    logit(chord) = 8 * cosine(heard chroma, template) + 1.5 * bass-on-root (0.3 other tones)
    + w * log(diatonic prior of the tonic/mode), where the heard chroma is 0.65 x the ~0.25 s
    chroma + 0.35 x the ~1 s one (now, steadied), the bass likewise, and ``w`` grows with key
    clarity (an unclear key says little about which chords are diatonic). N.C. wins when the
    chroma is silent (all zero) or flat (noise). The distribution is a softmax over the 61
    classes; outputs 61..63 are zero. What came before is the chord decoder's business.
    """

    spec = specs.HARMONY

    def __init__(self) -> None:
        super().__init__()
        self._chroma = np.zeros(12, dtype=np.float32)
        self._chroma_tmp = np.zeros(12, dtype=np.float32)
        self._bass = np.zeros(12, dtype=np.float32)
        self._logits = np.zeros(specs.N_CHORD_CLASSES, dtype=np.float32)
        self._tmp60 = np.zeros(specs.N_CHORDS, dtype=np.float32)
        self._prior = np.zeros(specs.N_CHORD_CLASSES, dtype=np.float32)
        self._prior_tmp = np.zeros(specs.N_CHORD_CLASSES, dtype=np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = self._load(x)
        out, chroma, bass, logits, tmp = self.out, self._chroma, self._bass, self._logits, self._tmp60
        f = x.item
        chords = logits[: specs.N_CHORDS]

        # template match of what sounds now
        np.multiply(x[_H_IN["chroma_short"]], _NOW_WEIGHT, out=chroma)
        np.multiply(x[_H_IN["chroma_window"]], 1.0 - _NOW_WEIGHT, out=self._chroma_tmp)
        chroma += self._chroma_tmp
        np.clip(chroma, 0.0, 1.0, out=chroma)
        peak = float(chroma.max())
        norm = float(np.linalg.norm(chroma))
        np.dot(_TEMPLATES, chroma, out=chords)
        chords *= _TEMPLATE_SHARPNESS / norm if norm > 1e-6 else 0.0
        np.multiply(x[_H_IN["bass_short"]], _NOW_WEIGHT, out=bass)
        np.multiply(x[_H_IN["bass_chroma"]], 1.0 - _NOW_WEIGHT, out=self._chroma_tmp)
        bass += self._chroma_tmp
        np.clip(bass, 0.0, 1.0, out=bass)
        bass_peak = float(bass.max())
        if bass_peak > 0.05:
            bass *= 1.0 / bass_peak
            np.dot(_BASS_TEMPLATES, bass, out=tmp)
            tmp *= _BASS_WEIGHT * min(1.0, peak * 2.0)
            chords += tmp
        flatness = float(chroma.mean()) / peak if peak > 1e-6 else 1.0
        logits[specs.NO_CHORD] = _TEMPLATE_SHARPNESS * (
            _NC_SILENCE * (1.0 - _clip(peak, 0.0, 1.0)) + _NC_NOISE * _clip(2.0 * flatness - 1.0, 0.0, 1.0)
        )

        # key prior, blended by the (0/1) mode input and weighted by key clarity
        tonic = _argmax_if(x, _H_IN["tonic"])
        if tonic is not None:
            major = _clip(f(_H_IN["mode"].start), 0.0, 1.0)
            np.multiply(_PRIOR_MAJOR[tonic], major, out=self._prior)
            np.multiply(_PRIOR_MINOR[tonic], 1.0 - major, out=self._prior_tmp)
            self._prior += self._prior_tmp
            np.maximum(self._prior, _RARE, out=self._prior)
            np.log(self._prior, out=self._prior)
            self._prior *= _clip(0.35 + 0.65 * f(_H_IN["key_clarity"].start), 0.2, 1.0)
            logits += self._prior

        probs = out[: specs.N_CHORD_CLASSES]
        np.subtract(logits, logits.max(), out=probs)
        np.exp(probs, out=probs)
        probs *= 1.0 / float(probs.sum())
        out[specs.N_CHORD_CLASSES :] = 0.0
        return out


# --- DynamicsEngine -------------------------------------------------------------------------

_DY_IN = {name: sl for name, sl in specs.DYNAMICS.inputs}
_DY_OUT = {name: sl.start for name, sl in specs.DYNAMICS.outputs}


class DynamicsFallback(Fallback):
    """DynamicsEngine (32 -> 16): how hard, how long and how expressive to play.

    - velocity: mostly the input level (-60 dBFS -> 0.15, -30 -> 0.53, 0 -> 0.9: soft playing gets
      soft notes), then arousal; never below 0.05 (velocity 0 would be a note-off);
    - spread and humanize: grow with arousal and intensity;
    - accent: the contrast of the heard accent pattern (strong-step vs weak-step strength and
      peak vs mean), plus a little intensity;
    - length: legato (near 1) when calm and sparse, detached when aroused and dense;
    - CC1 from intensity, CC11 from the long-term level, CC74 from the spectral centroid,
      CC64 (sustain) from low arousal and sparse playing;
    - voice balance: melody forward when aroused, bass with dominance, chords recede as it gets busy.
    Reserved outputs are zero.
    """

    spec = specs.DYNAMICS

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = self._load(x)
        out = self.out
        f = x.item
        vadi = _DY_IN["vadi"].start
        valence = _clip(f(vadi), -1.0, 1.0)
        arousal = _clip(f(vadi + 1), -1.0, 1.0)
        dominance = _clip(f(vadi + 2), -1.0, 1.0)
        intensity = _clip(f(vadi + 3), 0.0, 1.0)
        excited = 0.5 * (arousal + 1.0)  # 0..1
        lv = _DY_IN["level"].start
        level_db = (_clip(f(lv), 0.0, 1.0) - 1.0) * 100.0  # undo encode_dynamics: dBFS
        long_db = (_clip(f(lv + 1), 0.0, 1.0) - 1.0) * 100.0
        level = _clip(0.15 + 0.75 * ((0.6 * level_db + 0.4 * long_db) + 60.0) / 60.0, 0.0, 1.0)
        level_long = _clip(0.15 + 0.75 * (long_db + 60.0) / 60.0, 0.0, 1.0)
        rate = _clip(f(_DY_IN["onsets"].start) * 10.0 / 8.0, 0.0, 1.0)  # 8 onsets/s = dense
        centroid_hz = max(f(_DY_IN["spectrum"].start), 0.0) * 4000.0
        silence = _clip(f(_DY_IN["silence"].start), 0.0, 1.0)

        accents = x[_DY_IN["accents"]]
        peak = max(float(accents.max()), 0.0)
        if peak > 1e-3:
            mean = max(float(accents.mean()), 0.0)
            strong = max(float(accents[0::4].mean()), 0.0)
            weak = (16.0 * mean - 4.0 * strong) / 12.0
            contrast = 0.6 * _clip((strong - weak) / peak, 0.0, 1.0) + 0.4 * _clip(1.0 - mean / peak, 0.0, 1.0)
        else:
            contrast = 0.0

        velocity = 0.75 * level + 0.2 * excited + 0.05 * intensity
        velocity = _clip(velocity * (1.0 - 0.4 * silence), 0.05, 1.0)
        out[_DY_OUT["velocity"]] = velocity
        out[_DY_OUT["velocity_spread"]] = _clip(0.08 + 0.25 * excited + 0.2 * intensity, 0.0, 1.0)
        out[_DY_OUT["accent"]] = _clip(0.1 + 0.6 * contrast + 0.2 * intensity, 0.0, 1.0)
        out[_DY_OUT["length"]] = _clip(1.0 - 0.35 * excited - 0.35 * rate, 0.05, 1.0)
        out[_DY_OUT["cc1"]] = _clip(0.05 + 0.8 * intensity, 0.0, 1.0)
        out[_DY_OUT["cc11"]] = _clip(0.2 + 0.8 * level_long, 0.0, 1.0)
        out[_DY_OUT["cc74"]] = _clip(0.8 * (centroid_hz - 300.0) / 3500.0 + 0.2 * excited, 0.0, 1.0)
        out[_DY_OUT["cc64"]] = _clip((0.75 - 0.75 * arousal) * (1.0 - 0.6 * rate) + 0.1 * (valence < 0), 0.0, 1.0)
        vb = _DY_OUT["voice_balance"]
        out[vb] = _clip(0.6 + 0.2 * arousal + 0.1 * intensity, 0.0, 1.0)  # melody
        out[vb + 1] = _clip(0.55 - 0.15 * arousal - 0.1 * rate, 0.0, 1.0)  # chords
        out[vb + 2] = _clip(0.5 + 0.25 * dominance + 0.1 * arousal, 0.0, 1.0)  # bass
        out[_DY_OUT["humanize"]] = _clip(0.15 + 0.25 * excited + 0.25 * intensity, 0.0, 1.0)
        out[specs.DYNAMICS.output_slice("reserved")] = 0.0
        return out


# --- GroovePredictor ------------------------------------------------------------------------

_G_IN = {name: sl for name, sl in specs.GROOVE.inputs}
_G_OUT = {name: sl for name, sl in specs.GROOVE.outputs}
# Metric weight of each 16th step: downbeat > half bar > beats > 8ths > 16ths.
_METRIC = np.array(
    [1.0, 0.3, 0.55, 0.3, 0.8, 0.3, 0.55, 0.3, 0.9, 0.3, 0.55, 0.3, 0.8, 0.3, 0.55, 0.3], dtype=np.float32
)
_OFFBEAT = (np.arange(specs.N_STEPS) % 2 == 1).astype(np.float32)  # the odd 16ths
_ONBEAT = (np.arange(specs.N_STEPS) % 4 == 0).astype(np.float32)
_SWUNG = np.where(np.arange(specs.N_STEPS) % 4 == 2, 1.0, np.where(_OFFBEAT > 0, 0.5, 0.0)).astype(np.float32)


class GrooveFallback(Fallback):
    """GroovePredictor (64 -> 32): follow the heard rhythm, fill in from a metric template.

    hit_prob = w * (heard pattern, normalised) + (1 - w) * template, with w up to 0.75 as the heard
    bars get stronger (``heard_bar`` weighted 0.65, ``heard_prev_bar`` 0.35), then a 10% pull toward
    what the box played last bar (continuity). The template is a sigmoid over the metric weight of
    each step whose threshold falls as density rises (arousal, and onsets per 16th at the tempo):
    calm and sparse = downbeats and beats, busy = 8ths and then 16ths. The heard syncopation moves
    template weight from beats to off-beat 16ths.

    micro_timing: a positive ``swing`` input delays the off-beat 8ths by itself and the odd 16ths by
    half of it (negative values, straight playing, leave them on the grid); low arousal lays
    everything back a little (up to +0.06), high arousal pushes slightly ahead (up to -0.03).
    """

    spec = specs.GROOVE

    def __init__(self) -> None:
        super().__init__()
        self._tpl = np.zeros(specs.N_STEPS, dtype=np.float32)
        self._heard = np.zeros(specs.N_STEPS, dtype=np.float32)
        self._tmp = np.zeros(specs.N_STEPS, dtype=np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = self._load(x)
        out, tpl, heard, tmp = self.out, self._tpl, self._heard, self._tmp
        f = x.item
        arousal = _clip(f(_G_IN["vadi"].start + 1), -1.0, 1.0)
        tempo_bpm = _clip(f(_G_IN["tempo"].start) * 200.0, 0.0, 400.0)
        onset_rate = _clip(f(_G_IN["onset_rate"].start) * 10.0, 0.0, 40.0)
        syncopation = _clip(f(_G_IN["syncopation"].start), 0.0, 1.0)
        # encode.swing_estimate: 0 = straight 8ths, 0.5 = every off-beat a 16th late.
        swing = _clip(f(_G_IN["swing"].start), 0.0, 0.5)

        sixteenths_per_s = tempo_bpm / 15.0 if tempo_bpm > 30.0 else 8.0  # 120 bpm = 8 per s
        share = _clip(onset_rate / sixteenths_per_s, 0.0, 1.0)  # 0.25 = quarter notes
        density = _clip(0.4 + 0.3 * arousal + 0.8 * (share - 0.25), 0.0, 1.0)
        threshold = 0.85 - 0.65 * density
        # template: sigmoid(10 * (metric - threshold)), in place
        np.subtract(_METRIC, threshold, out=tpl)
        tpl *= -10.0
        np.exp(tpl, out=tpl)
        tpl += 1.0
        np.reciprocal(tpl, out=tpl)
        if syncopation > 0.0:  # carry the heard syncopation: off-beats up, beats down
            np.subtract(1.0, tpl, out=tmp)
            tmp *= _OFFBEAT
            tmp *= 0.6 * syncopation
            tpl += tmp
            np.multiply(_ONBEAT, -0.3 * syncopation, out=tmp)
            tmp += 1.0
            tpl *= tmp

        np.clip(x[_G_IN["heard_bar"]], 0.0, 1.0, out=heard)
        heard *= 0.65
        np.clip(x[_G_IN["heard_prev_bar"]], 0.0, 1.0, out=tmp)
        tmp *= 0.35
        heard += tmp
        peak = float(heard.max())
        hits = out[_G_OUT["hit_prob"]]
        if peak > 0.05:
            follow = 0.75 * _clip(2.0 * peak, 0.0, 1.0)
            heard *= follow / peak
            np.multiply(tpl, 1.0 - follow, out=hits)
            hits += heard
        else:
            hits[:] = tpl
        hits *= 0.9
        np.clip(x[_G_IN["prev_hits"]], 0.0, 1.0, out=tmp)
        tmp *= 0.1
        hits += tmp
        np.clip(hits, 0.0, 1.0, out=hits)

        timing = out[_G_OUT["micro_timing"]]
        np.multiply(_SWUNG, swing, out=timing)
        timing += 0.06 * max(-arousal, 0.0) - 0.03 * max(arousal, 0.0)
        np.clip(timing, -0.5, 0.5, out=timing)
        return out


FALLBACKS: Mapping[str, type[Fallback]] = MappingProxyType(
    {
        specs.EMOTION.name: EmotionFallback,
        specs.MELODY.name: MelodyFallback,
        specs.HARMONY.name: HarmonyFallback,
        specs.DYNAMICS.name: DynamicsFallback,
        specs.GROOVE.name: GrooveFallback,
    }
)
"""Fallback class per spec model name."""


def make_fallback(name: str) -> Fallback:
    """A new fallback for model ``name`` (a ``specs.MODEL_NAMES`` entry); ModelError if unknown."""
    try:
        cls = FALLBACKS[name]
    except KeyError as err:
        raise ModelError(f"no fallback for model {name!r}; models are {', '.join(specs.MODEL_NAMES)}") from err
    log.debug("creating heuristic fallback for %s", name)
    return cls()


def _check_table() -> None:
    assert set(FALLBACKS) == set(specs.MODEL_NAMES), sorted(FALLBACKS)
    for name, cls in FALLBACKS.items():
        assert cls.spec.name == name, name


_check_table()
