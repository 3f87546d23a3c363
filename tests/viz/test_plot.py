"""The run picture: checked by what its pixels show, not only that a file appeared."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib import image as mpimg

from kelly_edge.audio.wav import write_wav
from kelly_edge.config.schema import default_config
from kelly_edge.engine.offline import run_file
from kelly_edge.errors import KellyEdgeError
from kelly_edge.features.mel import MelExtractor, hz_to_mel
from kelly_edge.midi import messages as mm
from kelly_edge.midi.smf import build_smf
from kelly_edge.viz import plot

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "kelly_edge" / "data" / "demo.wav"
RATE = 22050
WHITE = (1.0, 1.0, 1.0)


def _rgb(hex_colour: str) -> np.ndarray:
    h = hex_colour.lstrip("#")
    return np.array([int(h[i : i + 2], 16) / 255.0 for i in (0, 2, 4)])


VOICE_RGB = {voice: _rgb(c) for voice, c in plot.VOICE_COLOURS.items()}


def _load(path: Path) -> np.ndarray:
    img = mpimg.imread(str(path))
    return img[:, :, :3]


def _px(panel: dict[str, Any], x: float, y: float) -> tuple[int, int]:
    """Data coordinates of a panel -> (row, col) in the PNG."""
    left, top, right, bottom = panel["box"]
    (x0, x1), (y0, y1) = panel["xlim"], panel["ylim"]
    col = left + (x - x0) / (x1 - x0) * (right - left)
    row = bottom - (y - y0) / (y1 - y0) * (bottom - top)
    return int(row), int(col)  # pixel (r, c) covers [r, r + 1) x [c, c + 1) from the top-left corner


def _region(img: np.ndarray, panel: dict[str, Any], inset: int = 3) -> np.ndarray:
    left, top, right, bottom = (int(round(v)) for v in panel["box"])
    return img[top + inset : bottom - inset, left + inset : right - inset]


def _classify(rgb: np.ndarray) -> str:
    """The nearest of the voice colours and white."""
    options = {**VOICE_RGB, "white": np.array(WHITE)}
    return min(options, key=lambda k: float(np.sum((options[k] - rgb) ** 2)))


def _count_colour(region: np.ndarray, rgb: np.ndarray, tol: float = 0.06) -> int:
    return int(np.count_nonzero(np.max(np.abs(region - rgb), axis=2) < tol))


# --- a synthetic run whose picture is known ------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("synthetic")
    t = np.arange(4 * RATE) / RATE
    audio = np.where(t < 2.0, 0.5 * np.sin(2 * np.pi * 440.0 * t), 0.0)  # A4 for 2 s, then silence
    wav = folder / "tone.wav"
    write_wav(wav, audio, RATE)
    mel, chord, bass = 0, 1, 2  # wire channels of the default voices (config channels 1, 2, 3)
    events: list[tuple[float, bytes]] = []

    def note(ch: int, pitch: int, start: float, end: float) -> None:
        events.append((start, mm.note_on(ch, pitch, 127)))
        events.append((end, mm.note_off(ch, pitch)))

    note(mel, 76, 0.5, 1.5)
    for p in (60, 64, 67):  # C major, then A minor
        note(chord, p, 0.0, 2.0)
    for p in (57, 60, 64):
        note(chord, p, 2.0, 4.0)
    note(bass, 36, 0.0, 2.0)
    note(bass, 33, 2.0, 4.0)
    events.sort(key=lambda e: (e[0], e[1][0] & 0xF0 == 0x90))
    midi = folder / "tone.mid"
    midi.write_bytes(build_smf(events, initial_bpm=120.0))
    emotion = [{"t": float(k), "valence": v, "arousal": a, "label": lab}
               for k, (v, a, lab) in enumerate([(-0.5, -0.5, "melancholy"), (0.0, 0.0, "distraction"),
                                                (0.5, 0.3, "hope"), (0.85, 0.6, "delight")])]
    report = {"source": {"path": str(wav), "duration_s": 4.0}, "audio_s": 4.0, "key": "C major", "tempo_bpm": 120.0,
              "notes": 9, "hop_ms": {"p50": 0.2, "p99": 1.0}, "deadline_misses": 0,
              "models": {"emotion": "fallback"}, "emotion": emotion}
    out = folder / "tone.png"
    drawn = plot.plot_run(report, midi, None, out)
    return {"drawn": drawn, "img": _load(out), "out": out, "report": report}


def test_picture_has_the_promised_size(synthetic: dict[str, Any]) -> None:
    img, drawn = synthetic["img"], synthetic["drawn"]
    w, h = int(plot.FIGSIZE[0] * plot.DPI), int(plot.FIGSIZE[1] * plot.DPI)
    assert img.shape[:2] == (h, w) and drawn["size"] == (w, h)
    for name, panel in drawn["panels"].items():
        left, top, right, bottom = panel["box"]
        assert 0 <= left < right <= w and 0 <= top < bottom <= h, name
        assert (right - left) > 150 and (bottom - top) > 20, name  # no panel squashed away


def test_spectrogram_shows_the_tone_then_the_silence(synthetic: dict[str, Any]) -> None:
    img, spec_panel = synthetic["img"], synthetic["drawn"]["panels"]["spectrogram"]
    brightness = img.mean(axis=2)
    max_mel = float(hz_to_mel(np.array([8000.0]))[0])
    band_440 = float(hz_to_mel(np.array([440.0]))[0]) / max_mel * 128
    band_4k = float(hz_to_mel(np.array([4000.0]))[0]) / max_mel * 128
    tone = brightness[_px(spec_panel, 1.0, band_440)]
    above = brightness[_px(spec_panel, 1.0, band_4k)]
    silence = brightness[_px(spec_panel, 3.0, band_440)]
    assert tone > above + 0.3  # the 440 Hz band glows while the tone plays
    assert tone > silence + 0.3  # and goes dark when it stops
    region = _region(img, spec_panel)
    assert np.mean(np.all(region > 0.97, axis=2)) < 0.02  # the panel is painted, not blank


def test_piano_roll_colours_each_voice_at_its_notes(synthetic: dict[str, Any]) -> None:
    img, roll = synthetic["img"], synthetic["drawn"]["panels"]["piano_roll"]
    assert _classify(img[_px(roll, 1.0, 76)]) == "melody"
    assert _classify(img[_px(roll, 1.0, 64)]) == "chord"
    assert _classify(img[_px(roll, 3.0, 57)]) == "chord"
    assert _classify(img[_px(roll, 1.0, 36)]) == "bass"
    assert _classify(img[_px(roll, 3.0, 33)]) == "bass"
    assert _classify(img[_px(roll, 3.0, 76)]) == "white"  # the melody note ended at 1.5 s
    assert _classify(img[_px(roll, 1.0, 48)]) == "white"  # nothing there
    assert synthetic["drawn"]["chord_names"] == ["C", "Am"]
    chords = _region(img, synthetic["drawn"]["panels"]["chords"])
    dark_text = np.count_nonzero(chords.mean(axis=2) < 0.6)
    assert dark_text > 40  # the chord names are written in the strip


def test_emotion_path_is_drawn_on_the_plane(synthetic: dict[str, Any]) -> None:
    img, emo = synthetic["img"], synthetic["drawn"]["panels"]["emotion"]
    points = [(e["valence"], e["arousal"]) for e in synthetic["report"]["emotion"]]
    for (v0, a0), (v1, a1) in zip(points, points[1:]):
        # the middle of each leg is on the coloured path: saturated, not white or grey
        r, c = _px(emo, (v0 + v1) / 2, (a0 + a1) / 2)
        patch = img[r - 2 : r + 3, c - 2 : c + 3]
        saturation = patch.max(axis=2) - patch.min(axis=2)
        assert float(saturation.max()) > 0.3, patch
    empty = img[_px(emo, 0.9, -0.95)]  # a corner where no path or thesaurus emotion lies
    assert np.all(empty > 0.95)
    region = _region(img, emo)
    assert np.count_nonzero(region.mean(axis=2) < 0.5) > 200  # names, markers, the path


def test_a_real_run_plots_from_its_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    midi, report_path, png = tmp_path / "demo.mid", tmp_path / "demo.json", tmp_path / "demo.png"
    report = run_file(default_config(), DEMO, midi, report_path)
    assert plot.plot_main(report_path, midi, png) == 0
    said = capsys.readouterr().out
    assert f"({report['notes']} notes" in said
    img = _load(png)
    drawn_panels = plot.plot_run(report, midi, None, tmp_path / "again.png")["panels"]
    spec_region = _region(img, drawn_panels["spectrogram"])
    assert np.mean(np.all(spec_region > 0.97, axis=2)) < 0.02 and spec_region.std() > 0.1
    roll = _region(img, drawn_panels["piano_roll"])
    for voice in ("melody", "chord", "bass"):  # the demo run plays all three voices
        assert _count_colour(roll, VOICE_RGB[voice], tol=0.25) > 50, voice


def test_missing_audio_is_said_in_the_picture(synthetic: dict[str, Any], tmp_path: Path) -> None:
    report = dict(synthetic["report"], source={"path": str(tmp_path / "gone.wav")})
    out = tmp_path / "nowav.png"
    drawn = plot.plot_run(report, synthetic["out"].with_suffix(".mid"), None, out)
    img = _load(out)
    region = _region(img, drawn["panels"]["spectrogram"])
    assert np.mean(np.all(region > 0.97, axis=2)) > 0.9  # no spectrogram painted ...
    assert np.count_nonzero(region.mean(axis=2) < 0.5) > 30  # ... but a message written there
    assert drawn["notes"] == 9


def test_plot_command_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(KellyEdgeError, match="report not found"):
        plot.plot_main(tmp_path / "none.json", tmp_path / "x.mid", tmp_path / "x.png")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(KellyEdgeError, match="not a JSON run report"):
        plot.plot_main(bad, tmp_path / "x.mid", tmp_path / "x.png")
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"emotion": []}))
    with pytest.raises(KellyEdgeError, match="file not found"):
        plot.plot_main(ok, tmp_path / "missing.mid", tmp_path / "x.png")
    with pytest.raises(KellyEdgeError, match="does not exist"):
        plot.plot_main(ok, tmp_path / "missing.mid", tmp_path / "no" / "x.png")


# --- the pieces -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pitches", "name"),
    [
        ([60, 64, 67], "C"),
        ([64, 67, 72], "C"),  # an inversion is the same chord
        ([57, 60, 64], "Am"),
        ([55, 59, 62, 65], "G7"),
        ([62, 65, 69, 72], "Dm7"),
        ([59, 62, 65], "Bdim"),
        ([56, 60, 63], "Ab"),
        ([61, 64, 68], "C#m"),
        ([60, 67], "C"),  # an open fifth reads as the chord on its lowest note
        ([62], "D"),
        ([], "N.C."),
    ],
)
def test_chords_are_named_in_the_spec_vocabulary(pitches: list[int], name: str) -> None:
    assert plot.name_chord(pitches) == name


def test_chord_segments_follow_the_chord_channel_only() -> None:
    n = plot.Note
    notes = [n(2, 60, 0.0, 2.0, 90), n(2, 64, 0.0, 2.0, 90), n(2, 67, 0.001, 2.0, 90),  # one tick late
             n(2, 60, 2.0, 4.0, 90), n(2, 64, 2.0, 4.0, 90), n(2, 67, 2.0, 4.0, 90),  # struck again: same chord
             n(2, 57, 4.0, 5.0, 90), n(2, 60, 4.0, 5.0, 90), n(2, 64, 4.0, 5.0, 90),
             n(1, 61, 0.0, 5.0, 90)]  # the melody's C# must not colour the chord names
    assert plot.chord_segments(notes, channel=2) == [(0.0, 4.0, "C"), (4.0, 5.0, "Am")]


def test_notes_pair_ons_with_offs() -> None:
    events = [(0.0, bytes((0x90, 60, 100))), (0.5, bytes((0x90, 60, 0))),  # velocity 0 ends it
              (1.0, bytes((0x91, 62, 80))), (1.5, bytes((0x91, 62, 70))),  # retriggered: the first ends
              (2.0, bytes((0x81, 62, 0))), (2.5, bytes((0xB0, 1, 64)))]
    got = plot.notes_from_events(events)
    assert got == [plot.Note(1, 60, 0.0, 0.5, 100), plot.Note(2, 62, 1.0, 1.5, 80), plot.Note(2, 62, 1.5, 2.0, 70)]


def test_mel_spectrogram_is_the_runtime_extractor(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    audio = 0.1 * rng.standard_normal(220 * 50)  # 50 whole hops at 22.05 kHz
    wav = tmp_path / "n.wav"
    write_wav(wav, audio, RATE, bits=32, is_float=True)
    frames, duration = plot.mel_spectrogram(wav)
    ex = MelExtractor(sample_rate=RATE)
    h = ex.hop_length
    expected = np.stack([ex.push(audio[k : k + h].astype(np.float32)).copy() for k in range(0, audio.size, h)], axis=1)
    assert duration == pytest.approx(audio.size / RATE)
    np.testing.assert_allclose(frames, expected, atol=1e-4)
    pooled, _ = plot.mel_spectrogram(wav, max_columns=10)  # 50 frames -> 10 columns of 5
    np.testing.assert_allclose(pooled, expected.reshape(128, 10, 5).mean(axis=2), atol=1e-3)


def test_the_live_loop_never_imports_plotting() -> None:
    code = (
        "import sys\n"
        "import kelly_edge.engine.engine, kelly_edge.engine.offline, kelly_edge.status.server, "
        "kelly_edge.status.snapshot, kelly_edge.status.client, kelly_edge.status.monitor, kelly_edge.cli\n"
        "try:\n    import kelly_edge.live\nexcept ImportError:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'kelly_edge') and "
        "(m.startswith('matplotlib') or m.startswith('kelly_edge.viz'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]"


def test_the_box_chords_are_drawn_under_the_players(tmp_path: Path, synthetic: dict[str, Any]) -> None:
    report = dict(synthetic["report"], chords=[{"t": 0.0, "chord": "N.C."}, {"t": 0.5, "chord": "F"},
                                               {"t": 2.5, "chord": "G7"}])
    midi = synthetic["out"].with_suffix(".mid")
    annotation = tmp_path / "player.json"
    annotation.write_text('{"chords": [{"t": 0.0, "chord": "C"}, {"t": 2.0, "chord": "Am"}]}')
    out = tmp_path / "both.png"
    assert plot.plot_main(_write(tmp_path, report), midi, out, annotation) == 0
    drawn = plot.plot_run(report, midi, None, out, player_chords=plot.load_player_chords(annotation))
    assert drawn["chord_names"] == ["F", "G7"]  # the box's chords come from the report, N.C. left out
    assert drawn["player_chord_names"] == ["C", "Am"]
    player, box = drawn["panels"]["player_chords"]["box"], drawn["panels"]["chords"]["box"]
    assert player[3] <= box[1] + 1  # the player's strip is above the box's
    img = _load(out)
    for panel in (player, box):
        region = img[int(panel[1]) : int(panel[3]), int(panel[0]) : int(panel[2])]
        assert np.count_nonzero(region.mean(axis=2) < 0.6) > 40  # names written in both strips


def test_a_bad_chord_annotation_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"time": 1}]')
    with pytest.raises(plot.PlotError, match="expected a list of"):
        plot.load_player_chords(bad)


def _write(folder: Path, report: dict[str, Any]) -> Path:
    path = folder / "report.json"
    path.write_text(json.dumps(report))
    return path


def test_annotation_labels_are_shown_as_the_box_names_chords() -> None:
    changes = [{"t": 0.0, "chord": "A:min"}, {"t": 1.0, "chord": "G:7"}, {"t": 2.0, "chord": "N"}, {"t": 3.0, "chord": "C:maj"}]
    assert plot.segments_of_changes(changes, 4.0) == [(0.0, 1.0, "Am"), (1.0, 2.0, "G7"), (3.0, 4.0, "C")]
