"""Two things the beat tracker needs from its start and its periodicity, each of which failed before:

- in even eighths the beats and the off-beats score alike, so the first beat is placed whole beats
  after the first onset (music starts on a beat); the dev arpeggio pieces locked half a beat off;
- the tempo is read from the newest onsets: the feature context's autocorrelation judges each lag
  on the window's oldest hops and heard a tempo change seconds late.
"""

from __future__ import annotations

import numpy as np
import pytest

from kelly_edge.features.onset import TempoEstimator
from kelly_edge.tempo.periodicity import RecentAutocorrelation
from tests.tempo.test_grid_follows_player import clicks, offsets_s, run

HOP_S = 0.01


@pytest.mark.parametrize("bpm, start", [(96.0, 0.7), (110.0, 0.43), (124.0, 1.1), (138.0, 0.9)])
def test_even_eighths_lock_to_the_beats_of_the_first_onset_not_the_off_beats(bpm: float, start: float) -> None:
    beat = 60.0 / bpm
    eighths = start + np.arange(0, int(22.0 / beat) * 2) * beat / 2.0
    engine, _ = run(clicks(eighths, 22.0, accent_every=1))  # every click alike
    ref = start + np.arange(0, int(21.0 / beat)) * beat
    late = ref[(ref > 8.0) & (ref < 21.0)]
    off = np.abs(offsets_s(engine.played.beat_times(), late))
    assert np.median(off) < 0.05, f"box beats {np.median(off) * 1000:.0f} ms from the beats ({beat * 500:.0f} ms is the off-beat)"


def _signal(periods_hops: list[tuple[int, int]], seed: int = 0) -> np.ndarray:
    """Impulses every ``p`` hops for ``n`` hops, per (p, n), over a little noise."""
    out = []
    for p, n in periods_hops:
        x = np.zeros(n)
        x[::p] = 1.0
        out.append(x)
    x = np.concatenate(out)
    return x + 0.05 * np.random.default_rng(seed).random(x.size)


def test_the_autocorrelation_is_the_newest_hops_against_their_past() -> None:
    acf = RecentAutocorrelation(hop_s=HOP_S, window_s=4.0, min_bpm=12.5, max_bpm=220.0, update_s=0.25)
    x = np.random.default_rng(1).random(1237)
    last = -1
    for k, v in enumerate(x):
        if acf.update(float(v)):
            last = k
    assert last > 0
    n = 400
    seg = x[last + 1 - n : last + 1] - x[last + 1 - n : last + 1].mean()
    m = n - int(acf.lags[-1])
    for j in (0, 17, acf.lags.size - 1):
        lag = int(acf.lags[j])
        want = np.dot(seg[n - m :], seg[n - m - lag : n - lag]) * n / (m * np.dot(seg, seg))
        assert acf.acf[j] == pytest.approx(want, rel=1e-9, abs=1e-12)


def _switch_s(update, acf_of, lags: np.ndarray, x: np.ndarray, change: int, new_period: int) -> float:
    """Seconds after hop ``change`` until the strongest lag among 40..70 hops is ``new_period``."""
    inside = (lags >= 40) & (lags <= 70)
    for k, v in enumerate(x):
        if update(float(v)) and k > change and int(lags[inside][np.argmax(acf_of()[inside])]) == new_period:
            return (k - change) * HOP_S
    return float("inf")


def test_a_tempo_change_shows_in_the_newest_hops_seconds_before_the_oldest() -> None:
    x = _signal([(50, 800), (60, 800)])  # 120 BPM for 8 s, then 100 BPM
    recent = RecentAutocorrelation(hop_s=HOP_S, window_s=4.0, min_bpm=12.5, max_bpm=220.0, update_s=0.25)
    context = TempoEstimator(hop_s=HOP_S, window_s=4.0, min_bpm=12.5, max_bpm=220.0, update_s=0.25,
                             prior_octaves=8.0, min_clarity=0.0)
    new = _switch_s(recent.update, lambda: recent.acf, recent.lags, x, 800, 60)
    old = _switch_s(context.update, lambda: context.acf, context.lags, x, 800, 60)
    assert new <= 2.5, new
    assert old >= new + 1.0, (old, new)


@pytest.mark.parametrize("upbeat", [0.5, 0.45, 0.55])
def test_an_upbeat_before_the_first_beat_does_not_flip_the_bar(upbeat: float) -> None:
    """The bar starts on the first onset's beat until accents tell; a first onset between two beats
    (an upbeat, or an excerpt cut mid-bar) rounded to one beat and then the next as the first beats
    settled, and the grid slipped a beat back and forth seeking a bar line that kept moving."""
    from kelly_edge.tempo.beat import BeatTracker

    period = 50  # hops: 120 BPM
    x = np.zeros(2000)
    x[int(100 - upbeat * period)] = 1.0  # the upbeat
    x[100::period] = 1.0  # then even beats, all alike (no accent tells the bar)
    tracker = BeatTracker(hop_s=HOP_S, bpm=120.0)
    slots = []  # the beat index mod 4 that starts bars, at each prediction
    for v in x:
        if tracker.update(float(v)) and tracker.downbeat_slot >= 0:
            slots.append(tracker.downbeat_slot)
    assert len(slots) > 20
    assert sum(a != b for a, b in zip(slots, slots[1:])) == 0, slots[:20]
