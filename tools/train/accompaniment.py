"""Rendered accompaniment with known chords: the HarmonyPredictor's training and test material.

"The chord sounding now" is learnt from audio of a player accompanying: a seeded random
progression in a key (mostly diatonic, some secondary dominants and borrowed chords, a few bars
of N.C.), played in one of several textures (block chords, a pulse on every beat, strumming,
arpeggios, broken chords; Alberti bass only in the held-out set) on a GM instrument, with or
without a bass line and drums and an optional chord-tone/scale melody on top, at 60–160 BPM in
any key. :func:`make` returns the MIDI bytes and the chord segments (audio seconds), so every
row's label is exact. Rendering is :func:`tools.render.render_midi` (FluidSynth, FluidR3 GM).

Held out: :data:`HELD_OUT_TEXTURES` and :data:`HELD_OUT_PROGRAMS` are used only when
``held_out=True`` (the measurement set, other seeds too), never in training.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kelly_edge.models import spec

TEXTURES = ("block", "pulse", "strum", "arpeggio", "broken")
HELD_OUT_TEXTURES = ("alberti",)
CHORD_PROGRAMS = (0, 1, 4, 16, 19, 24, 25, 26, 48, 11, 89)
"""Piano, bright piano, e-piano, organs, nylon/steel/jazz guitar, strings, vibraphone, warm pad."""
HELD_OUT_PROGRAMS = (5, 27, 46)
"""E-piano 2, clean electric guitar, harp: only in the measurement set."""
BASS_PROGRAMS = (32, 33, 34, 43)
MELODY_PROGRAMS = (73, 65, 40, 56)

# (degree semitones above the tonic, quality) of the diatonic chords, with weights
MAJOR_CHORDS = ((0, "maj", 6), (2, "min", 3), (2, "m7", 1), (4, "min", 2), (5, "maj", 5), (7, "maj", 4), (7, "7", 3),
                (9, "min", 4), (9, "m7", 1), (11, "dim", 1))
MINOR_CHORDS = ((0, "min", 6), (0, "m7", 1), (2, "dim", 1), (3, "maj", 3), (5, "min", 4), (5, "m7", 1), (7, "maj", 2),
                (7, "7", 3), (7, "min", 1), (8, "maj", 4), (10, "maj", 3), (10, "7", 1))
# chords outside the key a player often uses: secondary dominants, borrowed chords
MAJOR_OUTSIDE = ((2, "7"), (4, "7"), (9, "7"), (10, "maj"), (8, "maj"), (5, "min"), (3, "maj"), (0, "7"))
MINOR_OUTSIDE = ((5, "maj"), (0, "maj"), (2, "7"), (1, "maj"), (0, "7"))
OUTSIDE_P = 0.12
ANY_P = 0.03  # any chord of the vocabulary at all: recognition must not lean on the key alone
NC_P = 0.05  # a segment of no chord (drums only, or silence)
SECONDS = 32.0


@dataclass
class Segment:
    start_s: float
    end_s: float
    chord: int  # spec class index; spec.NO_CHORD for none


@dataclass
class Accompaniment:
    midi: bytes
    segments: list[Segment]
    tempo_bpm: float
    tonic: int
    major: bool
    texture: str
    program: int
    bass: bool
    drums: bool
    melody: bool
    seconds: float
    info: dict = field(default_factory=dict)

    def chord_at(self, t: float) -> int:
        for s in self.segments:
            if s.start_s <= t < s.end_s:
                return s.chord
        return spec.NO_CHORD


def progression(rng: np.random.Generator, tonic: int, major: bool, n_beats: int) -> list[tuple[int, int]]:
    """``[(start_beat, chord)]`` covering ``n_beats`` beats; changes on beats, mostly on bar lines."""
    table = MAJOR_CHORDS if major else MINOR_CHORDS
    outside = MAJOR_OUTSIDE if major else MINOR_OUTSIDE
    w = np.array([c[2] for c in table], float)
    w /= w.sum()
    out: list[tuple[int, int]] = []
    beat = 0
    prev = -1
    first = True
    while beat < n_beats:
        u = rng.random()
        if first:
            deg, q = 0, ("maj" if major else "min")
        elif u < NC_P:
            deg, q = -1, ""
        elif u < NC_P + ANY_P:
            deg, q = int(rng.integers(12)), str(rng.choice(spec.CHORD_QUALITIES))
        elif u < NC_P + ANY_P + OUTSIDE_P:
            deg, q = outside[int(rng.integers(len(outside)))]
        else:
            i = int(rng.choice(len(table), p=w))
            deg, q = table[i][0], table[i][1]
        chord = spec.NO_CHORD if deg < 0 else spec.chord_index((tonic + deg) % 12, q)
        if chord == prev and not first:
            continue
        first = False
        dur = int(rng.choice((1, 2, 2, 4, 4, 4, 4, 8)))
        if dur >= 4 and beat % 4:
            dur = 4 - beat % 4  # back onto the bar line
        out.append((beat, chord))
        prev = chord
        beat += dur
    return out


def _tones(chord: int) -> tuple[int, tuple[int, ...]]:
    root, quality = spec.chord_of_index(chord)  # type: ignore[misc]
    return root, tuple((root + i) % 12 for i in spec.CHORD_INTERVALS[quality])


def _voicing(rng: np.random.Generator, chord: int, low: int) -> list[int]:
    """Close voicing of the chord from ``low`` up (random inversion), 3–4 notes, sometimes doubled."""
    root, pcs = _tones(chord)
    inv = int(rng.integers(len(pcs)))
    order = pcs[inv:] + pcs[:inv]
    notes = []
    p = low - 1
    for pc in order:
        p += (pc - p) % 12 or 12
        notes.append(p)
    if rng.random() < 0.3:
        notes.append(notes[0] + 12)
    return notes


def make(seed: int, *, held_out: bool = False, seconds: float = SECONDS) -> Accompaniment:
    """One seeded accompaniment (MIDI bytes + chord segments); see the module docstring."""
    import io

    import mido

    rng = np.random.default_rng(seed)
    tempo = float(rng.uniform(60, 160))
    tonic = int(rng.integers(12))
    major = bool(rng.random() < 0.5)
    textures = TEXTURES + (HELD_OUT_TEXTURES if held_out else ())
    programs = CHORD_PROGRAMS + (HELD_OUT_PROGRAMS if held_out else ())
    texture = str(textures[int(rng.integers(len(textures)))])
    if held_out and rng.random() < 0.4:  # the held-out textures and sounds are well represented
        texture = str(rng.choice(HELD_OUT_TEXTURES))
    program = int(programs[int(rng.integers(len(programs)))])
    if held_out and rng.random() < 0.4:
        program = int(rng.choice(HELD_OUT_PROGRAMS))
    has_bass, has_drums, has_melody = rng.random() < 0.7, rng.random() < 0.5, rng.random() < 0.3
    spb = round(60e6 / tempo) / 1e6  # the MIDI file's tempo is whole microseconds per beat: labels follow it
    tempo = 60.0 / spb
    n_beats = int(seconds / spb) + 1
    prog = progression(rng, tonic, major, n_beats)
    tpb = 480
    ev: list[tuple[int, int, int, int, int]] = []  # (tick, order, channel, note, velocity) order 0 = off

    def note(ch: int, start_beat: float, dur_beats: float, pitch: int, vel: int) -> None:
        if not 0 <= pitch <= 127:
            return
        s = int(round(start_beat * tpb))
        e = max(s + 1, int(round((start_beat + dur_beats) * tpb)))
        v = int(min(127, max(1, vel + rng.normal(0, 6))))
        ev.append((s, 1, ch, pitch, v))
        ev.append((e, 0, ch, pitch, 0))

    base_vel = int(rng.integers(55, 105))
    low = int(rng.integers(48, 58))
    segments = []
    bounds = [b for b, _ in prog] + [n_beats]
    for (b0, chord), b1 in zip(prog, bounds[1:]):
        segments.append(Segment(b0 * spb, min(b1 * spb, seconds), chord))
        if chord == spec.NO_CHORD:
            continue
        root, pcs = _tones(chord)
        voicing = _voicing(rng, chord, low)
        for beat in range(b0, b1):
            in_bar = beat % 4
            if texture == "block":
                if beat == b0 or in_bar == 0:
                    end = min(b1, beat + 4 - in_bar)
                    for p in voicing:
                        note(0, beat, (end - beat) * 0.98, p, base_vel)
            elif texture == "pulse":
                for p in voicing:
                    note(0, beat, 0.85, p, base_vel + (8 if in_bar == 0 else 0))
            elif texture == "strum":
                for half, down in ((0.0, True), (0.5, False)):
                    if half and rng.random() < 0.3:
                        continue
                    order = voicing if down else voicing[::-1]
                    for i, p in enumerate(order):
                        note(0, beat + half + i * 0.03 / spb, 0.45, p, base_vel - (0 if down else 12))
            elif texture == "arpeggio":
                seq = voicing + [voicing[0] + 12]
                sub = 4 if tempo < 100 else 2
                for k in range(sub):
                    note(0, beat + k / sub, 1.5 / sub, seq[(in_bar * sub + k) % len(seq)], base_vel)
            elif texture == "broken":
                note(0, beat, 0.5, voicing[0], base_vel)
                for p in voicing[1:]:
                    note(0, beat + 0.5, 0.45, p, base_vel - 10)
            elif texture == "alberti":
                v = voicing
                for k, i in enumerate((0, -1, 1, -1)):
                    note(0, beat + k / 4, 0.3, v[i], base_vel)
        if has_bass:
            bass_root = 28 + (root - 28) % 12  # E1..D#2
            for beat in range(b0, b1):
                if beat == b0 or beat % 2 == 0:
                    pitch = bass_root
                    if beat != b0 and rng.random() < 0.3:
                        pitch = bass_root + (pcs[2] - root) % 12 if len(pcs) > 2 else bass_root
                    note(1, beat, 0.9 if texture != "block" else 1.9, pitch, base_vel + 5)
        if has_melody:
            scale = (0, 2, 4, 5, 7, 9, 11) if major else (0, 2, 3, 5, 7, 8, 10)
            for beat in range(b0, b1):
                for half in (0.0, 0.5):
                    if rng.random() < 0.35:
                        continue
                    if half == 0.0 or rng.random() < 0.5:
                        pc = pcs[int(rng.integers(len(pcs)))]
                    else:
                        pc = (tonic + scale[int(rng.integers(7))]) % 12
                    note(3, beat + half, 0.45, 72 + (pc - 72) % 12, base_vel - 5)
    if has_drums:
        for beat in range(n_beats):
            if beat % 2 == 0:
                note(9, beat, 0.2, 36, base_vel)
            else:
                note(9, beat, 0.2, 38, base_vel - 10)
            note(9, beat, 0.1, 42, base_vel - 25)
            note(9, beat + 0.5, 0.1, 42, base_vel - 30)
    ev.sort()
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=int(round(spb * 1e6)), time=0))
    track.append(mido.Message("program_change", program=program, channel=0, time=0))
    track.append(mido.Message("program_change", program=int(rng.choice(BASS_PROGRAMS)), channel=1, time=0))
    track.append(mido.Message("program_change", program=int(rng.choice(MELODY_PROGRAMS)), channel=3, time=0))
    last = 0
    for tick, kind, ch, pitch, vel in ev:
        if tick * spb / tpb >= seconds:
            break
        track.append(mido.Message("note_on" if kind else "note_off", channel=ch, note=pitch, velocity=vel if kind else 0, time=tick - last))
        last = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    mf = mido.MidiFile(type=0, ticks_per_beat=tpb)
    mf.tracks.append(track)
    buf = io.BytesIO()
    mf.save(file=buf)
    return Accompaniment(buf.getvalue(), segments, tempo, tonic, major, texture, program, has_bass, has_drums, has_melody, seconds)


def render(acc: Accompaniment, sample_rate: int = 22050) -> np.ndarray:
    """The accompaniment as mono float32 audio (FluidSynth via :func:`tools.render.render_midi`)."""
    import tempfile
    from pathlib import Path

    from tools.render import load_wav_mono, render_midi

    with tempfile.TemporaryDirectory(prefix="kelly-acc-") as tmp:
        mid, wav = Path(tmp) / "acc.mid", Path(tmp) / "acc.wav"
        mid.write_bytes(acc.midi)
        render_midi(mid, wav, sample_rate=sample_rate, max_seconds=acc.seconds, timeout_s=120.0)
        x, _ = load_wav_mono(wav)
    return x
