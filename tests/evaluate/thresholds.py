"""The suite's floor for how well the box plays along, on the small evaluation set.

One place to raise them: each is a little below what the box scored when it was set
(``python -m tools.evaluate --set small --no-transcription``, with the judge's config
``tools.evaluate.run.JUDGE_CONFIG``; the box is then deterministic), so the suite fails when the
music gets worse. The comment after each floor: the figure at 434d91a (before issue 13) -> at
43e46d8 (the stop before) -> now (after the beat, chord, progression-memory and chord-tone work
of the stop after it). Two went down over that stop and their floors followed: the chord voice's
tones on the two recordings (it now follows a change ~0.1 s after the player, and with it some
of the harmony model's momentary mistakes), and their chord+bass note-ons on a beat (a reactive
change is struck when heard, off the beat). A fourth figure: raised since.
"""

from __future__ import annotations

THRESHOLDS: dict[str, dict[str, float]] = {
    "rendered-dev": {
        "beat_f": 0.75,  # 0.12 -> 0.52 -> 0.65 -> 0.73 (the tracker's newest-2-s periodicity and first beat) -> 0.82 (a prediction applied at once, no beats reported while silent)
        "downbeat_f": 0.8,  # (scored since 1a445be) 0.88
        "tempo_ok": 0.45,  # 0.00 -> 0.00 -> 0.50
        "key": 0.9,  # 1.00 -> 1.00 -> 1.00
        "chords_majmin": 0.85,  # 0.24 -> 0.80 -> 0.90
        "tone_melody": 0.7,  # 0.52 -> 0.65 -> 0.79
        "tone_chord": 0.93,  # 0.51 -> 1.00 -> 0.97
        "tone_bass": 0.95,  # 0.32 -> 1.00 -> 1.00
        "tone_all": 0.88,  # 0.48 -> 0.95 -> 0.92
        "on_beat": 0.4,  # 0.09 -> 0.43 -> 0.44
        # the dev loop that is left once (run.DEV_LOOP_PIECES[0], in the small set since the
        # progression memory is on by default): 0.00 and 0.00 without the memory
        "loop_later_ok": 0.1,  # — -> — -> 0.19
        "departure_beat": 0.9,  # — -> — -> 1.00
    },
    "real": {
        "beat_f": 0.38,  # 0.26 -> 0.47 -> 0.39 -> 0.42 (the same)
        "tempo_ok": 0.45,  # 0.00 -> 0.00 -> 0.50
        "key": 0.9,  # 0.20 -> 1.00 -> 1.00
        "chords_majmin": 0.28,  # 0.00 -> 0.20 -> 0.31
        "tone_melody": 0.5,  # 0.34 -> 0.46 -> 0.57
        "tone_chord": 0.68,  # 0.14 -> 0.80 -> 0.72
        "tone_bass": 0.88,  # 0.35 -> 0.92 -> 0.92
        "tone_all": 0.7,  # 0.29 -> 0.69 -> 0.73
        "on_beat": 0.28,  # 0.25 -> 0.49 -> 0.31
    },
}
