"""Musical behaviour: chords, bass, melody key/range/timing/velocity, CCs and the gate."""

from __future__ import annotations

import numpy as np
import pytest

from kelly_edge.midi import messages as mm
from kelly_edge.models import spec
from tests.generate.gen_harness import (
    D_ACCENT,
    D_CC1,
    D_CC11,
    D_CC74,
    D_HUMANIZE,
    D_LENGTH,
    D_SPREAD,
    D_VELOCITY,
    HIT,
    MICRO,
    Outputs,
    Settings,
    Voice,
    check_invariants,
    in_key,
    phrase_steps,
    run,
)

STEP_S = 0.125  # 120 BPM


def onsets_near(t: float, grid: float = STEP_S) -> float:
    """Distance from ``t`` to the nearest 16th grid time."""
    return abs(t - round(t / grid) * grid)


def test_c_major_harmony_gives_c_major_chords_and_a_c_bass() -> None:
    s = Settings()
    r = run(s, 64, Outputs.default(chord=spec.chord_index(0, "maj")))
    check_invariants(r, s)
    chord_notes = r.notes(s.chord.channel)
    assert chord_notes
    assert {n.note % 12 for n in chord_notes} == {0, 4, 7}
    assert all(s.chord.low <= n.note <= s.chord.high for n in chord_notes)
    # one full triad struck at every bar start
    for bar in range(4):
        struck = {n.note % 12 for n in chord_notes if n.start == pytest.approx(bar * 16 * STEP_S)}
        assert struck == {0, 4, 7}
    bass = r.notes(s.bass.channel)
    assert bass and all(n.note % 12 == 0 and s.bass.low <= n.note <= s.bass.high for n in bass)
    # on beats 1 and 3 of every bar, a beat long
    starts = sorted(n.start for n in bass)
    assert starts == pytest.approx([b * 2.0 + beat * 4 * STEP_S for b in range(4) for beat in (0, 2)])
    assert all(n.end - n.start == pytest.approx(4 * STEP_S) for n in bass)
    assert r.gen.current_chord == spec.chord_index(0, "maj")


@pytest.mark.parametrize(("root", "quality"), [(9, "min"), (7, "7"), (2, "m7"), (11, "dim")])
def test_chord_voice_plays_the_chords_pitch_classes_and_bass_its_root(root: int, quality: str) -> None:
    s = Settings()
    r = run(s, 32, Outputs.default(chord=spec.chord_index(root, quality)))
    expected = {(root + i) % 12 for i in spec.CHORD_INTERVALS[quality]}
    assert {n.note % 12 for n in r.notes(s.chord.channel)} == expected
    assert {n.note % 12 for n in r.notes(s.bass.channel)} == {root}


def test_chord_changes_with_hysteresis_and_smooth_voice_leading() -> None:
    s = Settings()
    C, G, Am, F = (spec.chord_index(0, "maj"), spec.chord_index(7, "maj"), spec.chord_index(9, "min"),
                   spec.chord_index(5, "maj"))

    def harmony_for_bar(bar: int) -> np.ndarray:
        h = np.zeros(64, np.float32)
        if bar == 0:
            h[C] = 0.9
        elif bar == 1:  # G slightly ahead of C: not enough to switch
            h[C], h[G] = 0.45, 0.5
        elif bar == 2:
            h[G] = 0.8
        elif bar == 3:
            h[Am] = 0.8
        else:
            h[F] = 0.8
        return h

    base = Outputs.default()

    def outputs(k: int) -> Outputs:
        return base.copy(harmony=harmony_for_bar(k // 16))

    r = run(s, 80, outputs)
    check_invariants(r, s)
    chords = r.notes(s.chord.channel)
    voicings = {}
    for n in chords:
        voicings.setdefault(round(n.start / STEP_S), []).append(n.note)
    by_bar = {k // 16: tuple(sorted(v)) for k, v in sorted(voicings.items()) if k % 16 == 0}
    pcs = {bar: {p % 12 for p in v} for bar, v in by_bar.items()}
    assert pcs[0] == {0, 4, 7}
    assert pcs[1] == {0, 4, 7}, "hysteresis: G at 0.5 vs C at 0.45 must not replace C"
    assert pcs[2] == {7, 11, 2}
    assert pcs[3] == {9, 0, 4}
    assert pcs[4] == {5, 9, 0}
    # each change moves the voices a few semitones in total, not a leap of the whole chord
    for a, b in zip(list(by_bar.values()), list(by_bar.values())[1:]):
        assert sum(abs(x - y) for x, y in zip(a, b)) <= 5, (a, b)
    # the previous chord is released exactly when the next is struck
    for bar in (2, 3, 4):
        t = bar * 16 * STEP_S
        assert not [n for n in chords if n.start < t < n.end]


def test_out_of_key_chords_need_a_strong_preference() -> None:
    """A chord outside the key only when it is clearly heard (the chord decoder: > 2.5x the best in-key chord)."""
    s = Settings()
    Ab, C = spec.chord_index(8, "maj"), spec.chord_index(0, "maj")
    weak = np.zeros(64, np.float32)
    weak[Ab], weak[C] = 0.4, 0.3
    r = run(s, 16, Outputs.default().copy(harmony=weak))
    assert {n.note % 12 for n in r.notes(s.chord.channel)} == {0, 4, 7}
    strong = np.zeros(64, np.float32)
    strong[Ab], strong[C] = 0.8, 0.1
    r = run(s, 16, Outputs.default().copy(harmony=strong))
    assert {n.note % 12 for n in r.notes(s.chord.channel)} == {8, 0, 3}


def test_no_chord_means_no_chord_or_bass_notes() -> None:
    s = Settings()
    nc = np.zeros(64, np.float32)
    nc[spec.NO_CHORD] = 0.9
    r = run(s, 32, Outputs.default().copy(harmony=nc))
    assert r.notes(s.chord.channel) == [] and r.notes(s.bass.channel) == []
    assert r.gen.current_chord == spec.NO_CHORD
    assert r.notes(s.melody.channel), "the melody still plays over no chord"


@pytest.mark.parametrize(("tonic", "major"), [(0, True), (2, False), (7, True), (9, False), (6, False)])
def test_melody_stays_in_range_and_key(tonic: int, major: bool) -> None:
    s = Settings(temperature=2.0, melody_density=2.0)
    r = run(s, 128, Outputs.default(tonic=tonic, major=major))
    notes = r.notes(s.melody.channel)
    assert len(notes) > 60
    assert all(s.melody.low <= n.note <= s.melody.high for n in notes)
    assert all(in_key(n.note, tonic, major) for n in notes)
    if not major:  # a uniform distribution reaches the harmonic-minor leading tone too
        assert (tonic + 11) % 12 in {n.note % 12 for n in notes}


def test_melody_with_no_mass_in_key_falls_back_to_chord_tones() -> None:
    s = Settings()
    base = Outputs.default()
    base.melody[:] = 0.0
    base.melody[61] = 1.0  # C#: out of C major
    base.groove[HIT] = 1.0
    r = run(s, 32, base)
    notes = r.notes(s.melody.channel)
    assert notes and {n.note % 12 for n in notes} <= {0, 4, 7}


def test_temperature_sharpens_or_flattens_the_choice() -> None:
    base = Outputs.default()
    base.melody[:] = 0.0
    base.melody[64], base.melody[67] = 0.6, 0.4
    base.groove[HIT] = 1.0
    cold = [n.note for n in run(Settings(temperature=0.05), 64, base).notes(1)]
    hot = [n.note for n in run(Settings(temperature=2.0), 64, base).notes(1)]
    # cold: the model's favourite whenever the loop breaker lets it (two notes in three at most)
    assert 0.45 < np.mean([n == 64 for n in cold]) <= 2 / 3 + 0.02
    assert max(set(cold), key=cold.count) == 64
    share_g = np.mean([n == 67 for n in hot])
    assert 0.2 < share_g < 0.7
    assert np.mean([n == 67 for n in cold]) < share_g / 2


def test_groove_on_quarters_gives_onsets_only_on_quarters() -> None:
    s = Settings()
    base = Outputs.default()
    base.groove[HIT] = 0.0
    base.groove[[0, 4, 8, 12]] = 1.0
    r = run(s, 64, base)
    starts = [n.start for n in r.notes(s.melody.channel)]
    playing = phrase_steps(s, 64)
    # every quarter outside the breaths, nothing else
    assert sorted(round(t / STEP_S) for t in starts) == sorted(k for k in playing if k % 4 == 0)
    assert len(starts) >= 10
    for t in starts:
        assert onsets_near(t) < 1e-9
    assert r.gen.prev_hits.tolist() == [1.0 if k % 4 == 0 and 48 + k in playing else 0.0 for k in range(16)]


@pytest.mark.parametrize("micro", [0.4, -0.3])
def test_micro_timing_shifts_onsets(micro: float) -> None:
    s = Settings()
    base = Outputs.default()
    base.groove[HIT] = 0.0
    base.groove[[2, 6, 10, 14]] = 1.0
    base.groove[MICRO] = micro
    r = run(s, 32, base)
    starts = [n.start for n in r.notes(s.melody.channel)]
    assert len(starts) == len([k for k in phrase_steps(s, 32) if k % 4 == 2]) >= 5
    for t in starts:
        grid = round(t / STEP_S) * STEP_S
        assert t - grid == pytest.approx(micro * STEP_S, abs=1e-6)  # groove is float32


def test_humanise_moves_onsets_a_little() -> None:
    base = Outputs.default()
    base.groove[HIT] = 1.0
    base.dynamics[D_HUMANIZE] = 1.0
    r = run(Settings(), 32, base)
    offsets = [onsets_near(n.start) for n in r.notes(1)]
    assert max(offsets) > 0.001
    assert max(offsets) < 0.25 * STEP_S


def test_base_velocity_sets_loudness() -> None:
    def melody_velocities(base_velocity: float) -> list[int]:
        out = Outputs.default()
        out.dynamics[D_VELOCITY] = base_velocity
        out.dynamics[D_SPREAD] = 0.2
        out.dynamics[D_HUMANIZE] = 0.5
        out.groove[HIT] = 1.0
        return [v for _, _, v in run(Settings(), 32, out).ons(1)]

    soft, loud = melody_velocities(0.2), melody_velocities(0.9)
    assert soft and loud
    assert max(soft) < min(loud)
    assert np.mean(soft) < 45 and np.mean(loud) > 95


def test_accent_makes_beats_louder_and_spread_varies_velocity() -> None:
    out = Outputs.default()
    out.dynamics[D_VELOCITY] = 0.4
    out.dynamics[D_ACCENT] = 0.5
    out.groove[HIT] = 1.0
    ons = run(Settings(), 32, out).ons(1)
    on_beat = [v for t, _, v in ons if round(t / STEP_S) % 4 == 0]
    off_beat = [v for t, _, v in ons if round(t / STEP_S) % 4 != 0]
    assert min(on_beat) > max(off_beat)
    assert len(set(off_beat)) == 1  # no spread, no humanise: constant
    out.dynamics[D_SPREAD] = 1.0
    varied = [v for t, _, v in run(Settings(), 32, out).ons(1) if round(t / STEP_S) % 4 != 0]
    assert len(set(varied)) > 3


def test_note_length_follows_the_length_ratio_up_to_the_next_beat() -> None:
    def lengths(ratio: float) -> list[float]:
        out = Outputs.default()
        out.dynamics[D_LENGTH] = ratio
        out.groove[HIT] = 0.0
        out.groove[[0, 8]] = 1.0  # notes on beats 1 and 3: a full beat to the next beat
        return [n.end - n.start for n in run(Settings(), 32, out).notes(1)]

    short, long_ = lengths(0.25), lengths(1.0)
    assert short == pytest.approx([0.25 * 4 * STEP_S] * len(short))
    assert long_ == pytest.approx([4 * STEP_S] * len(long_))


@pytest.mark.parametrize("same_pitch", [True, False])
def test_melody_is_monophonic_and_same_pitch_notes_never_overlap(same_pitch: bool) -> None:
    out = Outputs.default()
    if same_pitch:
        out.melody[:] = 0.0
        out.melody[72] = 1.0  # every note the same pitch
    out.dynamics[D_LENGTH] = 1.0  # legato: each note would last to the next beat
    out.groove[HIT] = 1.0
    out.groove[MICRO] = np.tile([0.45, -0.45], 8)
    r = run(Settings(), 64, out)
    check_invariants(r, Settings())
    notes = r.notes(1)
    assert len(notes) > 40
    for a, b in zip(notes, notes[1:]):
        assert a.end <= b.start


def test_ccs_follow_dynamics_once_per_beat_when_they_move() -> None:
    s = Settings()
    base = Outputs.default()
    values = {0: 0.5, 1: 0.505, 2: 0.6, 3: 0.6}  # per bar: initial, tiny move (< 2 steps), real move, still

    def outputs(k: int) -> Outputs:
        o = base.copy()
        o.dynamics[[D_CC1, D_CC11, D_CC74]] = values[k // 16]
        return o

    r = run(s, 64, outputs)
    for control in (mm.CC_MODULATION, mm.CC_EXPRESSION, mm.CC_BRIGHTNESS):
        sent = [(t, v) for t, c, v in r.ccs(s.melody.channel) if c == control]
        assert [v for _, v in sent] == [round(0.5 * 127), round(0.6 * 127)]
        assert sent[0][0] == pytest.approx(0.0) and sent[1][0] == pytest.approx(2 * 16 * STEP_S)
    assert r.ccs(s.chord.channel) == [(r.end_t, c, 0) for c in (123, 120, 64)]  # only the closing reset
    assert not [1 for _, c, v in r.ccs(s.melody.channel) if c == 64 and v > 0]


def test_closed_gate_stops_new_notes_and_reopening_resumes_them() -> None:
    s = Settings()
    base = Outputs.default()
    base.groove[HIT] = 1.0

    def outputs(k: int) -> Outputs:
        return base.copy(gate_open=not 16 <= k < 32)  # bar 2 is silent input

    r = run(s, 48, outputs)
    check_invariants(r, s)
    ons = [t for t, _, _ in r.ons()]
    closed_from, closed_to = 16 * STEP_S, 32 * STEP_S
    assert not [t for t in ons if closed_from <= t < closed_to]
    # sounding notes end normally: the chord struck at bar 1 rings to its planned end
    assert any(n.end == pytest.approx(closed_from) for n in r.notes(s.chord.channel))
    # all three voices come back in bar 3
    for v in (s.melody, s.chord, s.bass):
        assert [t for t, _, _ in r.ons(v.channel) if t >= closed_to]


def test_gate_reopening_mid_bar_restrikes_the_chord_on_the_next_beat() -> None:
    s = Settings()
    base = Outputs.default()
    base.groove[HIT] = 0.0

    def outputs(k: int) -> Outputs:
        return base.copy(gate_open=not 2 <= k < 22)  # closed from bar 1 beat 1+ to bar 2 beat 2

    r = run(s, 32, outputs)
    starts = sorted({round(n.start / STEP_S) for n in r.notes(s.chord.channel)})
    assert starts == [0, 24]
    assert sorted(round(n.start / STEP_S) for n in r.notes(s.bass.channel)) == [0, 24]


def test_melody_history_and_current_chord_track_what_was_planned() -> None:
    s = Settings()
    base = Outputs.default(chord=spec.chord_index(9, "min"))
    base.groove[HIT] = 1.0
    r = run(s, 20, base)
    melody = [n for _, n, _ in r.ons(s.melody.channel)]
    assert r.gen.melody_history == tuple(melody[-3:])
    assert r.gen.current_chord == spec.chord_index(9, "min")
    assert r.gen.notes_started == len(r.ons())


def test_disabled_voice_in_settings_stays_silent() -> None:
    s = Settings(chord=Voice(False, 2, 48, 72))
    r = run(s, 32, Outputs.default())
    assert r.notes(2) == [] and r.notes(1) and r.notes(3)


def test_a_mid_bar_chord_change_releases_the_previous_chord_and_moves_the_bass() -> None:
    s = Settings()
    C, F = spec.chord_index(0, "maj"), spec.chord_index(5, "maj")
    base = Outputs.default()
    h_c, h_f = np.zeros(64, np.float32), np.zeros(64, np.float32)
    h_c[C], h_f[F] = 0.9, 0.9

    r = run(s, 16, lambda k: base.copy(harmony=h_c if k < 4 else h_f))  # F from beat 2
    check_invariants(r, s)
    change = 4 * STEP_S
    chord = r.notes(s.chord.channel)
    old = [n for n in chord if n.start == 0.0]
    new = [n for n in chord if n.start == pytest.approx(change)]
    assert {n.note % 12 for n in old} == {0, 4, 7} and {n.note % 12 for n in new} == {5, 9, 0}
    assert all(n.end == pytest.approx(change) for n in old)
    bass = [(round(n.start / STEP_S), n.note % 12) for n in r.notes(s.bass.channel)]
    assert bass == [(0, 0), (4, 5), (8, 5)]
