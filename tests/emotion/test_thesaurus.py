"""The emotion thesaurus: table sanity, plausibility against the literature, lookups and blending."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kelly_edge.emotion import thesaurus
from kelly_edge.emotion.thesaurus import THESAURUS, EmotionNode
from kelly_edge.models import spec

unit = st.floats(-1.0, 1.0, allow_nan=False)


def test_families_are_the_specs() -> None:
    assert thesaurus.FAMILIES == spec.EMOTION_FAMILIES


def test_table_size_and_coverage() -> None:
    assert len(THESAURUS) >= 68
    for family in spec.EMOTION_FAMILIES:
        assert len(thesaurus.family_nodes(family)) >= 6, family
    assert {n.family for n in THESAURUS} == set(spec.EMOTION_FAMILIES)


def test_values_in_range_names_unique_lowercase() -> None:
    names = [n.name for n in THESAURUS]
    assert len(names) == len(set(names))
    for n in THESAURUS:
        assert n.name == n.name.lower().strip() and n.name
        assert -1.0 <= n.valence <= 1.0
        assert -1.0 <= n.arousal <= 1.0
        assert -1.0 <= n.dominance <= 1.0
        assert 0.0 <= n.intensity <= 1.0


def test_nodes_are_frozen() -> None:
    node = THESAURUS[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.valence = 0.0  # type: ignore[misc]


def test_coordinates_are_plausible() -> None:
    """Placements that the circumplex and the NRC VAD lexicon agree on."""
    grief = thesaurus.by_name("grief")
    assert grief.valence < -0.6 and -0.6 <= grief.arousal <= 0.2
    ecstasy = thesaurus.by_name("ecstasy")
    assert ecstasy.valence > 0.7 and ecstasy.arousal > 0.7
    rage = thesaurus.by_name("rage")
    assert rage.valence < -0.5 and rage.arousal > 0.8 and rage.dominance > 0.4
    terror = thesaurus.by_name("terror")
    assert terror.valence < -0.5 and terror.arousal > 0.7 and terror.dominance < -0.5
    serenity = thesaurus.by_name("serenity")
    assert serenity.valence > 0.3 and serenity.arousal < -0.3
    # anger and fear differ in dominance, not valence/arousal
    assert thesaurus.by_name("anger").dominance > 0.0 > thesaurus.by_name("fear").dominance


@pytest.mark.parametrize(
    ("mild", "basic", "intense"),
    [
        ("serenity", "joy", "ecstasy"),
        ("acceptance", "trust", "admiration"),
        ("apprehension", "fear", "terror"),
        ("distraction", "surprise", "amazement"),
        ("pensiveness", "sadness", "grief"),
        ("boredom", "disgust", "loathing"),
        ("annoyance", "anger", "rage"),
        ("interest", "anticipation", "vigilance"),
    ],
)
def test_plutchik_intensity_grades(mild: str, basic: str, intense: str) -> None:
    nodes = [thesaurus.by_name(n) for n in (mild, basic, intense)]
    assert len({n.family for n in nodes}) == 1
    assert nodes[0].intensity < nodes[1].intensity < nodes[2].intensity


def test_by_name_ignores_case_and_space() -> None:
    assert thesaurus.by_name("  Melancholy ") is thesaurus.by_name("melancholy")


def test_by_name_error_suggests_close_names() -> None:
    with pytest.raises(KeyError, match="melancholy"):
        thesaurus.by_name("melancoly")


def test_by_name_error_without_close_names_lists_families() -> None:
    with pytest.raises(KeyError, match="families"):
        thesaurus.by_name("qwxz")


def test_family_nodes_unknown_family() -> None:
    with pytest.raises(KeyError, match="sadness"):
        thesaurus.family_nodes("happy")


def test_nearest_returns_each_node_for_its_own_coordinates() -> None:
    for n in THESAURUS:
        assert thesaurus.nearest(n.valence, n.arousal, n.dominance, n.intensity) is n


def test_nearest_in_the_quadrants() -> None:
    excited_happy = thesaurus.nearest(0.9, 0.9)
    assert excited_happy.family == "joy" and excited_happy.arousal > 0.5
    assert thesaurus.nearest(-0.8, -0.5).family == "sadness"
    calm_happy = thesaurus.nearest(0.6, -0.7)
    assert calm_happy.family in ("joy", "trust") and calm_happy.arousal < -0.3


def test_nearest_uses_dominance() -> None:
    assert thesaurus.nearest(-0.8, 0.9, dominance=0.8).family == "anger"
    assert thesaurus.nearest(-0.8, 0.9, dominance=-0.8).family == "fear"


@settings(max_examples=200, deadline=None)
@given(v=st.floats(-3.0, 3.0), a=st.floats(-3.0, 3.0), d=st.none() | unit)
def test_memberships_are_a_distribution(v: float, a: float, d: float | None) -> None:
    out = np.full(8, -1.0, dtype=np.float32)
    got = thesaurus.family_memberships(v, a, out, dominance=d)
    assert got is out and out.dtype == np.float32
    assert np.all(np.isfinite(out)) and np.all(out >= 0.0)
    assert float(out.sum()) == pytest.approx(1.0, abs=1e-5)


def test_memberships_peak_in_the_right_family() -> None:
    out = np.zeros(8, dtype=np.float32)
    families = spec.EMOTION_FAMILIES
    thesaurus.family_memberships(0.9, 0.9, out)
    assert families[int(out.argmax())] == "joy"
    thesaurus.family_memberships(-0.8, -0.5, out)
    assert families[int(out.argmax())] == "sadness"
    assert out[families.index("sadness")] > 0.5
    thesaurus.family_memberships(-0.8, 0.8, out, dominance=0.8)
    anger_when_dominant = out[families.index("anger")]
    thesaurus.family_memberships(-0.8, 0.8, out, dominance=-0.8)
    assert families[int(out.argmax())] == "fear"
    assert out[families.index("anger")] < anger_when_dominant


def test_memberships_with_scratch_match_without() -> None:
    a = np.zeros(8, dtype=np.float32)
    b = np.zeros(8, dtype=np.float32)
    scratch = thesaurus.membership_scratch()
    for v, ar, d in [(0.2, -0.4, None), (-0.6, 0.7, 0.3), (0.0, 0.0, -1.0)]:
        thesaurus.family_memberships(v, ar, a, dominance=d)
        thesaurus.family_memberships(v, ar, b, dominance=d, scratch=scratch)
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_memberships_write_into_a_view() -> None:
    vec = np.zeros(20, dtype=np.float32)
    thesaurus.family_memberships(0.5, 0.5, vec[4:12])
    assert float(vec[4:12].sum()) == pytest.approx(1.0, abs=1e-5)
    assert not vec[:4].any() and not vec[12:].any()


def _vadi(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def _coords(node: EmotionNode) -> np.ndarray:
    return _vadi(node.valence, node.arousal, node.dominance, node.intensity)


def test_blend_intent_amount_zero_and_none_keep_what_was_heard() -> None:
    heard = _vadi(0.1, -0.2, 0.3, 0.4)
    for intent, amount in ((thesaurus.by_name("rage"), 0.0), (None, 1.0)):
        vadi = heard.copy()
        assert thesaurus.blend_intent(vadi, intent, amount) is vadi
        np.testing.assert_array_equal(vadi, heard)


def test_blend_intent_amount_one_replaces() -> None:
    grief = thesaurus.by_name("grief")
    vadi = _vadi(0.9, 0.9, 0.9, 0.1)
    thesaurus.blend_intent(vadi, grief, 1.0)
    np.testing.assert_allclose(vadi, _coords(grief), atol=1e-6)


def test_blend_intent_half_is_midway_and_amount_is_clipped() -> None:
    calm = thesaurus.by_name("calm")
    heard = _vadi(-0.5, 0.5, 0.0, 1.0)
    vadi = heard.copy()
    thesaurus.blend_intent(vadi, calm, 0.5)
    np.testing.assert_allclose(vadi, (heard + _coords(calm)) / 2, atol=1e-6)
    over = heard.copy()
    thesaurus.blend_intent(over, calm, 3.0)
    np.testing.assert_allclose(over, _coords(calm), atol=1e-6)
    under = heard.copy()
    thesaurus.blend_intent(under, calm, -1.0)
    np.testing.assert_array_equal(under, heard)
