"""The generator: the five models' latest outputs -> melody, chord and bass MIDI on a 16th grid.

The engine calls :meth:`Generator.plan_step` once per 16th step, at least half a step before the
step's grid time, and :meth:`Generator.advance` every hop. Planning decides the step's notes and
queues their note-ons *and* note-offs (and CCs) with timestamps in a heap; advancing sends what is
due to the sink in time order. Because every note-on is queued together with its note-off, and
every later decision that shortens, cancels or silences a note edits that pair, a note can never
be left hanging (the original plugin's stuck-note risk).

Voices (each on its configured channel and inside its configured ``[low, high]``):

* **melody** (monophonic), in phrases (:class:`phrasing.PhrasePlanner`): 1-2 bars from a bar line,
  each ending in a rest of 1-2 beats (2 when the player is busy), each with a contour (arch, rise
  or fall) around a register centre that moves from phrase to phrase across the range. Outside a
  rest, a seeded draw against the groove's hit probability x ``melody_density`` x the room left
  for the player (fewer notes as the player's onset rate rises) decides whether a note starts;
  micro-timing moves it by up to half a step. The pitch is sampled from the melody model's
  distribution at ``temperature``, masked to the range and the key's scale (minor: natural minor +
  harmonic-minor leading tone), shaped by: a bell around the contour's target, interval weights
  from the last note (steps preferred, leaps rare and resolved by a step back), chord tones on
  beats (others x ``OFF_CHORD_ON_BEAT``), between them a non-chord tone only by step (a passing
  or neighbour tone; by a leap x ``LEAPT_NON_CHORD_TONE``), and no two-note loop (:func:`theory.loop_guard`: no 3+
  notes on two pitches for more than a bar, no 4-note wobble; a small in-key floor under the
  model's weights gives it a way out). When the distribution has no mass there, the same shaping
  chooses among the in-key chord tones. Length: the dynamics length ratio x
  the time from the step's grid time to the next beat (a quarter-note grid: a full beat for a
  note on the beat, one 16th for the last 16th of a beat), at least ``MIN_NOTE_S``; each new
  melody note ends the previous one.
* **chord**: the chord heard now. In a ``reactive`` generator (the engine's default, harmony at
  the hop rate) the engine hands it every other hop's harmony distribution (:meth:`hear_chord`):
  the key-aware :class:`~kelly_edge.generate.chord_decoder.ChordDecoder`, then
  :func:`theory.choose_chord` (in-key chords, or one clearly heard, with hysteresis), and on a
  change whose decoder posterior leads the playing chord's by :data:`STRIKE_MARGIN` the new
  voicing is struck at that hop, releasing the previous chord at the same instant (note-offs
  first) and dropping what the steps planned ahead had queued for it; a change without that lead
  is struck at the first 8th of the grid a 16th after it was heard, if it is still heard (a
  momentary mistake of the model is never struck, a late strike lands on the grid). The voicing
  holds only the tones the chords heard lately agree on (``_agreed_tones``: a third or seventh
  the model is unsure of is left out, at least two tones), the whole chord once they agree. Otherwise the
  same decision runs once per planned 16th and a change strikes on that step. A voicing with the
  least movement from the previous one is also struck at each bar start and after a pause (gate
  closed, voice re-enabled, panic), and held until the next bar start.
* **progression memory** (optional, :class:`progression.ProgressionMemory` given to the
  constructor; :meth:`Generator._anticipate`): each beat is told to it once recognition has caught
  up with it (the chord heard half a beat plus the recognition lag after the beat's start: the
  lag is learnt, :class:`progression.RecognitionLag`, :data:`RECOGNITION_LAG_S` until then);
  once it has learnt a repeated loop and recognition has confirmed one of its predicted changes,
  its prediction for a beat is played from the beat's first step, so the loop's changes are
  struck on the player's beat instead of a recognition lag after it. Recognition keeps running
  underneath: a heard chord that is neither the predicted one nor the one before it (the player
  went elsewhere), or the old chord still heard a beat after the
  predicted change (the player did not change), ends the prediction at once and the heard chord
  is played; the memory, told of that beat, drops the loop until it matches again.
* **bass**: the chord root, in the lowest octave of the bass range, on beats 1 and 3, on chord
  changes (a step generator: the same step as the chord voice; a reactive one: the next beat,
  and bass notes already planned take the new root) and after a pause; one beat long or until
  the next bass note.

Velocity: (base x 127 +- spread x 30 + accent x 40 on steps 0/4/8/12) x voice balance x 1.5, then
+- humanise x ``HUMANIZE_VELOCITY``, clipped to 1..127. CC1, CC11 and CC74 follow the dynamics on
the melody channel, at most once per beat and only when they moved by ``CC_MIN_CHANGE``. The
dynamics' CC64 (sustain) output is not used: chords are already held as pads, and a pedal left
down is a stuck note in disguise; close and panic send CC64 0 all the same.

Timing rules that keep the output valid whatever the models say: the sink only ever sees
non-decreasing times (events are never queued before the last ``advance`` time); at equal times
note-offs go before CCs, CCs before note-ons; a note-on of a pitch already sounding (or queued) on
its channel first shortens that note to end at the new onset.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import logging
import math
from typing import Any

import numpy as np

from kelly_edge.generate import theory
from kelly_edge.generate.phrasing import BUSY_ONSETS_PER_S, PhrasePlanner
from kelly_edge.generate.progression import ProgressionMemory, RecognitionLag, same_family
from kelly_edge.generate.chord_decoder import ChordDecoder
from kelly_edge.midi import messages as mm
from kelly_edge.midi.notes import ActiveNotes
from kelly_edge.midi.sinks import MidiSink
from kelly_edge.models import spec

logger = logging.getLogger(__name__)

VOICES = ("melody", "chord", "bass")
MELODY, CHORD, BASS = 0, 1, 2

MIN_NOTE_S = 0.03
"""Shortest melody/bass note, seconds (unless a later note-on of the same pitch or voice cuts it)."""
HUMANIZE_VELOCITY = 10.0
"""Velocity units of random variation at humanise 1."""
HUMANIZE_TIMING = 0.08
"""Random onset shift of melody notes at humanise 1, as a share of a 16th (~10 ms at 120 BPM)."""
CC_MIN_CHANGE = 2
"""A CC is resent only when its value moved by at least this much."""
MELODY_CCS = (mm.CC_MODULATION, mm.CC_EXPRESSION, mm.CC_BRIGHTNESS)
VOICING_MEMO_SIZE = 4096
"""Chord voicings remembered per (chord, previous voicing); see ``Generator._chord_voicing``."""
MODEL_FLOOR = 0.02
"""Weight every in-key note of the melody range gets on top of the model's (top-normalised,
tempered) weights when the next note must avoid a two-note loop: the way out of a loop the
model is stuck in. Otherwise the model's weights alone are shaped."""
PROGRESSION_CONFIDENCE = 0.6
"""A :class:`ProgressionMemory` prediction at least this confident decides the beat's chord."""
PROGRESSION_TRUST = 1
"""Predicted changes recognition must have confirmed (in a row, since the loop was locked or a
prediction failed) before predictions are played: until then they are only checked, so a loop
learnt on a grid that is not on the player's beats, or a partial match of a longer form, costs
little. On the judge's dev pieces (``python -m tools.evaluate --groups rendered-dev``) 0 / 1 / 2
gave wrong chord-voice notes 184 / 119 / 104 (96 without the memory), majmin 0.707 / 0.706 / 0.701
and changes within 60 ms from the second pass 0.19 / 0.13 / 0.09."""
GIVE_UP_STEPS = 2
"""Steps in a row recognition must contradict a played prediction before it is given up. At the
first one (as first written) a recogniser's flicker threw the loop away: in arpeggios and pads the
harmony model names the major for a minor chord, or the chord before, for a step, and each time
the prediction fell to recognition, its next change a lag late and only checked, not played,
until a change had been confirmed again. The memory dropping its loop for such a beat (a slip,
:class:`~kelly_edge.generate.progression.ProgressionMemory`) no longer costs the trust either.
On the rendered dev pieces (``python -m tools.evaluate --groups rendered-dev``): later loop
passes' changes within 60 ms 0.355 -> 0.390 (median 0.142 -> 0.139 s after the player's), majmin
0.871 -> 0.874, chord-voice chord tones 0.904 -> 0.903, all voices 0.863 -> 0.861, departures
followed within a beat 3 of 4 as before (real-dev unchanged). 3 / 4 steps (a beat) gave 0.421 /
0.434 later passes within 60 ms, but a kept prediction moved the chord under one melody note on
a beat of a chorale (``tests/generate/test_melody_on_recordings.py``: 46 -> 45 of 53); 6
followed 1 departure of 4."""
HEARD_STEPS = 64
"""Steps of heard chords kept for telling beats to the memory: until the recognition lag is learnt
(a bar or three), beats wait for it, so the first pass is told as the later ones will be."""
RECOGNITION_LAG_S = 0.4
"""Seconds from a chord change to the step whose recognised chord has it, until it is learnt from
the heard changes (:class:`progression.RecognitionLag`; 0.3-0.8 s on the judge's dev loops). A
beat is told to the progression memory with the chord heard half a beat plus the lag after its
start, so each beat is named by the chord the player played on it whatever the tempo, and a loop
is learnt on the player's beats, not a beat late."""
HOP_DECODER = {"stay": 0.99, "sharpness": 1.0}
"""The chord decoder of a reactive generator, updated every other hop (~6 times a 16th) instead of
every step: a change expected every ~2 s (100 updates), the model's probabilities as they are.
Chosen on the rendered dev pieces (``python -m tools.evaluate.chord_lag`` and ``python -m
tools.evaluate --groups rendered-dev``): against a short memory with sharpened observations (stay
0.6, ^2.5) it plays the change 0.03 s later (median 0.13 s against 0.09 s after the player) but
flickers less: chord-voice chord tones 0.87 against 0.85, out-of-key chords the player did not
play 21 s against 23 s over the 22 pieces, majmin 0.83 against 0.84. Softened observations
(^0.5) or a change confirmed over 3-8 hops only added lag: the model's mistakes last longer."""
STRIKE_MARGIN = 0.5
"""A reactive change whose decoder posterior leads the playing chord's by at least this much is
struck at the hop it is heard; a narrower lead waits for the grid (:data:`STRIKE_GRID_STEPS`)."""
STRIKE_GRID_STEPS = 2
"""16ths between the grid points a change without a clear lead is struck on (2: the 8ths)."""
STRIKE_CONFIRM_STEPS = 1.0
"""16ths a change without a clear lead must keep being heard before it is struck."""
AGREED_TONE_SHARE = 0.8
"""A tone of the heard chord is voiced (reactive generator) when the chords holding it have at least
this share of what was heard lately (:data:`AGREED_MIX`; see ``Generator._agreed_tones``). On the
judge's dev pieces (``python -m tools.evaluate --groups rendered-dev``) 0.6 / 0.8 / 0.9 over the
decoder's posterior alone gave chord-voice chord tones 0.82 / 0.84 / 0.87, and over the mix below
(0.8) 0.915, majmin unchanged (0.846): the decoder is sure of its mistakes, the model less so."""
MIN_AGREED_TONES = 2
"""Fewest tones a chord is voiced with (the most agreed ones)."""
AGREED_MIX = 0.2
"""Per heard update (every other hop, ~23 ms), the weight of the new evidence in the running mix
the agreed tones are judged on (a time constant of ~0.1 s: the last beat's doubts, not the last bar's)."""
AGREED_OBS = 0.5
"""The model's own (normalised) distribution's share of that evidence; the rest is the decoder's
posterior, which is sharp even when it is wrong."""
RECENT_NOTES = 8
"""Melody notes remembered for the loop guard."""
OFF_CHORD_ON_BEAT = 0.005
"""Weight factor of a note that is not a tone of the current chord, on a beat."""
LEAPT_NON_CHORD_TONE = 0.1
"""Weight factor, between the beats, of a note outside the current chord that is not a step (one
or two semitones) from the melody's last note: a non-chord tone is a passing or neighbour tone,
reached by step, as in any tonal melody; one reached by a leap sounds like a wrong note. On the
judge's rendered dev pieces (``python -m tools.evaluate --groups rendered-dev``) melody chord tones
0.70 -> 0.72 and the share of stepwise intervals unchanged (six dev pieces: 0.46-0.78 either way).
The same factor on every non-chord tone between the beats gave 0.87, but by leaping: steps 0.59 ->
0.39, leaps over a major third 0.09 -> 0.21 (an arpeggio, not a line)."""
CONTOUR_SIGMA = 5.0
"""Semitones: width of the bell around the phrase contour's target pitch."""
CONTOUR_FLOOR = 0.2
"""The bell's least factor: the contour leans on the model's choice, it does not overrule it."""
ROOM_FROM_ONSETS_PER_S = 2.0
ROOM_SCALE_ONSETS_PER_S = 3.0
MIN_ROOM = 0.25
"""Leaving room: the melody's hit probability is scaled by ``1 / (1 + max(0, r - 2) / 3)`` for a
player onset rate ``r`` (onsets per second), at least ``MIN_ROOM``: x0.6 at 4/s, x0.43 at 6/s."""

# priorities of events at the same instant: offs first, then CCs, then ons
_OFF, _CC, _ON = 0, 1, 2
# note states
_PLANNED, _SOUNDING, _DONE = 0, 1, 2
# draws per step, one fixed block so the random sequence never depends on which branch ran
_U_HIT, _U_PITCH, _U_MEL_SPREAD, _U_MEL_HUMAN, _U_MEL_TIME, _U_CHORD_SPREAD, _U_CHORD_HUMAN = range(7)
_U_BASS_SPREAD, _U_BASS_HUMAN = 7, 8
_N_DRAWS = 9
_DRAW_STEPS = 16  # steps' worth of draws taken from the random generator at once
_TOP_UP_STEPS = 4  # an off-beat step tops the draws up when fewer steps' worth than this are left

_DYN = spec.DYNAMICS
_D_VELOCITY = _DYN.output_slice("velocity").start
_D_SPREAD = _DYN.output_slice("velocity_spread").start
_D_ACCENT = _DYN.output_slice("accent").start
_D_LENGTH = _DYN.output_slice("length").start
_D_CCS = (_DYN.output_slice("cc1").start, _DYN.output_slice("cc11").start, _DYN.output_slice("cc74").start)
_D_BALANCE = _DYN.output_slice("voice_balance").start
_D_HUMANIZE = _DYN.output_slice("humanize").start
_G_HIT = spec.GROOVE.output_slice("hit_prob").start
_G_MICRO = spec.GROOVE.output_slice("micro_timing").start


def _clip(x: float, lo: float, hi: float, default: float = 0.0) -> float:
    """``x`` clipped to ``[lo, hi]``; NaN -> ``default`` (model outputs are not trusted)."""
    x = float(x)
    if math.isnan(x):
        return default
    return lo if x < lo else hi if x > hi else x


class _Event:
    """A queued message; ``cancelled`` events are skipped when popped (lazy heap deletion)."""

    __slots__ = ("msg", "ch", "note", "cancelled")

    def __init__(self, msg: bytes, ch: int, note: _Note | None) -> None:
        self.msg = msg
        self.ch = ch
        self.note = note
        self.cancelled = False


class _Note:
    """One planned note: its queued on/off events, times and state (planned, sounding, done)."""

    __slots__ = ("voice", "ch", "pitch", "key", "t_on", "t_off", "on_ev", "off_ev", "state")

    def __init__(self, voice: int, ch: int, pitch: int, t_on: float, t_off: float) -> None:
        self.voice = voice
        self.ch = ch
        self.pitch = pitch
        self.key = ch * 128 + pitch
        self.t_on = t_on
        self.t_off = t_off
        self.on_ev: _Event | None = None
        self.off_ev: _Event | None = None
        self.state = _PLANNED


class Generator:
    """Turns model outputs into timed MIDI for three voices; see the module docstring for the rules.

    ``progression``: an optional :class:`ProgressionMemory`; with one, a repeated progression's
    changes are played on the player's beat once learnt (see :meth:`_anticipate`).
    ``settings`` is duck-typed: ``seed``, ``melody_density``, ``temperature`` and ``melody``,
    ``chord``, ``bass`` each with ``enabled``, ``channel`` (1..16), ``low``, ``high``.
    Public state read by the engine to build model inputs: ``melody_history`` (last <= 3 melody
    notes, most recent last), ``current_chord`` (chord class, ``spec.NO_CHORD`` for none),
    ``prev_hits`` ((16,) float32 0/1 melody onsets of the last completed bar); ``notes_started``
    counts note-ons sent.
    """

    def __init__(
        self, settings: Any, sink: MidiSink, progression: ProgressionMemory | None = None, *, reactive: bool = False
    ) -> None:
        self._sink = sink
        self._reactive = bool(reactive)
        self._progression = progression
        self._heard = spec.NO_CHORD  # the chord recognition hears now (current_chord, unless anticipated)
        self._pending = -1  # a heard change not struck yet (reactive), -1 = none
        self._pending_strike_s = math.inf  # when it is struck if it still holds
        self._told_beat = -1  # the next beat to tell the memory (-1: from the first beat planned)
        self._predicted_beat = -1  # the beat the prediction below was made for
        self._predicted = -1  # the memory's chord for that beat, -1 = none (recognition leads)
        self._change_step = 0  # the step of the last predicted change
        self._before_change = spec.NO_CHORD  # the chord before it
        self._unconfirmed = False  # that change has not been heard yet
        self._trust = 0  # predicted changes heard in a row since the loop was locked (or a miss)
        self._trust_period = 0  # the locked period that trust is about
        self._ignore_until_beat = -1  # after giving up: no prediction up to this beat
        self._contradicted = 0  # steps in a row recognition has heard another family than the prediction
        self._lag = RecognitionLag(initial_s=RECOGNITION_LAG_S)
        self._heard_before = spec.NO_CHORD  # the heard chord on the step before (for the lag)
        self._heard_steps = [-1] * HEARD_STEPS  # ring by step index: the step, and what was heard then
        self._heard_chords = [spec.NO_CHORD] * HEARD_STEPS
        voices = [getattr(settings, name) for name in VOICES]
        self._ch = [mm.wire_channel(int(v.channel)) for v in voices]
        self._low = [int(v.low) for v in voices]
        self._high = [int(v.high) for v in voices]
        for name, lo, hi in zip(VOICES, self._low, self._high):
            mm.check_data(f"{name} low", lo)
            mm.check_data(f"{name} high", hi)
            if lo > hi:
                raise ValueError(f"{name} range is empty: low {lo} > high {hi}")
        self._enabled = [bool(v.enabled) for v in voices]
        self._waiting = [False, False, False]  # re-enabled, waiting for the next beat
        self._restrike = [False, True, True]  # chord/bass: strike at the next beat that may
        self._density = _clip(settings.melody_density, 0.0, 2.0, 1.0)
        self._temperature = _clip(settings.temperature, 0.05, 2.0, 1.0)
        self._rng = np.random.default_rng(int(settings.seed))

        # --- queue and note bookkeeping
        self._heap: list[tuple[float, int, int, _Event]] = []
        self._seq = itertools.count()
        self._by_key: list[_Note | None] = [None] * (16 * 128)  # latest note per (ch, pitch)
        self._voice_notes: list[list[_Note]] = [[], [], []]
        self._active = ActiveNotes()
        self._cc_channels: set[int] = set()
        self._now = 0.0  # every event up to here has been sent; nothing is ever queued before it
        self._closed = False

        # --- musical state
        self.melody_history: tuple[int, ...] = ()
        self.current_chord: int = spec.NO_CHORD
        self._decoder = ChordDecoder(**(HOP_DECODER if reactive else {}))
        self._step_s = 0.0  # the last planned step's 16th duration and its bar's end (reactive strikes)
        self._bar_end = -math.inf
        self.prev_hits = np.zeros(spec.N_STEPS, dtype=np.float32)
        self._bar_hits = np.zeros(spec.N_STEPS, dtype=np.float32)
        self._bar = 0
        self._voicing: tuple[int, ...] = ()
        self._chord_until = -math.inf
        self._melody_last_on = -math.inf
        self._phrases = PhrasePlanner(int(settings.seed), self._low[MELODY], self._high[MELODY])
        self._recent: list[int] = []  # the last melody pitches played, most recent last
        self._recent_steps: list[int] = []  # their onset steps (absolute 16ths)
        self._avoid: tuple[int, ...] = ()  # pitches the next note must not take (a loop; theory.loop_guard)
        self._leap = 0  # +1/-1: the last melody interval leapt up/down (to be resolved by step)
        self._room = 1.0
        self._busy = False
        self._cc_last = [-1, -1, -1]
        self.notes_started = 0

        # --- planning runs inside the audio hop: work arrays are preallocated, the step's draws and
        # dynamics are kept as Python floats (scalar maths on numpy scalars is several times
        # slower), and what depends only on the settings is computed here once
        self._draw_buf = np.zeros(_DRAW_STEPS * _N_DRAWS)
        self._draws: list[float] = []  # drawn, not used yet from ``_draw_at`` on
        self._draw_at = 0
        self._u: list[float] = [0.0] * _N_DRAWS
        self._key: tuple[int, bool] | None = None
        self._scale_pcs: tuple[int, ...] = ()
        lo, hi = self._low[MELODY], self._high[MELODY]
        self._range_mask = np.zeros(128)
        self._range_mask[lo : hi + 1] = 1.0
        self._mel_mask = np.zeros(128)
        self._p = np.zeros(128)
        self._w = np.zeros(128)  # masked weights; outside the melody range they stay 0
        # views of the melody range (the mask is filled in place, so its view stays current)
        self._p_range = self._p[lo : hi + 1]
        self._mask_range = self._mel_mask[lo : hi + 1]
        self._w_range = self._w[lo : hi + 1]
        self._floor_range = np.zeros(hi - lo + 1)  # MODEL_FLOOR on the in-key notes of the range
        self._interval_w = {d: theory.interval_weights(d) for d in (-1, 0, 1)}
        self._contour_w = theory.contour_weights(CONTOUR_SIGMA, CONTOUR_FLOOR)
        self._beat_w = [theory.chord_tone_weights(c, lo, hi, OFF_CHORD_ON_BEAT) for c in range(spec.N_CHORD_CLASSES)]
        self._chord_tones = [theory.chord_tone_weights(c, lo, hi, 0.0) for c in range(spec.N_CHORD_CLASSES)]
        self._leapt_w = [theory.chord_tone_weights(c, lo, hi, LEAPT_NON_CHORD_TONE) for c in range(spec.N_CHORD_CLASSES)]
        self._hp = np.zeros(spec.N_CHORD_CLASSES)
        self._dyn: list[float] = [0.0] * spec.DYNAMICS.n_out
        self._bass_pitch: list[int | None] = [
            None if root is None else theory.lowest_pitch(root, self._low[BASS], self._high[BASS])
            for root in map(theory.chord_root, range(spec.N_CHORD_CLASSES))
        ]
        # messages built (and validated) once; a note-on is built from its status byte, its pitch
        # (inside a validated range) and its velocity (clipped to 1..127)
        self._note_off = {ch: [mm.note_off(ch, pitch) for pitch in range(128)] for ch in set(self._ch)}
        self._note_on_status = [mm.NOTE_ON | ch for ch in self._ch]
        self._cc_msgs = [[mm.control_change(self._ch[MELODY], c, v) for v in range(128)] for c in MELODY_CCS]
        self._chord_pcs = [theory.chord_pitch_classes(c) for c in range(spec.N_CHORD_CLASSES)]
        # the memo of _chord_voicing, started with every chord's first voicing: working those out
        # here also fills theory's candidate tables, so no chord's first strike pays for them
        self._voicings: dict[tuple[tuple[int, ...], tuple[int, ...]], tuple[int, ...]] = {}
        for pcs in self._chord_pcs:
            first = theory.choose_voicing(pcs, self._low[CHORD], self._high[CHORD], ())
            self._voicings[(pcs, ())] = self._voicings[(pcs, first)] = first
        self._pc_table = np.zeros((spec.N_CHORD_CLASSES, 12))  # chord class x pitch class: 1 = a tone of it
        for c, pcs in enumerate(self._chord_pcs):
            self._pc_table[c, list(pcs)] = 1.0
        self._pc_mass = np.zeros(12)
        self._heard_mix = np.zeros(spec.N_CHORD_CLASSES)  # what the agreed tones are judged on (see _hear)
        self._mix_tmp = np.zeros(spec.N_CHORD_CLASSES)

    # --- public API ---------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def plan_step(
        self,
        *,
        step_index: int,
        t_step: float,
        step_s: float,
        tonic: int,
        major: bool,
        emotion: np.ndarray,
        melody: np.ndarray,
        harmony: np.ndarray,
        dynamics: np.ndarray,
        groove: np.ndarray,
        gate_open: bool,
        player_onset_rate: float = 0.0,
    ) -> None:
        """Decide and queue the events of 16th step ``step_index`` (grid time ``t_step`` seconds).

        ``melody`` (128,) note distribution, ``harmony`` (64,) chord distribution, ``dynamics``
        (16,), ``groove`` (32,) per the spec; the arrays are read, never kept. ``step_s`` is the
        16th duration at the current tempo. ``emotion`` (64,) is accepted for completeness: the
        models have already conditioned their outputs on it. ``gate_open`` False: no note-ons.
        ``player_onset_rate``: the player's onsets per second (the feature context's ``onset_rate``
        descriptor); the busier the player, the more room the melody leaves.
        """
        del emotion
        if self._closed:
            return
        t_step, step_s = float(t_step), float(step_s)
        step = step_index % spec.N_STEPS
        self._step_s, self._bar_end = step_s, t_step + (spec.N_STEPS - step) * step_s
        bar = step_index // spec.N_STEPS
        if bar != self._bar:  # steps were skipped across a bar line: publish what the bar had
            self._publish_bar()
            self._bar = bar
        beat = step % 4 == 0
        self._u = self._next_draws(beat)
        self._set_key(int(tonic) % 12, bool(major))
        self._read_dynamics(dynamics)
        rate = _clip(player_onset_rate, 0.0, 100.0)
        self._room = max(MIN_ROOM, 1.0 / (1.0 + max(0.0, rate - ROOM_FROM_ONSETS_PER_S) / ROOM_SCALE_ONSETS_PER_S))
        self._busy = rate > BUSY_ONSETS_PER_S
        if not gate_open:
            self._restrike[CHORD] = self._restrike[BASS] = True
        if beat:
            for v in range(3):
                if self._waiting[v]:
                    self._waiting[v] = False
                    self._restrike[v] = True
            self._plan_ccs(t_step)
        if gate_open:  # the chord heard now, on every step: the voices follow the player's change
            if not self._reactive:
                changed = self._decide_chord(harmony, step_index, step_s)
            elif self._progression is not None:  # recognition strikes in hear_chord; a step plays a loop's prediction
                was_predicting = self._playing_prediction()
                chord = self._anticipate(step_index, step_s, self._heard)
                # a prediction played, or given up (the heard chord at once); otherwise hear_chord decides
                changed = self._play(chord) if was_predicting or self._playing_prediction() else False
            else:
                changed = False
            self._plan_chord(t_step, step, step_s, changed)
            self._plan_bass(t_step, step, step_s, changed)
            self._plan_melody(t_step, step_index, step_s, melody, groove)
        if step == spec.N_STEPS - 1:
            self._publish_bar()
            self._bar = bar + 1

    def hear_chord(self, harmony: np.ndarray, *, now: float, tonic: int, major: bool) -> bool:
        """Follow the chord heard now, at once (a ``reactive`` generator; the engine calls this on
        every hop the harmony model ran while the gate is open): ``harmony`` (64,) goes through the
        decoder and :func:`theory.choose_chord`, and on a change the chord voice strikes at
        ``now`` instead of on the next planned 16th, which the step planning runs up
        to a step ahead of (on dev pieces that was ~0.15 s of the ~0.48 s median lag, and
        deciding once a step another ~0.1 s). Notes the steps planned ahead for the old chord are
        dropped. The bass takes the new root on the next beat (its notes planned ahead move to
        it): struck at once it landed ~0.1 s off every beat (dev: chord+bass note-ons on a beat
        0.27 against 0.32, bass chord tones 0.96 against 0.99). While a progression memory's
        prediction decides the beat, recognition waits.
        "No chord" heard while the gate is open keeps the chord: the model names it for the
        transient of a change, a hop or a few before the new chord, and silence closes the gate.
        Returns True when the chord changed (the engine logs it at ``now``)."""
        if self._closed or not self._reactive or not self._step_s > 0.0:
            return False
        self._set_key(int(tonic) % 12, bool(major))
        heard = self._hear(harmony, hold_through_no_chord=True)
        if self._playing_prediction():  # heard only: the next step's _anticipate checks the prediction with it
            return False
        now = float(now)
        if heard == self.current_chord:  # a candidate that did not last (or none): nothing to strike
            self._pending = -1
            return False
        if heard != self._pending:  # a new candidate: struck once it has lasted to a grid point
            self._pending = heard
            self._pending_strike_s = self._grid_strike_time(now)
        post = self._decoder.posterior
        clear = self.current_chord == spec.NO_CHORD or post[heard] - post[self.current_chord] >= STRIKE_MARGIN
        if not clear and now < self._pending_strike_s:
            return False
        self._pending = -1
        self._play(heard)
        if heard == spec.NO_CHORD:
            return True
        t = max(now, self._now)
        if self._enabled[CHORD] and not self._waiting[CHORD]:
            self._strike_chord(t, max(self._bar_end, t + MIN_NOTE_S), accent=False)
        if self._enabled[BASS] and not self._waiting[BASS]:
            self._retune_planned_bass()
            self._restrike[BASS] = True  # the new root on the next beat planned
        return True

    def _retune_planned_bass(self) -> None:
        """Bass notes planned but not started move to the current chord's root (same times and
        velocity): the steps planned ahead chose the old chord's."""
        pitch = self._bass_pitch[self.current_chord]
        if pitch is None:
            return
        for note in list(self._voice_notes[BASS]):
            if note.state != _PLANNED or note.pitch == pitch:
                continue
            assert note.on_ev is not None
            t_on, t_off, velocity = note.t_on, note.t_off, note.on_ev.msg[2]
            self._release(note, t_on)  # not started: cancelled
            self._add_note(BASS, pitch, velocity, t_on, t_off)
        self._voice_notes[BASS] = [n for n in self._voice_notes[BASS] if n.state != _DONE]

    def advance(self, now: float) -> None:
        """Send every queued event due at or before ``now`` (seconds), in time order.

        Called every hop; when nothing is due it returns without allocating.
        """
        if now > self._now:
            self._now = now
        heap = self._heap
        if not heap or heap[0][0] > now:
            return
        sink = self._sink
        active = self._active
        while heap and heap[0][0] <= now:
            t, kind, _, ev = heapq.heappop(heap)
            if ev.cancelled:
                continue
            sink.send(t, ev.msg)
            note = ev.note
            if note is None:
                self._cc_channels.add(ev.ch)
            elif kind == _ON:
                note.state = _SOUNDING
                active.on(note.ch, note.pitch)
                self.notes_started += 1
            else:
                active.off(note.ch, note.pitch)
                self._forget(note)

    def voice_enabled(self, voice: str) -> bool:
        """Whether ``voice`` plays now (its model and its config flag allow it)."""
        if voice not in VOICES:
            raise ValueError(f"unknown voice {voice!r}: expected one of {', '.join(VOICES)}")
        return self._enabled[VOICES.index(voice)]

    def set_voice_enabled(self, voice: str, enabled: bool, now: float) -> None:
        """Switch a voice on or off at ``now``.

        Off: its sounding notes are released at once and its queued notes dropped. On: it resumes
        at the next beat that is planned (the chord and bass strike there).
        """
        if voice not in VOICES:
            raise ValueError(f"unknown voice {voice!r}: expected one of {', '.join(VOICES)}")
        v = VOICES.index(voice)
        if self._closed or bool(enabled) == self._enabled[v]:
            return
        self._enabled[v] = bool(enabled)
        if enabled:
            self._waiting[v] = True
            return
        self._waiting[v] = False
        notes = self._voice_notes[v]
        self._voice_notes[v] = []
        for note in notes:  # notes not yet started are dropped before anything due is sent
            if note.state == _PLANNED:
                self._drop(note, now)
        # send what is due *before* now only: a note of another voice starting at now stays planned,
        # so a panic at the same instant drops it instead of cutting it to a zero-length blip
        self.advance(math.nextafter(now, -math.inf))
        self._now = max(self._now, now)
        for note in notes:
            self._drop(note, self._now)
        if v == CHORD:
            self._chord_until = -math.inf
        ch = self._ch[v]
        if not any(self._enabled[o] and self._ch[o] == ch for o in range(len(VOICES)) if o != v):
            # the channel is now this voice's alone and silent: make sure the synth agrees
            # (a voice sharing the channel with a playing one must not be cut by CC123/CC120)
            self._sink.send(self._now, mm.all_notes_off(ch))
            self._sink.send(self._now, mm.all_sound_off(ch))

    def panic(self, now: float) -> None:
        """Silence everything at ``now`` (notes off, queue dropped, CC123/120/64 0); keep generating."""
        if self._closed:
            return
        self._silence(now)
        self._restrike[CHORD] = self._restrike[BASS] = True
        self._chord_until = -math.inf

    def close(self, now: float) -> None:
        """End: like :meth:`panic`, then plan nothing more. Idempotent; does not close the sink."""
        if self._closed:
            return
        self._silence(now)
        self._closed = True

    # --- planning: voices ---------------------------------------------------------------------
    def _decide_chord(self, harmony: np.ndarray, step_index: int, step_s: float) -> bool:
        """A step generator's chord (``models.harmony.rate: step``; a reactive one hears in
        :meth:`hear_chord`): update the decoder with ``harmony``, choose the chord heard and the one
        to play (the progression memory's prediction, see :meth:`_anticipate`, or the heard one);
        True when the chord played changed."""
        heard = self._hear(harmony, hold_through_no_chord=False)
        if self._progression is not None:
            return self._play(self._anticipate(step_index, step_s, heard))
        return self._play(heard)

    def _hear(self, harmony: np.ndarray, *, hold_through_no_chord: bool) -> int:
        """Update the decoder with ``harmony`` and return the chord heard now (the key filter and
        hysteresis of :func:`theory.choose_chord`), kept in ``_heard``; ``hold_through_no_chord``:
        a decision for N.C. keeps the chord heard before."""
        hp = self._hp
        np.copyto(hp, harmony[: spec.N_CHORD_CLASSES])
        np.maximum(hp, 0.0, out=hp)
        if not math.isfinite(hp.sum()):  # NaN or inf somewhere: NaN/inf -> 0 (slow, rarely needed)
            np.copyto(hp, harmony[: spec.N_CHORD_CLASSES])
            np.nan_to_num(hp, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
            np.maximum(hp, 0.0, out=hp)
        assert self._key is not None
        tonic, major = self._key
        post = self._decoder.update(hp, tonic, major)
        heard = theory.choose_chord(post, current=self._heard, tonic=tonic, major=major)
        mix, tmp, total = self._heard_mix, self._mix_tmp, float(hp.sum())
        mix *= 1.0 - AGREED_MIX if heard == self._heard else 0.0  # a new chord: judged on what is heard from now
        if total > 0.0:
            np.multiply(hp, AGREED_MIX * AGREED_OBS / total, out=tmp)
            mix += tmp
        np.multiply(post, AGREED_MIX * (1.0 - AGREED_OBS), out=tmp)
        mix += tmp
        if hold_through_no_chord and heard == spec.NO_CHORD:
            heard = self._heard
        self._heard = heard
        return heard

    def _grid_strike_time(self, now: float) -> float:
        """When a change first heard at ``now`` (without a clear lead) is struck: the first point of
        the :data:`STRIKE_GRID_STEPS` grid at least :data:`STRIKE_CONFIRM_STEPS` 16ths after ``now``,
        on the planned bar's grid (a step's length and its bar's end, the last step planned)."""
        step_s = self._step_s
        earliest = now + STRIKE_CONFIRM_STEPS * step_s
        spacing = STRIKE_GRID_STEPS * step_s
        return self._bar_end - math.floor((self._bar_end - earliest) / spacing) * spacing

    def _play(self, new: int) -> bool:
        """Make ``new`` the chord the voices play; True when it changed."""
        changed = new != self.current_chord
        if changed and logger.isEnabledFor(logging.DEBUG):  # naming the chords costs more than deciding
            logger.debug("chord %s -> %s", spec.chord_name(self.current_chord), spec.chord_name(new))
        self.current_chord = new
        return changed

    def _playing_prediction(self) -> bool:
        """Is the progression memory's prediction what the chord voice plays now (recognition waits)?"""
        return self._progression is not None and self._predicted >= 0 and self._trust >= PROGRESSION_TRUST

    def _anticipate(self, step_index: int, step_s: float, heard: int) -> int:
        """The chord to play on step ``step_index``: the progression memory's prediction for its
        beat, or ``heard`` (recognition) when there is none or it was given up.

        The memory is told each beat's chord once recognition has caught up with it (see
        :data:`RECOGNITION_LAG_S`, :data:`HEARD_STEPS`). A prediction is made on a beat's first
        step (planned before the beat sounds), so a predicted change's note-on is on the grid's
        beat; it is played once :data:`PROGRESSION_TRUST` predicted changes have been heard. It is
        given up, for the beats until the memory has been told of this one (and trust is lost),
        when ``heard`` is of another family than the prediction and either not the chord before
        the predicted change or still that chord a beat (at least the lag and two steps) after it.
        """
        memory = self._progression
        assert memory is not None
        beat = step_index // 4
        if heard != self._heard_before:
            if heard != spec.NO_CHORD and self._heard_before != spec.NO_CHORD:
                self._lag.heard_change((step_index % 4) / 4.0)
            self._heard_before = heard
        step_s = max(step_s, 1e-3)
        lag_steps = self._lag.seconds(4.0 * step_s) / step_s
        tell_after = 2 + int(round(lag_steps))  # steps after a beat's start: its middle, heard
        ring = step_index % HEARD_STEPS
        self._heard_steps[ring], self._heard_chords[ring] = step_index, heard
        # a beat is told with the chord heard tell_after steps after its start, once the lag is
        # known or the ring would lose that step; steps not planned with the gate open (a pause)
        # were not kept: the memory counts such beats unheard
        self._told_beat = max(self._told_beat, beat - HEARD_STEPS // 4 + 2)
        while self._told_beat < beat:
            at = 4 * self._told_beat + tell_after
            if at > step_index or (not self._lag.known and step_index - at < HEARD_STEPS - 8):
                break
            if self._heard_steps[at % HEARD_STEPS] == at and self._heard_chords[at % HEARD_STEPS] != spec.NO_CHORD:
                memory.observe(self._told_beat, self._heard_chords[at % HEARD_STEPS], 1.0)
            self._told_beat += 1
        if memory.period_beats and memory.period_beats != self._trust_period:
            # a new loop has to earn trust again; the same loop back after the memory dropped it
            # for a beat (a slip, see GIVE_UP_STEPS) keeps it
            self._trust_period, self._trust = memory.period_beats, 0
        if beat != self._predicted_beat:
            self._predicted_beat = beat
            chord, p = memory.predict(beat)
            guess = chord if p >= PROGRESSION_CONFIDENCE and beat > self._ignore_until_beat else -1
            if guess >= 0 and (self._predicted < 0 or not same_family(guess, self._predicted)):
                before = self._predicted if self._predicted >= 0 else self.current_chord
                self._change_step, self._before_change = step_index, before
                self._unconfirmed = not same_family(guess, before)
            self._predicted = guess
        predicted = self._predicted
        if predicted < 0:
            self._contradicted = 0
            return heard
        if heard == spec.NO_CHORD or same_family(heard, predicted):
            self._contradicted = 0
            if self._unconfirmed and heard != spec.NO_CHORD:  # recognition has heard the predicted change
                self._unconfirmed = False
                self._trust += 1
            return predicted if self._trust >= PROGRESSION_TRUST else heard
        self._contradicted += 1
        if self._contradicted < GIVE_UP_STEPS:
            pass
        elif (step_index - self._change_step >= max(4, int(math.ceil(lag_steps)) + 2)
              or not same_family(heard, self._before_change)):
            # the player went elsewhere, or did not change: recognition leads until the memory
            # has been told of this beat, and the loop must earn trust again
            self._predicted, self._unconfirmed, self._trust = -1, False, 0
            self._ignore_until_beat = beat + (tell_after + 3) // 4
            return heard
        return predicted if self._trust >= PROGRESSION_TRUST else heard

    def _plan_chord(self, t_step: float, step: int, step_s: float, changed: bool) -> None:
        if not self._enabled[CHORD] or self._waiting[CHORD] or self.current_chord == spec.NO_CHORD:
            return
        t = max(t_step, self._now)
        # a change strikes on any step; a restrike after a pause waits for the beat
        if not (changed or step == 0 or (step % 4 == 0 and (self._restrike[CHORD] or t >= self._chord_until))):
            return
        self._strike_chord(t, max(t_step + (spec.N_STEPS - step) * step_s, t + MIN_NOTE_S), accent=step % 4 == 0)

    def _strike_chord(self, t: float, t_off: float, *, accent: bool) -> None:
        """Strike the current chord's voicing at ``t`` until ``t_off``, ending the voice's notes."""
        self._restrike[CHORD] = False
        voicing = self._chord_voicing()
        if not voicing:
            return
        self._release_voice(CHORD, t)
        vel = self._velocity(CHORD, accent, _U_CHORD_SPREAD, _U_CHORD_HUMAN)
        for pitch in voicing:
            self._add_note(CHORD, pitch, vel, t, t_off)
        self._voicing = voicing
        self._chord_until = t_off

    def _plan_bass(self, t_step: float, step: int, step_s: float, changed: bool) -> None:
        if not self._enabled[BASS] or self._waiting[BASS] or self.current_chord == spec.NO_CHORD:
            return
        if not (step in (0, 8) or changed or (self._restrike[BASS] and step % 4 == 0)):
            return
        t = max(t_step, self._now)
        self._strike_bass(t, max(t_step + 4 * step_s, t + MIN_NOTE_S), accent=step % 4 == 0)

    def _strike_bass(self, t: float, t_off: float, *, accent: bool) -> None:
        """Play the current chord's root (lowest in the bass range) from ``t`` to ``t_off``."""
        self._restrike[BASS] = False
        pitch = self._bass_pitch[self.current_chord]
        if pitch is None:
            return
        self._release_voice(BASS, t)
        self._add_note(BASS, pitch, self._velocity(BASS, accent, _U_BASS_SPREAD, _U_BASS_HUMAN), t, t_off)

    def _plan_melody(
        self, t_step: float, step_index: int, step_s: float, melody: np.ndarray, groove: np.ndarray
    ) -> None:
        if not self._enabled[MELODY] or self._waiting[MELODY]:
            return
        target = self._phrases.target(step_index, self._busy)
        if target is None:  # the phrase's breath
            return
        step = step_index % spec.N_STEPS
        u = self._u
        p_hit = _clip(groove[_G_HIT + step], 0.0, 1.0) * self._density * self._room
        if not u[_U_HIT] < p_hit:
            return
        self._avoid, rest = theory.loop_guard(self._recent, self._recent_steps, step_index)
        if rest:  # a slow repeat: any note now would make a two-note loop
            return
        pitch = self._pick_pitch(melody, u[_U_PITCH], target, step % 4 == 0)
        if pitch is None:
            return
        humanize = self._dyn[_D_HUMANIZE]
        shift = _clip(groove[_G_MICRO + step], -0.5, 0.5) + humanize * HUMANIZE_TIMING * (2.0 * u[_U_MEL_TIME] - 1.0)
        t = max(t_step + shift * step_s, self._melody_last_on + MIN_NOTE_S, self._now)
        gap_steps = 4 - step % 4
        t_off = max(t_step + self._dyn[_D_LENGTH] * gap_steps * step_s, t + MIN_NOTE_S)
        self._release_voice(MELODY, t)
        vel = self._velocity(MELODY, step % 4 == 0, _U_MEL_SPREAD, _U_MEL_HUMAN)
        if self._add_note(MELODY, pitch, vel, t, t_off):
            self._melody_last_on = t
            self.melody_history = (*self.melody_history[-2:], pitch)
            self._bar_hits[step] = 1.0
            recent = self._recent
            if recent:
                interval = pitch - recent[-1]
                self._leap = (1 if interval > 0 else -1) if abs(interval) >= theory.LEAP else 0
            recent.append(pitch)
            self._recent_steps.append(step_index)
            if len(recent) > RECENT_NOTES:
                del recent[0], self._recent_steps[0]

    def _plan_ccs(self, t_step: float) -> None:
        if not self._enabled[MELODY]:
            return
        t = max(t_step, self._now)
        ch = self._ch[MELODY]
        for i, index in enumerate(_D_CCS):
            value = round(self._dyn[index] * 127)
            if self._cc_last[i] < 0 or abs(value - self._cc_last[i]) >= CC_MIN_CHANGE:
                self._push(t, _CC, self._cc_msgs[i][value], ch, None)
                self._cc_last[i] = value

    # --- planning: helpers --------------------------------------------------------------------
    def _next_draws(self, beat: bool) -> list[float]:
        """The step's ``_N_DRAWS`` uniform draws.

        The same numbers, in the same order, as one ``random(_N_DRAWS)`` call per step (a float64
        draw uses one generator output whatever the call size), but a call costs several
        microseconds inside the hop, so they are drawn ``_DRAW_STEPS`` steps at a time, and topped
        up on an off-beat step (beats plan more) unless they would run out first.
        """
        draws, at = self._draws, self._draw_at
        if len(draws) - at < (_N_DRAWS if beat else _TOP_UP_STEPS * _N_DRAWS):
            draws = self._draws = draws[at:] + self._rng.random(out=self._draw_buf).tolist()
            at = 0
        self._draw_at = at + _N_DRAWS
        return draws[at : at + _N_DRAWS]

    def _set_key(self, tonic: int, major: bool) -> None:
        if self._key == (tonic, major):
            return
        self._key = (tonic, major)
        self._scale_pcs = theory.scale_pitch_classes(tonic, major)
        theory.scale_note_mask(tonic, major, self._mel_mask)
        self._mel_mask *= self._range_mask
        np.multiply(self._mask_range, MODEL_FLOOR, out=self._floor_range)

    def _chord_voicing(self) -> tuple[int, ...]:
        """:func:`theory.choose_voicing` of the current chord from the previous voicing, memoised.

        The answer depends only on the chord, the previous voicing and the (fixed) chord range, so
        a remembered one is exact. Each answer is also remembered as its own chord's answer from
        itself (no movement is the least, and no other voicing of the chord has none), so the
        bar-start restrike of a held chord is always a lookup. The pairs met are few (a voicing is
        itself an answer), but the memo is bounded: emptied before it would exceed
        ``VOICING_MEMO_SIZE`` entries.
        """
        pcs = self._agreed_tones(self.current_chord)
        voicing = self._voicings.get((pcs, self._voicing))
        if voicing is None:
            if len(self._voicings) >= VOICING_MEMO_SIZE - 1:
                self._voicings.clear()
            previous = self._voicing
            voicing = theory.choose_voicing(pcs, self._low[CHORD], self._high[CHORD], previous)
            self._voicings[(pcs, previous)] = voicing
            self._voicings[(pcs, voicing)] = voicing
        return voicing

    def _agreed_tones(self, chord: int) -> tuple[int, ...]:
        """The tones of ``chord`` to voice. In a reactive generator, while it is the chord heard:
        those the chords heard lately agree on (each tone's share of ``_heard_mix``, a running mix
        of the model's distribution and the decoder's posterior, over chords is at least
        :data:`AGREED_TONE_SHARE`; at least :data:`MIN_AGREED_TONES`, in the chord's order), so a
        third or a seventh the model is unsure of (F7 or Fm7, F#m or A) is left out rather than
        played wrong. The whole chord once they agree, for a predicted chord, and in a step
        generator (its decoder sees a 16th at a time)."""
        pcs = self._chord_pcs[chord]
        if not self._reactive or chord != self._heard or len(pcs) <= MIN_AGREED_TONES:
            return pcs
        mass = self._pc_mass
        np.dot(self._heard_mix, self._pc_table, out=mass)
        chords = float(self._heard_mix.sum() - self._heard_mix[spec.NO_CHORD])
        if not chords > 0.0:
            return pcs
        need = AGREED_TONE_SHARE * chords
        kept = tuple(pc for pc in pcs if mass[pc] >= need)
        if len(kept) >= len(pcs):
            return pcs
        if len(kept) < MIN_AGREED_TONES:
            top = sorted(pcs, key=lambda pc: -mass[pc])[:MIN_AGREED_TONES]
            kept = tuple(pc for pc in pcs if pc in top)
        return kept

    def _read_dynamics(self, dynamics: np.ndarray) -> None:
        """Read the (16,) dynamics output as floats, NaN -> 0, each clipped to its documented range.

        A comprehension over 16 floats is far cheaper than numpy's NaN handling on a small array;
        the comparisons keep values in ``[0, 1]`` unchanged (-0.0 included), NaN and -inf -> 0, +inf -> 1.
        """
        d = [x if 0.0 <= x <= 1.0 else 1.0 if x > 1.0 else 0.0 for x in dynamics.tolist()[: spec.DYNAMICS.n_out]]
        d[_D_LENGTH] = max(0.05, d[_D_LENGTH])
        self._dyn = d

    def _velocity(self, voice: int, accent: bool, i_spread: int, i_human: int) -> int:
        """Velocity from the dynamics and the step's draws; ``accent``: on a beat."""
        d, u = self._dyn, self._u
        v = d[_D_VELOCITY] * 127.0 + d[_D_SPREAD] * 30.0 * (2.0 * u[i_spread] - 1.0)
        if accent:
            v += d[_D_ACCENT] * 40.0
        v *= d[_D_BALANCE + voice] * 1.5
        v += d[_D_HUMANIZE] * HUMANIZE_VELOCITY * (2.0 * u[i_human] - 1.0)
        return min(127, max(1, round(v)))

    def _pick_pitch(self, melody: np.ndarray, u: float, target: float, beat: bool) -> int | None:
        """Sample a melody note from the (128,) distribution at the temperature, in range and key,
        shaped by the phrase (``target``: the contour's pitch here) and the beat; see :meth:`_shape`."""
        p, w, wr = self._p, self._w, self._w_range
        np.copyto(p, melody[:128])
        np.maximum(p, 0.0, out=p)
        total = float(p.sum())
        if not math.isfinite(total):  # NaN or inf somewhere: NaN/inf -> 0 (slow, rarely needed)
            np.copyto(p, melody[:128])
            np.nan_to_num(p, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
            np.maximum(p, 0.0, out=p)
            total = float(p.sum())
        # The mask is 0 outside the melody range, where w stays 0: only the range is computed.
        # Its sum is at least its maximum (the weights are >= 0), so it is only needed when the
        # maximum alone does not clear the threshold; then it is summed over all 128 as ever.
        np.multiply(self._p_range, self._mask_range, out=wr)
        top = float(wr.max())
        if not (top > 0.0 and (top > 1e-6 * total or float(w.sum()) > 1e-6 * total)):
            return self._fallback_pitch(u, target, beat)
        # the draw only needs the range too: the cumulative sum there equals the full one (adding
        # zeros is exact), a draw past its end is "none found" as before, and the first maximum
        # lies inside it
        np.divide(wr, top, out=wr)
        np.power(wr, 1.0 / self._temperature, out=wr)  # p^(1/T): the softmax of logits / T
        if self._avoid:
            wr += self._floor_range
        return self._shape(u, target, beat)

    def _fallback_pitch(self, u: float, target: float, beat: bool) -> int | None:
        """The model has no mass in range and key: the same shaping over the in-key chord tones
        (the tonic triad's when the chord has none in range, the scale's when that has none)."""
        wr = self._w_range
        assert self._key is not None
        tonic, major = self._key
        for chord in (self.current_chord, spec.chord_index(tonic, "maj" if major else "min")):
            np.multiply(self._chord_tones[chord], self._mask_range, out=wr)
            if float(wr.max()) > 0.0:
                break
        else:
            np.copyto(wr, self._mask_range)
            if not float(wr.max()) > 0.0:
                return None
        return self._shape(u, target, beat)

    def _shape(self, u: float, target: float, beat: bool) -> int:
        """Draw a pitch from the weights in ``self._w_range`` (some > 0) times the melodic shaping.

        Factors (each a slice of a table made at start-up, so no array is allocated): the interval
        from the last note (steps first; after a leap, a step back), a bell around the contour's
        ``target``, chord tones on a ``beat`` and, between the beats, a non-chord tone only by step
        (:data:`LEAPT_NON_CHORD_TONE`). Each is > 0, so a pitch the weights allow stays
        possible and the model's preferences keep their order among equally shaped notes. Then
        none of the pitches that would make a two-note loop (``self._avoid``, from
        :func:`theory.loop_guard`), unless nothing else is possible.
        """
        lo, hi = self._low[MELODY], self._high[MELODY]
        wr = self._w_range
        off = theory.INTERVAL_OFFSET
        recent = self._recent
        ref = recent[-1] if recent else int(round(target))
        np.multiply(wr, self._interval_w[self._leap][lo - ref + off : hi - ref + off + 1], out=wr)
        aim = int(round(target))
        np.multiply(wr, self._contour_w[lo - aim + off : hi - aim + off + 1], out=wr)
        if beat:
            np.multiply(wr, self._beat_w[self.current_chord], out=wr)
        elif recent:  # between the beats: a non-chord tone only by step from the last note
            np.multiply(wr, self._leapt_w[self.current_chord], out=wr)
        weights = wr.tolist()
        if not beat and recent and self._chord_pcs[self.current_chord]:
            tones = self._chord_pcs[self.current_chord]
            for q in (ref - 2, ref - 1, ref + 1, ref + 2):
                if lo <= q <= hi and q % 12 not in tones:
                    weights[q - lo] /= LEAPT_NON_CHORD_TONE
        if self._avoid:  # no two-note loop, when the range and key have another pitch
            kept = [(q - lo, weights[q - lo]) for q in self._avoid if lo <= q <= hi]
            for i, _ in kept:
                weights[i] = 0.0
            if not max(weights) > 0.0:
                for i, x in kept:
                    weights[i] = x
        cum = list(itertools.accumulate(weights))
        i = bisect.bisect_right(cum, u * cum[-1])
        if i == len(weights) or weights[i] <= 0.0:
            i = weights.index(max(weights))
        return lo + i

    def _publish_bar(self) -> None:
        np.copyto(self.prev_hits, self._bar_hits)
        self._bar_hits[:] = 0.0

    # --- the queue ----------------------------------------------------------------------------
    def _push(self, t: float, kind: int, msg: bytes, ch: int, note: _Note | None) -> _Event:
        ev = _Event(msg, ch, note)
        heapq.heappush(self._heap, (t, kind, next(self._seq), ev))
        return ev

    def _add_note(self, voice: int, pitch: int, velocity: int, t_on: float, t_off: float) -> bool:
        """Queue a note; a note of the same (channel, pitch) still sounding is ended at ``t_on``.

        Returns False (nothing queued) when that pitch is already queued to start at ``t_on``.
        """
        ch = self._ch[voice]
        prev = self._by_key[ch * 128 + pitch]
        if prev is not None and prev.state != _DONE:
            if prev.state == _PLANNED and prev.t_on >= t_on:
                return False
            self._release(prev, t_on)
        note = _Note(voice, ch, pitch, t_on, t_off)
        note.on_ev = self._push(t_on, _ON, bytes((self._note_on_status[voice], pitch, velocity)), ch, note)
        note.off_ev = self._push(t_off, _OFF, self._note_off[ch][pitch], ch, note)
        self._by_key[note.key] = note
        self._voice_notes[voice].append(note)
        return True

    def _release(self, note: _Note, t: float) -> None:
        """Make ``note`` end by ``t``: move its note-off earlier, or cancel it if it would not start."""
        if note.state == _DONE or note.t_off <= t:
            return
        assert note.on_ev is not None and note.off_ev is not None
        if note.state == _PLANNED and t <= note.t_on:
            note.on_ev.cancelled = note.off_ev.cancelled = True
            self._forget(note)
            return
        note.off_ev.cancelled = True
        note.off_ev = self._push(t, _OFF, note.off_ev.msg, note.ch, note)
        note.t_off = t

    def _release_voice(self, voice: int, t: float) -> None:
        """End every note of ``voice`` by ``t`` (a new note or chord of that voice starts at ``t``)."""
        kept: list[_Note] = []
        for note in self._voice_notes[voice]:
            if note.state != _DONE:
                self._release(note, t)  # may finish this note only
                if note.state != _DONE:
                    kept.append(note)
        self._voice_notes[voice] = kept

    def _drop(self, note: _Note, t: float) -> None:
        """Remove ``note`` now: cancel its queued events; if it is sounding, send its note-off at ``t``."""
        if note.state == _DONE:
            return
        assert note.on_ev is not None and note.off_ev is not None
        note.on_ev.cancelled = note.off_ev.cancelled = True
        if note.state == _SOUNDING:
            self._sink.send(t, note.off_ev.msg)
            self._active.off(note.ch, note.pitch)
        self._forget(note)

    def _forget(self, note: _Note) -> None:
        """Mark ``note`` done. Dropping its event references breaks the note <-> event cycle, so
        finished notes are freed by reference counting, never left to the cyclic garbage collector
        (whose full passes can stall a real-time loop for milliseconds)."""
        note.state = _DONE
        note.on_ev = note.off_ev = None
        if self._by_key[note.key] is note:
            self._by_key[note.key] = None

    def _silence(self, now: float) -> None:
        """Send what is due by ``now``, except notes that would start just to be cut (starting at
        ``now`` or later); then note-off every sounding note, drop the queue and send CC123/CC120/
        CC64 0 on the channels used, all at ``now`` (or the last ``advance`` time if later)."""
        for notes in self._voice_notes:
            for note in notes:
                if note.state == _PLANNED and note.t_on >= now:
                    self._drop(note, now)
        self.advance(now)
        t = self._now
        for notes in self._voice_notes:
            for note in notes:
                self._forget(note)
        self._voice_notes = [[], [], []]
        self._heap.clear()
        for msg in self._active.panic_messages(self._cc_channels):
            self._sink.send(t, msg)
        self._active.clear()
