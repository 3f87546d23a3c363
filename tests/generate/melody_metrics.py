"""Melody metrics that can fail, computed only from what the box played (notes) and its beat times.

Written independently of the generator: they read paired MIDI notes, never its state.

* ``strong_chord_tone_share``: of the melody note-ons within a 16th of a beat, the share whose pitch
  class is sounding in the chord voice at that instant or ``CHORD_GRACE_S`` later.
* ``longest_two_pitch_bars``: the longest stretch (first onset to last release, in bars of 4 beats)
  of at least 3 consecutive melody notes that use at most two distinct pitches, with no silence
  of a bar or more inside (a line picked up again after a bar's silence is not a loop).
* ``rests_per_phrase``: phrases are melody spans separated by a rest (a gap of at least a beat);
  the figure is rests / phrases (1.0 = every phrase ends in a breath).
* ``range_share``: (highest - lowest melody pitch played) / (configured high - low).
* ``notes_per_s``: melody note-ons per second of the run's playing time.
"""

from __future__ import annotations

import bisect
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kelly_edge.midi.notes import PlayedNote, pair_notes


CHORD_GRACE_S = 0.05
"""A note-on a hair before the chord change (humanised timing) counts against the new chord too."""


@dataclass(frozen=True)
class MelodyMetrics:
    melody_notes: int
    strong_chord_tone_share: float
    longest_two_pitch_bars: float
    rests_per_phrase: float
    phrases: int
    range_share: float
    notes_per_s: float
    strong_notes: int = 0  # the melody note-ons on a beat that strong_chord_tone_share is over


def read_midi_events(path: str | Path) -> list[tuple[float, bytes]]:
    """(seconds, raw message bytes) of every channel message in a MIDI file."""
    import mido

    out: list[tuple[float, bytes]] = []
    t = 0.0
    for msg in mido.MidiFile(str(path)):
        t += msg.time
        if not msg.is_meta and msg.type != "sysex":
            out.append((t, bytes(msg.bytes())))
    return out


def beat_times_of(report: dict, end_s: float) -> list[float]:
    """The box's beat times: the report's ``beats`` when it has them, else its constant tempo from 0."""
    if report.get("beats"):
        return [float(b) for b in report["beats"]]
    beat_s = 60.0 / float(report["tempo_bpm"])
    return [i * beat_s for i in range(int(end_s / beat_s) + 1)]


def _sounding_pcs(chord_notes: list[PlayedNote], t: float) -> set[int]:
    return {n.note % 12 for n in chord_notes if n.start <= t + 1e-4 and n.end > t + 1e-4}


def melody_metrics(
    events: list[tuple[float, bytes]],
    beats: list[float],
    *,
    melody_channel: int,
    chord_channel: int,
    low: int,
    high: int,
) -> MelodyMetrics:
    """The metrics above; channels are config channels (1..16)."""
    notes, _ = pair_notes(events)
    mel = sorted((n for n in notes if n.channel == melody_channel - 1), key=lambda n: n.start)
    chords = [n for n in notes if n.channel == chord_channel - 1]
    if not mel or len(beats) < 2:
        return MelodyMetrics(len(mel), 0.0, 0, 0.0, 0, 0.0, 0.0)
    beat_s = (beats[-1] - beats[0]) / (len(beats) - 1)
    tol = beat_s / 8.0  # half a 16th

    strong = hits = 0
    for n in mel:
        i = bisect.bisect_left(beats, n.start - tol)
        if i < len(beats) and abs(beats[i] - n.start) <= tol:
            pcs = _sounding_pcs(chords, n.start) | _sounding_pcs(chords, n.start + CHORD_GRACE_S)
            if pcs:
                strong += 1
                hits += n.note % 12 in pcs

    # in the box's own bars: positions read off its beats (a grid that follows the player bends
    # its rate, so a bar is four of its beats, not four mean beats)
    idx = np.arange(len(beats), dtype=float)

    def bars_at(t: float) -> float:
        return float(np.interp(t, beats, idx, left=(t - beats[0]) / beat_s, right=idx[-1] + (t - beats[-1]) / beat_s)) / 4.0

    longest_bars = 0.0
    j = 0
    for i in range(len(mel)):  # the longest stretch of consecutive notes on at most two pitches
        j = max(j, i)
        while (j + 1 < len(mel) and bars_at(mel[j + 1].start) - bars_at(mel[j].end) < 1.0
               and len({n.note for n in mel[i : j + 2]}) <= 2):
            j += 1
        if j - i + 1 >= 3:
            longest_bars = max(longest_bars, bars_at(mel[j].end) - bars_at(mel[i].start))

    rests = 0
    for a, b in zip(mel, mel[1:]):
        if b.start - a.end >= beat_s * 0.99:
            rests += 1
    phrases = rests + 1
    pitches = [n.note for n in mel]
    span_s = max(1e-9, mel[-1].end - mel[0].start)
    return MelodyMetrics(
        melody_notes=len(mel),
        strong_chord_tone_share=hits / strong if strong else 0.0,
        longest_two_pitch_bars=longest_bars,
        rests_per_phrase=rests / phrases,
        phrases=phrases,
        range_share=(max(pitches) - min(pitches)) / max(1, high - low),
        notes_per_s=len(mel) / span_s,
        strong_notes=strong,
    )


def metrics_of_run(midi_path: str | Path, report_path: str | Path, *, low: int = 60, high: int = 84) -> MelodyMetrics:
    """The metrics of an offline run (``kelly-edge run --input X --midi-out M --report R``)."""
    report = json.loads(Path(report_path).read_text())
    events = read_midi_events(midi_path)
    end = events[-1][0] if events else 0.0
    voices = report.get("voices", {"melody": 1, "chord": 2})
    return melody_metrics(events, beat_times_of(report, end), melody_channel=int(voices["melody"]),
                          chord_channel=int(voices["chord"]), low=low, high=high)


if __name__ == "__main__":  # python -m tests.generate.melody_metrics RUN.mid REPORT.json
    print(json.dumps(asdict(metrics_of_run(sys.argv[1], sys.argv[2])), indent=1))


def player_onsets(wav_path: str | Path) -> list[float]:
    """Onset times (s) of the input, by librosa's onset detector (an independent judge)."""
    import librosa

    from tools.render import load_wav_mono

    y, sr = load_wav_mono(wav_path)
    return [float(t) for t in librosa.onset.onset_detect(y=y, sr=sr, units="time", backtrack=False)]


def density_vs_player(midi_path: str | Path, wav_path: str | Path, *, melody_channel: int = 1,
                      window_s: float = 4.0) -> tuple[float, float]:
    """(melody notes/s where the player is busiest, where quietest): windows of ``window_s`` with
    the player sounding, split at the median of the player's onset rate."""
    onsets = player_onsets(wav_path)
    notes, _ = pair_notes(read_midi_events(midi_path))
    mel = [n.start for n in notes if n.channel == melody_channel - 1]
    end = max(onsets[-1] if onsets else 0.0, mel[-1] if mel else 0.0)
    rows = []
    t = 0.0
    while t + window_s <= end + 1e-9:
        player = sum(t <= o < t + window_s for o in onsets) / window_s
        box = sum(t <= m < t + window_s for m in mel) / window_s
        if player > 0:
            rows.append((player, box))
        t += window_s
    if len(rows) < 2:
        return (0.0, 0.0)
    rows.sort()
    half = len(rows) // 2
    quiet = sum(b for _, b in rows[:half]) / half
    busy = sum(b for _, b in rows[-half:]) / half
    return (busy, quiet)
