"""Issue 13 item 4 through the whole engine on rendered piano (FluidSynth): the held key follows a
modulation within about 8 s, and the report's ``key`` is the key that held for most of the run,
not the last one nor the first one.

The music is written here: cadences (I IV V7 I, one chord a bar, a bass and a melody of chord
tones) in one key, then in another, rendered and run through the Engine as ``run --input`` does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kelly_edge.config.loader import parse_config
from kelly_edge.engine.engine import Engine
from kelly_edge.midi import messages as mm
from kelly_edge.midi.sinks import RecordingSink
from kelly_edge.midi.smf import build_smf
from kelly_edge.report import build_report
from tools.render import load_wav_mono, render_midi

pytestmark = pytest.mark.slow

BPM = 100.0
BAR_S = 4 * 60.0 / BPM
FOLLOW_WITHIN_S = 8.0
MAJOR_CADENCE = ((0, (0, 4, 7)), (5, (5, 9, 0)), (7, (7, 11, 2, 5)), (0, (0, 4, 7)))
MINOR_CADENCE = ((0, (0, 3, 7)), (5, (5, 8, 0)), (7, (7, 11, 2, 5)), (0, (0, 3, 7)))


def cadences(events: list, tonic: int, major: bool, t0: float, bars: int) -> float:
    """``bars`` bars of the key's cadence from ``t0`` into ``events``; returns the end time."""
    beat = 60.0 / BPM
    plan = MAJOR_CADENCE if major else MINOR_CADENCE
    for b in range(bars):
        root, pcs = plan[b % len(plan)]
        bar_t = t0 + b * BAR_S
        bass = 36 + (tonic + root) % 12
        events += [(bar_t, mm.note_on(0, bass, 90)), (bar_t + BAR_S - 0.02, mm.note_off(0, bass))]
        for q in range(4):
            t = bar_t + q * beat
            for pc in pcs:
                p = 60 + (tonic + pc) % 12
                events += [(t, mm.note_on(0, p, 64)), (t + 0.9 * beat, mm.note_off(0, p))]
            top = 72 + (tonic + pcs[q % len(pcs)]) % 12
            events += [(t, mm.note_on(0, top, 80)), (t + 0.9 * beat, mm.note_off(0, top))]
    return t0 + bars * BAR_S


def run(tmp: Path, keys: list[tuple[int, bool, int]]) -> tuple[list[tuple[float, str]], dict, list[float]]:
    """Render the key plan ``[(tonic, major, bars)]`` and run the engine over it: the held key per
    hop ``[(t, name)]``, the run report, and the times the key plan changes."""
    events: list = [(0.0, mm.program_change(0, 0))]
    t, changes = 0.0, []
    for tonic, major, bars in keys:
        changes.append(t)
        t = cadences(events, tonic, major, t, bars)
    mid, wav = tmp / "keys.mid", tmp / "keys.wav"
    mid.write_bytes(build_smf(events, initial_bpm=60.0))
    render_midi(mid, wav, sample_rate=22050)
    x, sr = load_wav_mono(wav)
    engine = Engine(parse_config(f"tempo: {{bpm: {BPM}, source: config}}"), RecordingSink(), sample_rate=sr)
    h = engine.hop_length
    trace = []
    for i in range(x.size // h):
        engine.process_hop(x[i * h : (i + 1) * h])
        trace.append((engine.time_s, engine.ctx.key_name))
    engine.close()
    return trace, build_report(engine, source={"path": str(wav)}, wall_s=1.0), changes


def followed_after(trace: list[tuple[float, str]], t_change: float, key: str) -> float:
    """Seconds after ``t_change`` until the held key is ``key`` and stays so to the end."""
    after = [(t, k) for t, k in trace if t >= t_change]
    last_other = max((t for t, k in after if k != key), default=t_change)
    return last_other - t_change


CLOSE_KEYS_GAP = (
    "issue 13 item 4, open: the key tracker resists major/minor flips, and with them a modulation to "
    "a close key is followed late or not at all (measured on these cadences: relative major 9.9 s, "
    "parallel minor 20 s, the dominant and the minor dominant not within the 14 s played)"
)


@pytest.mark.parametrize(("first", "second", "names"), [
    ((0, True), (9, True), ("C major", "A major")),  # three sharps away (measured 2.4 s)
    ((0, True), (3, True), ("C major", "Eb major")),  # three flats away (measured 6.6 s)
    pytest.param((2, False), (5, True), ("D minor", "F major"), marks=pytest.mark.xfail(strict=True, reason=CLOSE_KEYS_GAP)),
    pytest.param((7, True), (7, False), ("G major", "G minor"), marks=pytest.mark.xfail(strict=True, reason=CLOSE_KEYS_GAP)),
    pytest.param((0, True), (7, True), ("C major", "G major"), marks=pytest.mark.xfail(strict=True, reason=CLOSE_KEYS_GAP)),
    pytest.param((9, False), (4, False), ("A minor", "E minor"), marks=pytest.mark.xfail(strict=True, reason=CLOSE_KEYS_GAP)),
])
def test_a_modulation_is_followed_within_8_s_and_the_report_keeps_the_longest_key(
    tmp_path: Path, first: tuple[int, bool], second: tuple[int, bool], names: tuple[str, str]
) -> None:
    """Strict xfail on the close keys: when the tracker learns them, these pass and must be unmarked."""
    trace, report, changes = run(tmp_path, [(*first, 12), (*second, 6)])  # ~29 s, then ~14 s
    assert report["key"] == names[0], report["key"]  # held longest, though not the last
    lag = followed_after(trace, changes[1], names[1])
    assert lag <= FOLLOW_WITHIN_S, f"{names[0]} -> {names[1]} followed after {lag:.1f} s"


def test_the_report_key_is_the_one_held_longest_not_the_first(tmp_path: Path) -> None:
    trace, report, _ = run(tmp_path, [(0, True, 4), (9, True, 12)])
    held = {k: sum(1 for _, q in trace if q == k) for _, k in trace}
    assert report["key"] == "A major" == max(held, key=held.__getitem__)
