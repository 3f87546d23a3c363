"""The emotion thesaurus: named emotions placed in valence/arousal/dominance/intensity space.

The original plugin (Kelly MIDI Companion) let the user name an *intent* ("melancholy",
"euphoria") and steered generation toward it. This module is that vocabulary: one table of named
nodes across Plutchik's eight families (``spec.EMOTION_FAMILIES``), each with

- ``valence``   -1..1  unpleasant .. pleasant
- ``arousal``   -1..1  calm .. excited (0..1 lexicon values mapped with ``2 * x - 1``)
- ``dominance`` -1..1  submissive / overwhelmed .. in control
- ``intensity``  0..1  Plutchik's grade within the family (serenity < joy < ecstasy)

The coordinates are hand-set, not copied from one source: they follow the ordering of the NRC VAD
lexicon (Mohammad 2018) and the placement of Russell's circumplex, with arousal pulled toward the
circumplex where the lexicon rates calm words as mid-arousal (the lexicon puts "contentment" at
0.61 arousal; the circumplex puts it clearly on the calm side, which is what a musician means).
Treat them as a plausible, documented map, not as measurements.

Everything here is immutable and computed at import; :func:`nearest` and
:func:`family_memberships` run on precomputed ``float32`` tables, and
:func:`family_memberships` / :func:`blend_intent` can run per hop without allocating when the
caller passes its own scratch buffer.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

import numpy as np

from kelly_edge.models import spec

FAMILIES: tuple[str, ...] = spec.EMOTION_FAMILIES
"""Plutchik's eight families, in the order of the emotion vector's ``families`` outputs."""


@dataclass(frozen=True)
class EmotionNode:
    """One named emotion: a point in VAD space plus its intensity grade within its family."""

    name: str  # lowercase, unique
    family: str  # one of FAMILIES
    valence: float  # -1..1
    arousal: float  # -1..1
    dominance: float  # -1..1
    intensity: float  # 0..1


def _n(name: str, family: str, v: float, a: float, d: float, i: float) -> EmotionNode:
    return EmotionNode(name, family, v, a, d, i)


# name, family, valence, arousal, dominance, intensity. Grouped by family, mild -> intense.
THESAURUS: tuple[EmotionNode, ...] = (
    # sadness: low valence, calm to mid arousal, low dominance
    _n("pensiveness", "sadness", -0.30, -0.45, -0.20, 0.25),
    _n("wistfulness", "sadness", -0.25, -0.35, -0.15, 0.30),
    _n("nostalgia", "sadness", -0.05, -0.30, -0.10, 0.35),
    _n("disappointment", "sadness", -0.60, -0.15, -0.35, 0.45),
    _n("melancholy", "sadness", -0.50, -0.50, -0.35, 0.50),
    _n("loneliness", "sadness", -0.65, -0.45, -0.50, 0.55),
    _n("sadness", "sadness", -0.70, -0.40, -0.45, 0.60),
    _n("sorrow", "sadness", -0.75, -0.35, -0.50, 0.70),
    _n("desolation", "sadness", -0.80, -0.55, -0.65, 0.75),
    _n("grief", "sadness", -0.85, -0.20, -0.60, 0.85),
    _n("despair", "sadness", -0.90, -0.10, -0.80, 0.95),
    # anger: low valence, high arousal, high dominance
    _n("annoyance", "anger", -0.40, 0.35, 0.20, 0.25),
    _n("irritation", "anger", -0.45, 0.45, 0.15, 0.35),
    _n("bitterness", "anger", -0.65, 0.10, 0.00, 0.50),
    _n("frustration", "anger", -0.55, 0.50, -0.10, 0.50),
    _n("resentment", "anger", -0.60, 0.30, 0.15, 0.55),
    _n("indignation", "anger", -0.50, 0.60, 0.45, 0.60),
    _n("anger", "anger", -0.70, 0.75, 0.45, 0.70),
    _n("hostility", "anger", -0.75, 0.70, 0.55, 0.75),
    _n("fury", "anger", -0.80, 0.90, 0.60, 0.95),
    _n("rage", "anger", -0.85, 0.95, 0.70, 1.00),
    # fear: low valence, high arousal, low dominance
    _n("shyness", "fear", -0.15, -0.10, -0.55, 0.20),
    _n("apprehension", "fear", -0.40, 0.35, -0.35, 0.25),
    _n("unease", "fear", -0.40, 0.20, -0.30, 0.30),
    _n("insecurity", "fear", -0.45, 0.10, -0.60, 0.40),
    _n("worry", "fear", -0.50, 0.30, -0.45, 0.40),
    _n("nervousness", "fear", -0.35, 0.55, -0.40, 0.45),
    _n("anxiety", "fear", -0.60, 0.65, -0.55, 0.60),
    _n("fear", "fear", -0.75, 0.70, -0.65, 0.75),
    _n("dread", "fear", -0.80, 0.45, -0.70, 0.80),
    _n("panic", "fear", -0.80, 0.95, -0.75, 0.95),
    _n("terror", "fear", -0.90, 0.90, -0.85, 1.00),
    # joy: high valence, calm (serenity) to very excited (ecstasy)
    _n("serenity", "joy", 0.65, -0.65, 0.25, 0.25),
    _n("contentment", "joy", 0.70, -0.40, 0.35, 0.35),
    _n("cheerfulness", "joy", 0.75, 0.35, 0.40, 0.50),
    _n("amusement", "joy", 0.80, 0.45, 0.40, 0.50),
    _n("playfulness", "joy", 0.75, 0.55, 0.35, 0.55),
    _n("happiness", "joy", 0.85, 0.30, 0.45, 0.60),
    _n("joy", "joy", 0.90, 0.50, 0.50, 0.65),
    _n("delight", "joy", 0.85, 0.55, 0.45, 0.70),
    _n("elation", "joy", 0.90, 0.75, 0.55, 0.85),
    _n("bliss", "joy", 0.95, 0.10, 0.45, 0.90),
    _n("euphoria", "joy", 0.90, 0.85, 0.55, 0.90),
    _n("ecstasy", "joy", 0.95, 0.90, 0.50, 1.00),
    # trust: positive valence, calm to moderate arousal
    _n("calm", "trust", 0.50, -0.75, 0.30, 0.20),
    _n("acceptance", "trust", 0.45, -0.35, 0.10, 0.25),
    _n("peacefulness", "trust", 0.65, -0.70, 0.30, 0.30),
    _n("reassurance", "trust", 0.55, -0.45, 0.25, 0.35),
    _n("trust", "trust", 0.60, -0.15, 0.25, 0.45),
    _n("tenderness", "trust", 0.70, -0.30, 0.05, 0.50),
    _n("gratitude", "trust", 0.80, -0.05, 0.20, 0.55),
    _n("affection", "trust", 0.80, 0.05, 0.25, 0.55),
    _n("admiration", "trust", 0.75, 0.25, 0.10, 0.70),
    _n("love", "trust", 0.90, 0.35, 0.35, 0.80),
    _n("devotion", "trust", 0.75, 0.15, 0.20, 0.90),
    # anticipation: mildly positive, mid to high arousal, forward-leaning
    _n("interest", "anticipation", 0.40, 0.15, 0.25, 0.25),
    _n("curiosity", "anticipation", 0.45, 0.35, 0.20, 0.35),
    _n("expectancy", "anticipation", 0.25, 0.35, 0.10, 0.40),
    _n("hope", "anticipation", 0.60, 0.10, 0.10, 0.45),
    _n("anticipation", "anticipation", 0.30, 0.45, 0.20, 0.50),
    _n("suspense", "anticipation", -0.05, 0.60, -0.20, 0.55),
    _n("eagerness", "anticipation", 0.60, 0.55, 0.35, 0.55),
    _n("yearning", "anticipation", 0.10, 0.20, -0.25, 0.60),
    _n("enthusiasm", "anticipation", 0.75, 0.70, 0.45, 0.65),
    _n("determination", "anticipation", 0.35, 0.55, 0.75, 0.70),
    _n("vigilance", "anticipation", 0.05, 0.75, 0.50, 0.90),
    # surprise: near-neutral valence, high arousal, low-ish dominance
    _n("distraction", "surprise", 0.00, 0.10, -0.10, 0.20),
    _n("confusion", "surprise", -0.30, 0.30, -0.40, 0.40),
    _n("bewilderment", "surprise", -0.25, 0.45, -0.45, 0.55),
    _n("wonder", "surprise", 0.60, 0.45, 0.00, 0.55),
    _n("startle", "surprise", -0.10, 0.85, -0.35, 0.55),
    _n("surprise", "surprise", 0.15, 0.75, -0.10, 0.60),
    _n("astonishment", "surprise", 0.25, 0.85, -0.15, 0.80),
    _n("amazement", "surprise", 0.55, 0.85, -0.05, 0.85),
    _n("awe", "surprise", 0.40, 0.55, -0.40, 0.85),
    _n("shock", "surprise", -0.35, 0.90, -0.45, 0.90),
    # disgust: low valence, calm (boredom) to mid-high arousal, mid-high dominance
    _n("boredom", "disgust", -0.40, -0.75, -0.10, 0.20),
    _n("dislike", "disgust", -0.45, 0.05, 0.15, 0.25),
    _n("distaste", "disgust", -0.50, 0.15, 0.20, 0.35),
    _n("aversion", "disgust", -0.60, 0.30, 0.05, 0.50),
    _n("contempt", "disgust", -0.60, 0.35, 0.60, 0.60),
    _n("scorn", "disgust", -0.65, 0.40, 0.55, 0.65),
    _n("disgust", "disgust", -0.75, 0.45, 0.30, 0.75),
    _n("revulsion", "disgust", -0.85, 0.55, 0.20, 0.90),
    _n("loathing", "disgust", -0.90, 0.60, 0.40, 1.00),
)
"""All named emotions, grouped by family, mildest first within each family."""

BY_NAME: Mapping[str, EmotionNode] = MappingProxyType({n.name: n for n in THESAURUS})
NAMES: tuple[str, ...] = tuple(n.name for n in THESAURUS)

# Weights of the distance in nearest(): valence and arousal carry the meaning a listener hears,
# dominance and intensity refine it.
_WEIGHTS = np.array([1.0, 1.0, 0.5, 0.5], dtype=np.float32)
_TABLE = np.array(
    [(n.valence, n.arousal, n.dominance, n.intensity) for n in THESAURUS], dtype=np.float32
)  # (n_nodes, 4) V, A, D, I
_TABLE.setflags(write=False)
N_NODES = len(THESAURUS)

# family_memberships(): a Gaussian kernel over every node, summed per family. Nodes are grouped
# by family so one reduceat sums each family's kernels; _FAMILY_STARTS are the group offsets.
_FAMILY_ORDER = np.array(
    sorted(range(N_NODES), key=lambda k: FAMILIES.index(THESAURUS[k].family)), dtype=np.intp
)
_VAD_BY_FAMILY = np.ascontiguousarray(_TABLE[_FAMILY_ORDER, :3].T)  # (3, n_nodes) V, A, D rows
_FAMILY_STARTS = np.searchsorted(
    [FAMILIES.index(THESAURUS[k].family) for k in _FAMILY_ORDER], np.arange(len(FAMILIES))
).astype(np.intp)
_KERNEL_SIGMA = 0.3  # in VA units: wide enough that memberships stay soft between families
_DOMINANCE_WEIGHT = 0.5  # dominance is what separates anger (in control) from fear (overwhelmed)


def _check_table() -> None:
    seen: set[str] = set()
    for n in THESAURUS:
        assert n.name == n.name.strip().lower() and n.name not in seen, n.name
        seen.add(n.name)
        assert n.family in FAMILIES, n
        assert all(-1.0 <= x <= 1.0 for x in (n.valence, n.arousal, n.dominance)), n
        assert 0.0 <= n.intensity <= 1.0, n
    assert all(len(family_nodes(f)) > 0 for f in FAMILIES)


def family_nodes(family: str) -> tuple[EmotionNode, ...]:
    """The nodes of one family, mildest first; ``KeyError`` for an unknown family."""
    if family not in FAMILIES:
        raise KeyError(f"unknown emotion family {family!r}; families are {', '.join(FAMILIES)}")
    return tuple(n for n in THESAURUS if n.family == family)


def by_name(name: str) -> EmotionNode:
    """The node called ``name`` (case and surrounding space ignored).

    Raises ``KeyError`` naming up to three close spellings, because names come from a config
    file or a footswitch preset typed by a person.
    """
    key = name.strip().lower()
    node = BY_NAME.get(key)
    if node is not None:
        return node
    close = difflib.get_close_matches(key, NAMES, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else f"families are {', '.join(FAMILIES)}"
    raise KeyError(f"unknown emotion {name!r}; {hint}")


def nearest(
    valence: float,
    arousal: float,
    dominance: float | None = None,
    intensity: float | None = None,
) -> EmotionNode:
    """The named emotion closest to a point, by weighted Euclidean distance.

    Only the coordinates given take part (valence and arousal always; dominance and intensity
    when not None), weighted 1, 1, 0.5, 0.5. Allocates a few ``(n_nodes,)`` temporaries: meant for
    labelling (display, reports), not for the per-hop path.
    """
    d2 = _WEIGHTS[0] * np.square(_TABLE[:, 0] - np.float32(valence))
    d2 += _WEIGHTS[1] * np.square(_TABLE[:, 1] - np.float32(arousal))
    if dominance is not None:
        d2 += _WEIGHTS[2] * np.square(_TABLE[:, 2] - np.float32(dominance))
    if intensity is not None:
        d2 += _WEIGHTS[3] * np.square(_TABLE[:, 3] - np.float32(intensity))
    return THESAURUS[int(np.argmin(d2))]


def family_memberships(
    valence: float,
    arousal: float,
    out: np.ndarray,
    *,
    dominance: float | None = None,
    scratch: np.ndarray | None = None,
) -> np.ndarray:
    """Soft membership of a point in each of the 8 families, written into ``out`` (8,) float32.

    A Gaussian kernel (sigma 0.3) around every node, summed per family and normalised to 1: a
    point among the sadness nodes is mostly "sadness", a point between joy and trust is shared.
    A kernel over nodes rather than one centroid per family keeps wide families (joy runs from
    serenity to ecstasy) from collapsing onto their mean. ``dominance`` (optional) separates anger
    from fear, which overlap in valence/arousal. ``scratch`` (``(2, N_NODES) float32``, optional,
    see :func:`membership_scratch`) makes the call allocation-free for the per-hop path.
    """
    valence, arousal = _bounded(valence), _bounded(arousal)
    if scratch is None:
        scratch = membership_scratch()
    acc, tmp = scratch[0], scratch[1]
    np.subtract(_VAD_BY_FAMILY[0], valence, out=acc)
    np.square(acc, out=acc)
    np.subtract(_VAD_BY_FAMILY[1], arousal, out=tmp)
    np.square(tmp, out=tmp)
    np.add(acc, tmp, out=acc)
    if dominance is not None:
        np.subtract(_VAD_BY_FAMILY[2], _bounded(dominance), out=tmp)
        np.square(tmp, out=tmp)
        np.multiply(tmp, _DOMINANCE_WEIGHT, out=tmp)
        np.add(acc, tmp, out=acc)
    np.multiply(acc, -0.5 / (_KERNEL_SIGMA * _KERNEL_SIGMA), out=acc)
    np.subtract(acc, acc.max(), out=acc)  # the nearest node gets exp(0): no underflow far away
    np.exp(acc, out=acc)
    np.add.reduceat(acc, _FAMILY_STARTS, out=out)
    np.divide(out, out.sum(), out=out)
    return out


def _bounded(value: float) -> float:
    """Clamp to -2..2 so absurd (or NaN) coordinates cannot overflow the kernel to inf - inf."""
    return min(2.0, max(-2.0, float(value)))


def membership_scratch() -> np.ndarray:
    """A scratch buffer for :func:`family_memberships`: ``(2, N_NODES) float32``."""
    return np.zeros((2, N_NODES), dtype=np.float32)


def blend_intent(vadi: np.ndarray, intent: EmotionNode | None, amount: float) -> np.ndarray:
    """Move a heard ``vadi`` (4,) float32 toward a named intent, in place, and return it.

    ``amount`` 0..1 (clipped): 0 keeps what was heard, 1 replaces it with the intent. This is how a
    user's chosen emotion steers generation while the playing still moves it. ``None``: unchanged.
    """
    if intent is None:
        return vadi
    t = min(1.0, max(0.0, float(amount)))
    if t == 0.0:  # also NaN, which the clip above turns into 0
        return vadi
    for k, target in enumerate((intent.valence, intent.arousal, intent.dominance, intent.intensity)):
        current = float(vadi[k])
        vadi[k] = current + t * (target - current)
    return vadi


_check_table()
