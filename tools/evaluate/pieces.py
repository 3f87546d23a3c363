"""The judge's own pieces: progressions written for the evaluation, with their chords and beats known.

Every piece is made from one seed: a style (a progression in Roman numerals and a harmonic rhythm),
a texture (which instruments play it, and how), a key, a tempo and a tempo path (steady, a sudden
change, a gradual accelerando or ritardando, or rubato). The beats are laid out first, in seconds;
every note is placed on them, so the ground truth (``beats``, ``downbeats``, ``chords``, ``key``)
is exact by construction, whatever the tempo does. Nothing here is shared with the harmony
model's training-data generator (``tools/train``): the judge's material must stay independent,
and it has its own seeds (:data:`SEED_BASE`). Which pieces are held out (never to be tuned on) is
listed in ``heldout.txt`` beside this module.

Chord labels are in mir_eval's syntax (``A:min``, ``G:7``, ``C:maj7``); ``pcs`` of a label come
from mir_eval too, so the judge and the labels agree on what a chord contains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kelly_edge.midi import messages as mm
from kelly_edge.midi.smf import build_smf
from kelly_edge.models import spec
from tools.evaluate.metrics import chord_family, label_pcs

SEED_BASE = 130_000  # the judge's seeds: piece i of a set is seed SEED_BASE + i
HELDOUT_FILE = Path(__file__).with_name("heldout.txt")
DRUMS = 9  # GM drum channel (wire)
KICK, SNARE, HAT = 36, 38, 42

# Roman numerals: (scale-degree semitones above the tonic, mir_eval quality)
NUMERALS: dict[str, tuple[int, str]] = {
    "I": (0, "maj"), "Imaj7": (0, "maj7"), "I7": (0, "7"), "ii": (2, "min"), "ii7": (2, "min7"),
    "iii": (4, "min"), "IV": (5, "maj"), "IV7": (5, "7"), "iv": (5, "min"), "V": (7, "maj"), "V7": (7, "7"),
    "vi": (9, "min"), "vii0": (11, "dim"), "i": (0, "min"), "i7": (0, "min7"), "bIII": (3, "maj"),
    "iv7": (5, "min7"), "v": (7, "min"), "bVI": (8, "maj"), "bVII": (10, "maj"), "ii0": (2, "dim"),
}

# style: (major key?, progression as (numeral, beats) pairs)
STYLES: dict[str, tuple[bool, tuple[tuple[str, int], ...]]] = {
    "pop": (True, (("I", 4), ("V", 4), ("vi", 4), ("IV", 4))),
    "doowop": (True, (("I", 4), ("vi", 4), ("IV", 4), ("V", 4))),
    "canon": (True, (("I", 2), ("V", 2), ("vi", 2), ("iii", 2), ("IV", 2), ("I", 2), ("IV", 2), ("V", 2))),
    "blues": (True, (("I7", 4), ("IV7", 4), ("I7", 8), ("IV7", 8), ("I7", 8), ("V7", 4), ("IV7", 4), ("I7", 4), ("V7", 4))),
    "jazz": (True, (("ii7", 4), ("V7", 4), ("Imaj7", 8), ("vi", 4), ("ii7", 2), ("V7", 2))),
    "folk": (True, (("I", 4), ("IV", 4), ("I", 4), ("V", 4))),
    "axis_minor": (False, (("i", 4), ("bVI", 4), ("bIII", 4), ("bVII", 4))),
    "issue": (False, (("i", 4), ("bVI", 4), ("iv", 4), ("v", 4))),  # Cm-Ab-Fm-Gm in issue 13
    "andalusian": (False, (("i", 4), ("bVII", 4), ("bVI", 4), ("V", 4))),
    "minor_ballad": (False, (("i", 4), ("iv", 4), ("bVII", 4), ("bIII", 4), ("bVI", 4), ("ii0", 2), ("V7", 2), ("i", 8))),
    "minor_jazz": (False, (("i7", 4), ("iv7", 4), ("ii0", 2), ("V7", 2), ("i7", 4))),
}
# texture: GM programs per role; None = role absent
TEXTURES: dict[str, dict[str, int | None]] = {
    "block": {"chords": 0, "bass": 33, "melody": None, "drums": 1},  # piano block chords, bass, drums
    "arpeggio": {"chords": 0, "bass": None, "melody": None, "drums": None},  # solo piano arpeggios
    "strum": {"chords": 25, "bass": 32, "melody": None, "drums": 1},  # steel guitar strumming
    "band": {"chords": 4, "bass": 33, "melody": 65, "drums": 1},  # e-piano comp, bass, sax, drums
    "solo_piano": {"chords": 0, "bass": 0, "melody": 0, "drums": None},  # Alberti left hand + tune
    "strings": {"chords": 48, "bass": 45, "melody": 40, "drums": None},  # pad, pizzicato, violin
}
TEMPO_PATHS = ("steady", "jump", "accelerando", "ritardando", "rubato")
LOOP_BARS = (2, 8)
"""A progression of this many bars (whole bars) is a loop: its passes are marked (``Piece.loop_pass``)."""
DEPARTURE_NUMERALS = {True: ("ii", "iii", "IV", "vi", "V", "I"), False: ("iv", "v", "bVII", "bIII", "bVI", "i")}
"""Chords a departing player takes, in order of preference (the first that is neither the loop's
chord there nor the chord before it)."""


@dataclass(frozen=True)
class Piece:
    """One written piece: its notes and its exact ground truth, all times in seconds."""

    name: str
    style: str
    texture: str
    tempo_path: str
    tonic: int
    major: bool
    beats: tuple[float, ...]
    downbeats: tuple[float, ...]
    chords: tuple[tuple[float, float, str], ...]  # (start, end, mir_eval label)
    loop_pass: tuple[int, ...] | None  # per chord: its pass of the loop (0 first), -1 left the loop; None: no loop
    notes: tuple[tuple[float, float, int, int, int], ...]  # (on, off, wire channel, pitch, velocity)
    programs: dict[int, int] = field(default_factory=dict)  # wire channel -> GM program
    duration: float = 0.0

    @property
    def key(self) -> str:
        """mir_eval key label, e.g. ``"Eb minor"``."""
        return f"{spec.PITCH_NAMES[self.tonic]} {'major' if self.major else 'minor'}"

    def midi_bytes(self, ppq: int = 480) -> bytes:
        """A Standard MIDI File of the piece (program changes, then every note), ``ppq`` ticks a beat of 1 s."""
        events: list[tuple[float, bytes]] = [(0.0, bytes((0xC0 | ch, prog))) for ch, prog in sorted(self.programs.items())]
        offs, ons = [], []
        for on, off, ch, pitch, vel in self.notes:
            ons.append((on, mm.note_on(ch, pitch, vel)))
            offs.append((off, mm.note_off(ch, pitch)))
        # offs first at equal times, so a re-struck pitch is released before it sounds again
        events += sorted(offs + ons, key=lambda e: (e[0], e[1][0] & 0xF0 == mm.NOTE_ON))
        return build_smf(events, ppq=ppq, initial_bpm=60.0)


def beat_times(rng: np.random.Generator, bpm: float, n_beats: int, path: str, lead_in: float = 0.25) -> np.ndarray:
    """Times of ``n_beats + 1`` beats (the last closes the piece) under a tempo path, the first
    after ``lead_in`` seconds."""
    i = np.arange(n_beats, dtype=float)
    frac = i / max(n_beats - 1, 1)
    if path == "jump":  # a sudden change of 12-20 %, up or down, in the middle
        factor = 1.0 + rng.uniform(0.12, 0.2) * rng.choice([-1.0, 1.0])
        local = np.where(i < (n_beats // 8) * 4, bpm, bpm * factor)
    elif path == "accelerando":
        local = bpm * (1.0 + 0.15 * frac)
    elif path == "ritardando":
        local = bpm * (1.0 - 0.15 * frac)
    elif path == "rubato":  # a slow sway of +-6 % and a little jitter on every beat
        local = bpm * (1.0 + 0.06 * np.sin(2 * np.pi * i / rng.uniform(12, 20) + rng.uniform(0, 6.3)))
        local *= 1.0 + rng.normal(0.0, 0.015, n_beats)
    else:
        local = np.full(n_beats, bpm)
    return np.concatenate([[0.0], np.cumsum(60.0 / local)]) + lead_in


def degrees(tonic: int, major: bool) -> list[int]:
    """The key's seven pitch classes in scale-degree order (natural minor: the judge's own scale,
    not the generator's, which adds the harmonic-minor leading tone and sorts by pitch class)."""
    steps = (0, 2, 4, 5, 7, 9, 11) if major else (0, 2, 3, 5, 7, 8, 10)
    return [(tonic + d) % 12 for d in steps]


def chord_label(tonic: int, numeral: str) -> str:
    degree, quality = NUMERALS[numeral]
    return f"{spec.PITCH_NAMES[(tonic + degree) % 12]}:{quality}"


def _near(pc: int, centre: int) -> int:
    """The pitch of class ``pc`` nearest to ``centre``."""
    return centre + ((pc - centre + 6) % 12) - 6


def make_piece(seed: int, *, seconds: float = 24.0, style: str | None = None, texture: str | None = None,
               tempo_path: str | None = None, departure: int | None = None, on_grid: bool = False) -> Piece:
    """Piece number ``seed``: style, texture and tempo path cycle with the seed (so a run of seeds
    covers them all), key and tempo are drawn from it. ``departure``: in that pass of the loop
    (0 = the first), the player leaves it for two chords from the loop's second chord on
    (:data:`DEPARTURE_NUMERALS`, each as long as the chord it replaces), then plays on in the loop.
    ``on_grid``: the lead-in is one beat instead of a quarter second, so a box on a fixed grid at
    the piece's (steady) tempo, started with the audio, has its beats on the player's."""
    rng = np.random.default_rng(seed)
    style = style or sorted(STYLES)[seed % len(STYLES)]
    texture = texture or sorted(TEXTURES)[(seed // len(STYLES) + seed) % len(TEXTURES)]
    tempo_path = tempo_path or TEMPO_PATHS[seed % len(TEMPO_PATHS)]
    major, progression = STYLES[style]
    tonic = int(rng.integers(12))
    bpm = float(rng.uniform(72, 144))
    prog_beats = sum(b for _, b in progression)
    n_beats = max(prog_beats, int(math.ceil(seconds * bpm / 60.0 / 4.0)) * 4)
    beats = beat_times(rng, bpm, n_beats, tempo_path, 60.0 / bpm if on_grid else 0.25)
    roles = TEXTURES[texture]
    channel = {"chords": 0, "bass": 1, "melody": 2}
    programs = {channel[r]: int(p) for r, p in roles.items() if r in channel and p is not None}
    if roles["drums"] is not None:
        programs[DRUMS] = 0
    notes: list[tuple[float, float, int, int, int]] = []
    chords: list[tuple[float, float, str]] = []
    passes: list[int] = []
    is_loop = prog_beats % 4 == 0 and LOOP_BARS[0] <= prog_beats // 4 <= LOOP_BARS[1]
    b = 0
    step = 0
    melody_pitch = 72 + tonic % 12 - (12 if tonic > 6 else 0)
    scale = degrees(tonic, major)
    while b < n_beats:
        numeral, length = progression[step % len(progression)]
        loop_pass = step // len(progression)
        if departure is not None and loop_pass == departure and step % len(progression) in (1, 2):
            avoid = {chord_family(chord_label(tonic, numeral)), chord_family(chords[-1][2])}
            numeral = next(n for n in DEPARTURE_NUMERALS[major] if chord_family(chord_label(tonic, n)) not in avoid)
            loop_pass = -1
        passes.append(loop_pass)
        step += 1
        length = min(length, n_beats - b)
        label = chord_label(tonic, numeral)
        pcs = tuple(sorted(label_pcs(label)))
        root = (tonic + NUMERALS[numeral][0]) % 12
        t0, t1 = beats[b], beats[b + length]
        chords.append((float(t0), float(t1), label))
        voicing = sorted(_near(pc, 62) for pc in pcs)
        for j in range(length):
            bt, bn = beats[b + j], beats[b + j + 1]
            beat_s = bn - bt
            accent = 1.0 if (b + j) % 4 == 0 else 0.8
            vel = int(70 * accent + rng.integers(-6, 7))
            if roles["chords"] is not None:
                _chord_part(notes, texture, rng, voicing, root, bt, beat_s, vel, j, length)
            if roles["bass"] is not None:
                _bass_part(notes, texture, root, pcs, bt, beat_s, vel, j)
            if roles["melody"] is not None:
                melody_pitch = _melody_part(notes, rng, pcs, scale, melody_pitch, bt, beat_s, vel)
            if roles["drums"] is not None:
                _drum_part(notes, (b + j) % 4, bt, beat_s, vel)
        b += length
    notes.sort()
    return Piece(
        name=f"{style}-{texture}-{tempo_path}{'' if departure is None else f'-departs{departure}'}"
             f"{'-on_grid' if on_grid else ''}-{seed}", style=style, texture=texture, tempo_path=tempo_path,
        tonic=tonic, major=major, beats=tuple(float(t) for t in beats[:n_beats]),
        downbeats=tuple(float(t) for t in beats[:n_beats:4]), chords=tuple(chords),
        loop_pass=tuple(passes) if is_loop else None, notes=tuple(notes),
        programs=programs, duration=float(beats[n_beats] + 1.0),
    )


def arpeggio_notes(voicing: list[int], root: int) -> list[int]:
    """One cycle of the arpeggio texture: the root below the voicing, the voicing, the root above it.

    The voicing (each tone near D4, sorted) is in root position only when the root happens to be
    its lowest note; the left hand plays the root an octave below the voicing's, as a pianist
    arpeggiating the chord would, and the top is the next root above the voicing. Doubling the
    voicing's lowest note instead (before) played the third or the fifth in the left hand for most
    chords: a chord labelled F#m sounded as A, C#, F# with A in three octaves and no bass, which a
    listener hears as A. Root-position voicings are played as before."""
    in_voicing = next(p for p in voicing if (p - root) % 12 == 0)
    high = in_voicing + 12 * (1 + (voicing[-1] - in_voicing) // 12)
    return [in_voicing - 12] + list(voicing) + [high]


def _chord_part(notes: list, texture: str, rng: np.random.Generator, voicing: list[int], root: int, bt: float, beat_s: float,
                vel: int, j: int, length: int) -> None:
    if texture in ("block", "band"):  # struck on every beat (band: on 2 and 4 and the off-beat too)
        hits = [(0.0, 0.9)] if texture == "block" else [(0.0, 0.45), (0.5, 0.45)]
        for off, dur in hits:
            for p in voicing:
                notes.append((bt + off * beat_s, bt + (off + dur) * beat_s, 0, p, vel))
    elif texture == "strum":  # down-up eighths, each string a few ms after the last
        for half, down in ((0.0, True), (0.5, False)):
            strings = [voicing[0] - 12] + voicing if down else voicing[::-1]
            for s, p in enumerate(strings):
                t = bt + half * beat_s + s * 0.012
                notes.append((t, bt + (half + 0.48) * beat_s, 0, p, vel - (0 if down else 12)))
    elif texture == "arpeggio":  # eighth-note arpeggio over two octaves, root in the left hand
        seq = arpeggio_notes(voicing, root)
        for k in range(2):
            p = seq[(2 * j + k) % len(seq)]
            notes.append((bt + k * 0.5 * beat_s, bt + (k + 1) * 0.5 * beat_s + 0.05, 0, p, vel))
    elif texture == "solo_piano":  # Alberti left hand: low, high, middle, high in eighths
        lo = [p - 12 for p in voicing]
        seq = [lo[0], lo[-1], lo[1 % len(lo)], lo[-1]]
        for k in range(2):
            notes.append((bt + k * 0.5 * beat_s, bt + (k + 1) * 0.5 * beat_s, 0, seq[(2 * j + k) % 4], vel - 10))
    elif texture == "strings" and j == 0:  # a pad held for the chord
        for p in voicing:
            notes.append((bt, bt + length * beat_s, 0, p, vel - 15))
    del rng


def _bass_part(notes: list, texture: str, root: int, pcs: tuple[int, ...], bt: float, beat_s: float, vel: int, j: int) -> None:
    low = _near(root, 40)
    if texture == "solo_piano":
        if j % 2 == 0:
            notes.append((bt, bt + 1.9 * beat_s, 1, low - 12 if low > 40 else low, vel - 5))
        return
    fifth = _near((root + 7) % 12, low + 7)
    pitch = low if j % 2 == 0 else fifth
    if texture == "strings":
        pitch = low
    notes.append((bt, bt + 0.8 * beat_s, 1, pitch, vel + 5))
    del pcs


def _melody_part(notes: list, rng: np.random.Generator, pcs: tuple[int, ...], scale: list[int], pitch: int,
                 bt: float, beat_s: float, vel: int) -> int:
    """A chord tone on the beat, sometimes a passing scale tone on the off-beat; a rest now and then."""
    if rng.random() < 0.2:
        return pitch
    target = min((_near(pc, pitch + int(rng.integers(-4, 5))) for pc in pcs), key=lambda p: abs(p - pitch))
    target = int(np.clip(target, 64, 86))
    if rng.random() < 0.4:
        notes.append((bt, bt + 0.5 * beat_s, 2, target, vel + 8))
        passing = [p for p in range(target - 2, target + 3) if p % 12 in scale and p != target]
        notes.append((bt + 0.5 * beat_s, bt + 0.95 * beat_s, 2, int(rng.choice(passing)), vel))
    else:
        notes.append((bt, bt + 0.95 * beat_s, 2, target, vel + 8))
    return target


def _drum_part(notes: list, beat_in_bar: int, bt: float, beat_s: float, vel: int) -> None:
    drum = KICK if beat_in_bar % 2 == 0 else SNARE
    notes.append((bt, bt + 0.1, DRUMS, drum, min(127, vel + 20)))
    for k in range(2):
        notes.append((bt + k * 0.5 * beat_s, bt + k * 0.5 * beat_s + 0.05, DRUMS, HAT, vel - 15))


def heldout_names() -> set[str]:
    """Names of the held-out pieces (never tuned on): one per line in ``heldout.txt``, ``#`` comments."""
    lines = HELDOUT_FILE.read_text().splitlines()
    return {ln.split("#")[0].strip() for ln in lines if ln.split("#")[0].strip()}
