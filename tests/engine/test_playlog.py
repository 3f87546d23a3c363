"""The report's beats, downbeats, chords and tempo path: recorded per planned step, bounded."""

from __future__ import annotations

import numpy as np

from kelly_edge.config.loader import parse_config
from kelly_edge.engine.engine import Engine
from kelly_edge.engine.playlog import PlayLog
from kelly_edge.midi.sinks import RecordingSink
from kelly_edge.models import spec
from kelly_edge.report import build_report
from tests.engine.test_engine import demo_audio, fallbacks, run

AM, G7 = spec.chord_index(9, "min"), spec.chord_index(7, "7")


def test_beats_downbeats_chord_changes_and_tempo_changes_are_recorded() -> None:
    log = PlayLog()
    for k in range(32):
        bpm = 120.0 if k < 20 else 90.0
        chord = AM if k < 8 else G7
        log.step(k, k * 0.125, bpm, chord, playing=k < 28)
    f = log.report_fields()
    assert f["beats"] == [k * 0.125 for k in range(0, 28, 4)]  # none once the box is silent
    assert f["downbeats"] == [0.0, 2.0]
    assert f["chords"] == [{"t": 0.0, "chord": "Am"}, {"t": 1.0, "chord": "G7"}, {"t": 3.5, "chord": "N.C."}]
    assert f["tempo"] == [{"t": 0.0, "bpm": 120.0}, {"t": 2.5, "bpm": 90.0}]


def test_a_tempo_nudged_below_the_step_is_not_a_change_but_the_drift_it_adds_up_to_is() -> None:
    log = PlayLog()
    for k in range(5):
        log.step(k, k * 0.1, 120.0 + 0.02 * k, AM, playing=True)
    assert [round(bpm, 2) for _, bpm in log.tempo] == [120.0, 120.06]


def test_memory_is_bounded_and_the_dropped_entries_are_counted() -> None:
    log = PlayLog(max_events=10)
    for k in range(400):
        log.step(k, k * 0.1, 100.0 + k, AM if k % 8 < 4 else G7, playing=True)
    assert len(log.beats) == len(log.tempo) == len(log.chords) == 10
    assert log.beats[-1] == 396 * 0.1  # the newest are kept
    assert log.dropped > 0


def test_a_run_report_carries_the_box_beats_and_chords_on_its_grid() -> None:
    x, sr = demo_audio(8.0)
    engine = Engine(parse_config("tempo: {bpm: 120, source: config}"), RecordingSink(), sample_rate=sr, models=fallbacks())
    run(engine, x)
    report = build_report(engine, source={}, wall_s=1.0)
    beats = np.array(report["beats"])
    assert np.allclose(np.diff(beats), 0.5, atol=1e-3)  # 120 BPM
    assert beats[-1] <= 8.0 + 0.5
    assert set(report["downbeats"]) <= set(report["beats"]) and np.allclose(np.diff(report["downbeats"]), 2.0, atol=1e-3)
    assert report["tempo"][0] == {"t": 0.0, "bpm": 120.0}
    names = [c["chord"] for c in report["chords"]]
    assert names[0] == "N.C." and len(names) >= 2  # silent until the player is heard, then chords
    valid = {spec.chord_name(i) for i in range(spec.N_CHORD_CLASSES)}
    assert set(names) <= valid
    times = [c["t"] for c in report["chords"]]
    # chords change when the player's change is heard: at the hop it is recognised (harmony at its
    # default hop rate), not only on the box's 16th grid (0.125 s at 120 BPM)
    hops = np.asarray(times) / engine.ctx.hop_s
    assert times == sorted(times) and np.allclose(hops, np.round(hops), atol=0.02)  # times rounded to 0.1 ms
    steps = np.asarray(times[1:]) / 0.125
    assert not np.allclose(steps, np.round(steps), atol=1e-3)


def test_the_report_has_no_beats_where_the_box_is_silent() -> None:
    """Beats are the ones the box plays: none before the player is first heard, none once the
    gate has shut after the player stopped, though the grid runs on through both."""
    x, sr = demo_audio(6.0)
    lead, stop = 2.0, 6.0
    audio = np.concatenate([np.zeros(int(lead * sr), np.float32), x, np.zeros(int(6.0 * sr), np.float32)])
    config = parse_config("tempo: {bpm: 120, source: config}\naudio: {silence_tail_s: 1.5}")
    engine = Engine(config, RecordingSink(), sample_rate=sr, models=fallbacks())
    run(engine, audio)
    beats = np.array(build_report(engine, source={}, wall_s=1.0)["beats"])
    assert beats.size > 0 and np.allclose(np.diff(beats), 0.5, atol=1e-3)  # a steady 120 BPM while playing
    assert beats[0] >= lead - 0.5  # nothing before the first sound (the grid's beats from 0 were not played)
    end = lead + stop
    assert end <= beats[-1] + 0.5 <= end + 1.5 + 0.5 + 0.1  # the last beat within the tail, then silence
    assert engine.time_s > beats[-1] + 4.0  # the run went on for seconds after it
