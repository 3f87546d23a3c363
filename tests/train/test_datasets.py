"""DEAM and EMOPIA readers on tiny fixtures written in those datasets' formats."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import mido
import numpy as np
import pytest

from tools.datasets.common import DatasetError
from tools.datasets.deam import load_deam, scale_1_9
from tools.datasets.emopia import load_emopia, quadrant_va


def _wav(path: Path, seconds: float = 0.5, freq: float = 440.0, sr: int = 22050) -> None:
    t = np.arange(int(seconds * sr)) / sr
    pcm = (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())


def _midi(path: Path, notes: list[int]) -> None:
    track = mido.MidiTrack()
    for n in notes:
        track.append(mido.Message("note_on", note=n, velocity=70, time=0))
        track.append(mido.Message("note_off", note=n, velocity=0, time=240))
    mf = mido.MidiFile(ticks_per_beat=480)
    mf.tracks.append(track)
    mf.save(str(path))


@pytest.fixture
def deam(tmp_path: Path) -> Path:
    root = tmp_path / "DEAM"
    audio = root / "MEMD_audio"
    ann = root / "annotations" / "annotations averaged per song" / "song_level"
    audio.mkdir(parents=True)
    ann.mkdir(parents=True)
    _wav(audio / "2.wav", freq=330.0)
    _wav(audio / "3.wav", freq=262.0)
    (audio / "4.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + os.urandom(32))  # corrupt
    # the released CSVs put a space before each header name and value
    (ann / "static_annotations_averaged_songs_1_2000.csv").write_text(
        "song_id, valence_mean, valence_std, arousal_mean, arousal_std\n"
        "2, 7.0, 1.1, 3.0, 0.9\n"
        "3, 5.0, 1.0, 9.0, 1.2\n"
        "4, 4.0, 1.0, 4.0, 1.0\n"
        "5, 6.0, 1.0, 6.0, 1.0\n"  # no audio
    )
    return root


def test_deam_reads_ratings_and_scales_them(deam: Path) -> None:
    songs, report = load_deam(deam)
    by_id = {s.song_id: s for s in songs}
    assert set(by_id) == {"2", "3"}
    assert by_id["2"].valence == pytest.approx(0.5) and by_id["2"].arousal == pytest.approx(-0.5)
    assert by_id["3"].valence == pytest.approx(0.0) and by_id["3"].arousal == pytest.approx(1.0)
    assert by_id["2"].path.name == "2.wav"
    assert report.skipped == 2  # the corrupt wav and the song without audio
    assert "4.wav" in " ".join(report.examples)


def test_deam_scale_is_monotonic_and_bounded() -> None:
    vals = [scale_1_9(x) for x in (1, 3, 5, 7, 9, 12)]
    assert vals == sorted(vals)
    assert vals[0] == -1.0 and vals[2] == 0.0 and vals[-1] == 1.0


def test_deam_missing_root_and_missing_annotations(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_deam(tmp_path / "nowhere")
    (tmp_path / "bare" / "MEMD_audio").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no annotations"):
        load_deam(tmp_path / "bare")


def test_deam_all_audio_corrupt_is_nothing_usable(deam: Path) -> None:
    for p in (deam / "MEMD_audio").glob("*.wav"):
        p.write_bytes(b"broken")
    with pytest.raises(DatasetError, match="no usable songs"):
        load_deam(deam)


@pytest.fixture
def emopia(tmp_path: Path) -> Path:
    root = tmp_path / "EMOPIA_1.0"
    midis = root / "midis"
    midis.mkdir(parents=True)
    _midi(midis / "Q1_aaaa_0.mid", [60, 64, 67, 72])
    _midi(midis / "Q3_bbbb_1.mid", [57, 60, 64, 57])
    _midi(midis / "Q4_dddd_2.mid", [65, 69, 72])  # not in label.csv: quadrant from the name
    (midis / "Q2_cccc_0.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01" + os.urandom(40))  # corrupt
    (root / "label.csv").write_text("ID,4Q,annotator\nQ1_aaaa_0,1,a1\nQ3_bbbb_1,3,a2\nQ2_cccc_0,2,a1\n")
    return root


def test_emopia_quadrants_become_valence_arousal_signs(emopia: Path) -> None:
    clips, report = load_emopia(emopia)
    by_id = {c.clip_id: c for c in clips}
    assert set(by_id) == {"Q1_aaaa_0", "Q3_bbbb_1", "Q4_dddd_2"}
    assert by_id["Q1_aaaa_0"].valence > 0 and by_id["Q1_aaaa_0"].arousal > 0
    assert by_id["Q3_bbbb_1"].valence < 0 and by_id["Q3_bbbb_1"].arousal < 0
    assert by_id["Q4_dddd_2"].quadrant == 4 and by_id["Q4_dddd_2"].arousal < 0 < by_id["Q4_dddd_2"].valence
    assert report.skipped == 1 and "Q2_cccc_0" in report.summary()


def test_emopia_quadrant_map_covers_the_circumplex() -> None:
    signs = {q: tuple(np.sign(quadrant_va(q))) for q in (1, 2, 3, 4)}
    assert signs == {1: (1, 1), 2: (-1, 1), 3: (-1, -1), 4: (1, -1)}


def test_emopia_missing_or_empty(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_emopia(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no .mid"):
        load_emopia(tmp_path / "empty")


def test_emopia_rows_are_built_with_the_runtime_features(emopia: Path) -> None:
    """Clips render, go through the runtime FeatureContext and keep their quadrant labels."""
    from tools.train.build_audio import emotion_from_labelled

    clips, _ = load_emopia(emopia)
    ds, report = emotion_from_labelled(
        [(c.path, c.valence, c.arousal) for c in clips], render=True, warmup_s=0.5, every_s=0.25, max_seconds=3.0
    )
    assert len(ds) > 0 and report.skipped == 0
    assert ds.x.shape[1] == 128 and ds.y.shape[1] == 64
    for g, clip in enumerate(clips):
        rows = ds.y[ds.groups == g]
        assert np.all(np.sign(rows[:, 0]) == np.sign(clip.valence))


def test_deam_rows_through_the_pipeline_keep_their_ratings(deam: Path) -> None:
    """``--deam``: audio goes through the runtime features; rows carry the song's rated valence/arousal."""
    from tools.train import pipeline

    for sid, freq in (("2", 330.0), ("3", 262.0)):
        _wav(deam / "MEMD_audio" / f"{sid}.wav", seconds=6.5, freq=freq)
    ds = pipeline.labelled_emotion(deam, None, pipeline.Plan.smoke())
    assert len(ds) > 0 and ds.x.shape[1] == 128
    assert ds.info["skipped_files"] == 2
    assert set(np.round(ds.y[:, 0], 3)) == {0.5, 0.0}  # valence of songs 2 and 3
    assert "DEAM" in ds.info["source"]
