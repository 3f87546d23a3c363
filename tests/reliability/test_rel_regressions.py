"""Regressions the reliability work found, each pinned as the smallest case that showed it."""

from __future__ import annotations

from tests.generate.gen_harness import Settings, Voice
from tests.generate.test_generator_invariants import Scenario, play


def test_a_voice_switch_and_a_panic_at_one_instant_do_not_blip_another_voice() -> None:
    """A voice switched off at the instant another voice's note was due used to send that note-on
    (advancing to ``now``), and a panic at the same instant then cut it: a zero-length bass note.
    Found by the generator's property test; this is its shrunk example."""
    sc = Scenario(
        settings=Settings(seed=0, melody_density=0.0, temperature=1.0, melody=Voice(True, 1, 20, 20),
                          chord=Voice(True, 2, 20, 20), bass=Voice(True, 3, 20, 27)),
        n_steps=16, step_s=0.12, tonic=0, major=False, gates=[False, True, True, True],
        toggles=[(0.4765625, "melody", False)], panics=[0.4765625], output_seed=0, shared_channel=False,
    )
    r, _, _ = play(sc)
    notes, problems = r.paired()
    assert problems == []
    assert notes and all(n.end > n.start for n in notes), [n for n in notes if n.end <= n.start]
