"""Tempo sources: tap tempo, the MIDI clock follower, the player's beat (through the feature context)."""

from __future__ import annotations

import numpy as np
import pytest

from kelly_edge.tempo.midi_clock import CLOCK, CONTINUE, START, STOP, ClockFollower
from kelly_edge.engine.clock import TempoGrid
from kelly_edge.features.context import FeatureContext
from kelly_edge.tempo.source import ConfigTempo, MidiClockSource, PlayerSource, TapSource
from kelly_edge.tempo.tap import TapTempo


# --- tap ---------------------------------------------------------------------------------------

def test_steady_taps_give_their_tempo() -> None:
    tap = TapTempo()
    results = [tap.tap(i * 0.5) for i in range(4)]
    assert results[:2] == [None, None]
    assert results[3] == pytest.approx(120.0)


def test_one_fumbled_tap_does_not_drag_the_tempo() -> None:
    tap = TapTempo(max_taps=6)
    times = [0.0, 0.5, 1.0, 1.62, 2.0, 2.5]
    for t in times:
        bpm = tap.tap(t)
    assert bpm == pytest.approx(120.0, rel=0.02)


def test_a_pause_starts_a_new_sequence() -> None:
    tap = TapTempo(reset_s=2.0)
    for t in (0.0, 1.0, 2.0):
        tap.tap(t)
    assert tap.tap(10.0) is None  # new sequence, one tap so far
    tap.tap(10.4)
    assert tap.tap(10.8) == pytest.approx(150.0)


def test_tap_tempo_is_clamped_to_the_range() -> None:
    tap = TapTempo()
    for t in (0.0, 0.1, 0.2):
        bpm = tap.tap(t)
    assert bpm == 300.0


def test_tap_source_hands_the_tempo_to_the_next_poll_once() -> None:
    source = TapSource(clock=lambda: 0.0)
    for t in (0.0, 0.6, 1.2):
        source.tap(t)
    assert source.poll(0.0, None) == pytest.approx(100.0)
    assert source.poll(0.01, None) is None
    assert ConfigTempo().poll(0.0, None) is None


# --- MIDI clock in -----------------------------------------------------------------------------

def _ticks(bpm: float, n: int, *, t0: float = 0.0, jitter_s: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return t0 + np.arange(n) * 60.0 / (bpm * 24) + rng.uniform(0, jitter_s, n)


@pytest.mark.parametrize("bpm", [20.5, 97.0, 120.0, 174.0, 299.0])
def test_the_clock_tempo_survives_period_sized_jitter(bpm: float) -> None:
    follower = ClockFollower()
    for t in _ticks(bpm, 24 * 8, jitter_s=0.005):  # arrivals quantised by a 5 ms audio period
        follower.feed(float(t), CLOCK)
    assert follower.bpm == pytest.approx(bpm, rel=0.01)


def test_a_tempo_change_is_followed() -> None:
    follower = ClockFollower()
    first = _ticks(100.0, 24 * 4)
    for t in first:
        follower.feed(float(t), CLOCK)
    for t in _ticks(140.0, 24 * 4, t0=first[-1] + 60.0 / (140 * 24)):
        follower.feed(float(t), CLOCK)
    assert follower.bpm == pytest.approx(140.0, rel=0.005)


def test_lost_ticks_restart_the_fit_instead_of_halving_the_tempo() -> None:
    follower = ClockFollower()
    ticks = _ticks(120.0, 24 * 6)
    kept = np.delete(ticks, np.arange(30, ticks.size, 37))  # every 37th tick lost
    for t in kept:
        follower.feed(float(t), CLOCK)
    assert follower.bpm == pytest.approx(120.0, rel=0.01)


def test_out_of_range_clocks_are_ignored() -> None:
    follower = ClockFollower()
    for t in _ticks(400.0, 100):
        follower.feed(float(t), CLOCK)
    assert follower.bpm is None


def test_transport_messages_are_queued_in_order() -> None:
    follower = ClockFollower()
    source = MidiClockSource(follower)
    for status in (START, STOP, CONTINUE):
        follower.feed(0.0, status)
    assert [source.transport() for _ in range(4)] == ["start", "stop", "continue", None]
    assert follower.running


def test_the_clock_source_reports_each_new_tempo_once() -> None:
    follower = ClockFollower()
    source = MidiClockSource(follower)
    for t in _ticks(90.0, 48):
        follower.feed(float(t), CLOCK)
    assert source.poll(0.0, None) == pytest.approx(90.0, rel=0.005)
    assert source.poll(0.01, None) is None


# --- the player --------------------------------------------------------------------------------

def test_the_player_source_follows_a_played_tempo_through_the_feature_context() -> None:
    """End to end from audio: clicks at 112 BPM through the real FeatureContext pull a 100 BPM
    grid to the player's tempo and onto the clicks (the rates it returns, applied to the grid)."""
    rate = 22050
    ctx = FeatureContext(sample_rate=rate)
    grid = TempoGrid(100.0)
    source = PlayerSource(100.0)
    period = round(rate * 60.0 / 112.0)
    x = np.zeros(rate * 12, dtype=np.float32)
    click = (0.5 * np.exp(-np.arange(200) / 30.0) * np.sin(np.arange(200) * 0.9)).astype(np.float32)
    for start in range(0, x.size - click.size, period):
        x[start : start + click.size] = click
    h = ctx.hop_length
    for i in range(x.size // h):
        ctx.update(x[i * h : (i + 1) * h], step=0)
        t = (i + 1) * h / rate
        bpm = source.poll(t, ctx, grid)
        if bpm is not None:
            grid.set_bpm(bpm, t)
    assert source.tracked_bpm == pytest.approx(112.0, rel=0.02)
    # the grid's beats (every 4th step) fall on the clicks: its position at the last click is a whole beat
    last_click = (x.size - click.size) // period * period / rate
    beats = grid.position(last_click) / 4.0
    assert abs(beats - round(beats)) < 0.1
    assert source.poll(1.0, None) is None  # no features: nothing to follow
