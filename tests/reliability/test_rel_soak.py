"""A short soak (two minutes of audio: the demo looped with variations, silences, extreme stretches,
tempo changes, model toggles and panics) through the full pipeline with the trained models: no
stuck notes, no MIDI problems, bounded memory, and the deadline misses reported. The hour-long run
is ``tools/soak.py --hours 1`` (see README, Reliability)."""

from __future__ import annotations

from kelly_edge.config.schema import default_config
from tools.soak import CountingSink, soak


def test_a_short_soak_holds() -> None:
    report = soak(2.0 / 60.0, seed=1, sample_every_s=10.0, warmup_s=30.0)
    assert report["audio_s"] >= 120.0
    assert report["stuck_notes"] == [] and report["midi_problems"] == 0, report["first_midi_problems"]
    assert report["notes"] > 50
    assert set(report["channels"]) <= {0, 1, 2}
    hops, misses, hop_ms = report["hops"], report["deadline_misses"], report["hop_ms"]
    assert hops >= 12000
    # a miss is a hop over the budget: there are misses exactly when the slowest hop was over it,
    # and no more of them than hops above each percentile that stayed under it (1 % histogram bins)
    budget_ms = default_config().scheduler.budget_ms
    assert (misses > 0) == (hop_ms["max"] > budget_ms), (misses, hop_ms)
    for q, key in ((50.0, "p50"), (99.0, "p99"), (99.9, "p999")):
        if hop_ms[key] < 0.98 * budget_ms:
            assert misses <= hops * (1.0 - q / 100.0) + 1, (key, misses, hop_ms)
    assert len(report["rss_samples"]) >= 10
    # no per-hop growth: 12 000 hops leaking even 1 kB each would add ~12 MiB (transient audio
    # buffers of the soak itself move single samples by a few MiB, hence the medians)
    rss = report["rss_mib"]
    assert rss["late_minus_early"] < 4.0 and rss["growth_after_warmup"] < 12.0, report["rss_samples"]


def test_the_counting_sink_catches_what_it_must() -> None:
    sink = CountingSink()
    sink.send(0.0, bytes((0x90, 60, 100)))
    sink.send(0.1, bytes((0x90, 60, 100)))  # again while sounding
    sink.send(0.05, bytes((0x80, 61, 0)))  # backwards, and nothing to release
    sink.send(0.2, bytes((0x90, 62, 100)))
    assert sink.problems == 3 and len(sink.first_problems) == 3
    assert sink.active.sounding() == [(0, 60), (0, 62)]
    sink.send(0.3, bytes((0x90, 62, 0)))  # velocity-0 note-on releases
    assert sink.active.sounding() == [(0, 60)]
