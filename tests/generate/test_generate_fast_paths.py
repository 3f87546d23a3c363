"""The planning fast paths (plan_step runs inside the audio hop) against the plain formulations.

Each fast path claims to give exactly what the straightforward code gave: the chord decision
without the allowed-chord mask, the tabled voicing search, the generator's voicing memo, its
batched random draws, and the NaN/inf handling of model outputs. These tests hold them to it on
many cases, with the plain formulation written out here as the reference.
"""

from __future__ import annotations

import numpy as np
import pytest

from kelly_edge.generate import theory
from kelly_edge.generate.phrasing import PhrasePlanner
from kelly_edge.midi import messages as mm
from kelly_edge.models import spec
from tests.generate.gen_harness import D_HUMANIZE, HIT, MICRO, Outputs, Settings, Voice, check_invariants, run

STEP_S = 0.125
N_DRAWS = 9  # uniform draws per planned step (generator._N_DRAWS)


# --- theory -------------------------------------------------------------------------------------
def reference_choose_chord(probs: np.ndarray, current: int, tonic: int, major: bool) -> int:
    """choose_chord as documented: masked argmax of the allowed chords, then hysteresis."""
    allowed = theory.allowed_chords(probs, tonic, major)
    best = int(np.argmax(np.where(allowed, probs[: spec.N_CHORD_CLASSES], -1.0)))
    if best == current:
        return current
    if not allowed[current]:
        return best
    return best if probs[best] >= probs[current] + theory.HYSTERESIS else current


def random_chord_probs(rng: np.random.Generator, kind: int) -> np.ndarray:
    if kind == 0:  # a softmax
        p = rng.dirichlet(np.full(spec.N_CHORD_CLASSES, 0.3))
    elif kind == 1:  # many ties, some exactly at STRONG_PREFERENCE
        p = np.round(rng.random(spec.N_CHORD_CLASSES) * 4) / 8
    elif kind == 2:  # out of the documented range: negatives, NaN, inf
        p = rng.normal(0, 1, 64)
        p[rng.integers(0, 64, 3)] = rng.choice([np.nan, np.inf, -np.inf, -1.0, -0.0], 3)
    elif kind == 3:  # all negative, around the mask's -1
        p = -rng.choice([0.5, 1.0, 1.5, 2.0] if rng.random() < 0.5 else [1.0, 2.0], spec.N_CHORD_CLASSES)
        p[rng.integers(0, spec.N_CHORD_CLASSES, 5)] = rng.choice([-1.0, -0.5, 0.0, 0.3, 0.5, -1.0, -1.5], 5)
    else:  # one weak or strong out-of-key favourite
        p = rng.dirichlet(np.full(spec.N_CHORD_CLASSES, 0.3)) * 0.3
        p[rng.integers(0, spec.N_CHORDS)] += rng.uniform(0.1, 0.7)
    return p.astype(np.float32 if rng.random() < 0.5 else np.float64)


def test_choose_chord_equals_the_masked_argmax_with_hysteresis() -> None:
    rng = np.random.default_rng(0)
    for trial in range(20_000):
        p = random_chord_probs(rng, trial % 5)
        current = int(rng.integers(0, spec.N_CHORD_CLASSES))
        tonic, major = int(rng.integers(0, 12)), bool(rng.integers(0, 2))
        expected = reference_choose_chord(p, current, tonic, major)
        assert theory.choose_chord(p, current=current, tonic=tonic, major=major) == expected, (p, current, tonic)


def reference_choose_voicing(pcs: tuple[int, ...], low: int, high: int, previous: tuple[int, ...]) -> tuple[int, ...]:
    """choose_voicing as documented: the least (movement, distance from the middle, voicing)."""
    centre = (low + high) / 2.0
    candidates = theory.close_voicings(pcs, low, high)
    if not candidates:
        notes = {theory.nearest_pitch((pc,), centre, low, high) for pc in pcs}
        return tuple(sorted(p for p in notes if p is not None))

    def key(v: tuple[int, ...]) -> tuple[int, float, tuple[int, ...]]:
        movement = reference_voice_leading_cost(previous, v) if previous else 0
        return movement, abs(sum(v) / len(v) - centre), v

    return min(candidates, key=key)


def reference_voice_leading_cost(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    if len(a) == len(b):
        return sum(abs(x - y) for x, y in zip(sorted(a), sorted(b)))
    return sum(min(abs(x - y) for y in b) for x in a) + sum(min(abs(x - y) for x in a) for y in b)


def test_voice_leading_cost_and_choose_voicing_equal_the_plain_search() -> None:
    rng = np.random.default_rng(1)
    for trial in range(5_000):
        a = tuple(int(x) for x in rng.integers(0, 128, rng.integers(1, 6)))
        b = tuple(int(x) for x in rng.integers(0, 128, rng.integers(1, 6)))
        assert theory.voice_leading_cost(a, b) == reference_voice_leading_cost(a, b)
        pcs = theory.chord_pitch_classes(int(rng.integers(0, spec.N_CHORDS)))
        low = int(rng.integers(0, 100))
        high = min(127, low + int(rng.choice([0, 3, 5, 7, 11, 12, 18, 24, 36])))
        other = theory.chord_pitch_classes(int(rng.integers(0, spec.N_CHORDS)))
        previous = (() if trial % 3 == 0 else theory.choose_voicing(other, low, high, ()) if trial % 3 == 1
                    else tuple(int(x) for x in rng.integers(low, high + 1, rng.integers(1, 6))))
        expected = reference_choose_voicing(pcs, low, high, previous)
        assert theory.choose_voicing(pcs, low, high, previous) == expected, (pcs, low, high, previous)
    with pytest.raises(ValueError):
        theory.voice_leading_cost((60,), ())


def test_a_voicing_is_its_own_chords_choice_from_itself() -> None:
    """What the generator's memo relies on to answer a restrike without searching."""
    for low, high in ((48, 72), (60, 65), (61, 62), (30, 100)):
        for chord in range(spec.N_CHORDS):
            pcs = theory.chord_pitch_classes(chord)
            for v in [theory.choose_voicing(pcs, low, high, ()), *theory.close_voicings(pcs, low, high)]:
                assert theory.choose_voicing(pcs, low, high, v) == v


# --- generator ----------------------------------------------------------------------------------
def chord_strikes(events: list[tuple[float, bytes]], channel: int) -> dict[int, tuple[int, ...]]:
    """Step index -> the chord voicing struck then (note-ons of the config channel)."""
    by_step: dict[int, list[int]] = {}
    for t, m in events:
        if mm.is_note_on(m) and m[0] & 0x0F == channel - 1:
            by_step.setdefault(round(t / STEP_S), []).append(m[1])
    return {k: tuple(sorted(v)) for k, v in sorted(by_step.items())}


@pytest.mark.parametrize("chord_range", [(48, 72), (55, 62)])
def test_every_struck_voicing_is_the_search_from_the_previous_one(chord_range: tuple[int, int]) -> None:
    """The voicing memo answers exactly what theory.choose_voicing would, chord change after change."""
    s = Settings(chord=Voice(True, 2, *chord_range))
    rng = np.random.default_rng(2)
    chords = [int(c) for c in rng.integers(0, spec.N_CHORDS, 64)]  # a new chord every other beat
    base = Outputs.default()

    def outputs(k: int) -> Outputs:
        h = np.zeros(64, np.float32)
        h[chords[k // 8]] = 0.9  # strong: taken even when out of key
        return base.copy(harmony=h)

    r = run(s, 8 * len(chords), outputs)
    check_invariants(r, s)
    strikes = chord_strikes(r.events, s.chord.channel)
    assert len(strikes) > len(chords) // 2
    previous: tuple[int, ...] = ()
    for k, voicing in strikes.items():
        pcs = theory.chord_pitch_classes(chords[k // 8])
        assert voicing == theory.choose_voicing(pcs, *chord_range, previous), (k, previous)
        previous = voicing


def test_melody_onsets_follow_the_seeds_draws_nine_per_planned_step() -> None:
    """Draws are taken in blocks, but step k still gets the k-th run of nine (gate closed or not).

    The phrases' breaths come from their own seeded stream (a PhrasePlanner asked about the same
    steps), so they do not move the draws either."""
    seed, n_steps = 12345, 300
    s = Settings(seed=seed, melody=Voice(True, 1, 48, 96))
    base = Outputs.default()
    base.groove[HIT] = 0.5
    base.groove[MICRO] = 0.0
    base.dynamics[D_HUMANIZE] = 0.0
    closed = range(100, 140)

    def outputs(k: int) -> Outputs:
        return base.copy(gate_open=k not in closed)

    r = run(s, n_steps, outputs)
    reference = np.random.default_rng(seed)
    phrases = PhrasePlanner(seed, 48, 96)
    expected = []
    for k in range(n_steps):
        u = reference.random(N_DRAWS)
        if k not in closed and phrases.target(k, busy=False) is not None and u[0] < 0.5:
            expected.append(k)
    assert len(expected) > 80
    onsets = sorted({round(t / STEP_S) for t, _, _ in r.ons(s.melody.channel)})
    assert onsets == expected


def test_non_finite_model_outputs_act_as_their_documented_values() -> None:
    """NaN/inf take the exact slow path; it must match the finite values they stand for."""
    rng = np.random.default_rng(3)
    s = Settings(seed=7)
    broken, substituted = [], []
    for k in range(128):
        out = Outputs.default(chord=int(rng.integers(0, spec.N_CHORDS)))
        out.melody[:] = rng.dirichlet(np.full(128, 0.5))
        out.harmony[: spec.N_CHORD_CLASSES] = rng.dirichlet(np.full(spec.N_CHORD_CLASSES, 0.3))
        out.dynamics[:] = rng.uniform(0, 1, 16)
        fixed = out.copy()
        if k % 3:  # beats too: the chord is decided on them
            for arr, fix, posinf in ((out.melody, fixed.melody, 0.0), (out.harmony, fixed.harmony, 0.0),
                                     (out.dynamics, fixed.dynamics, 1.0)):
                i = rng.integers(0, arr.size, 3)
                arr[i] = [np.nan, np.inf, -np.inf]
                fix[i] = [0.0, posinf, 0.0]
        broken.append(out)
        substituted.append(fixed)
    a = run(s, 128, lambda k: broken[k])
    b = run(s, 128, lambda k: substituted[k])
    check_invariants(a, s)
    assert a.events == b.events
    assert len(a.ons()) > 64
