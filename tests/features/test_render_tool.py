"""tools/render.py: MIDI preparation, FluidSynth rendering and WAV reading."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import mido
import music21
import numpy as np
import pytest

from tools.render import RenderError, load_wav_mono, prepare_midi, render_midi, render_score


def _score(pitches: list[str], *, bpm: float | None = None, ql: float = 1.0) -> music21.stream.Score:
    part = music21.stream.Part()
    if bpm is not None:
        part.append(music21.tempo.MetronomeMark(number=bpm))
    for p in pitches:
        part.append(music21.note.Note(p, quarterLength=ql))
    score = music21.stream.Score()
    score.insert(0, part)
    return score


def _midi(tmp_path: Path, pitches: list[str], **kw) -> Path:
    path = tmp_path / "in.mid"
    mf = music21.midi.translate.streamToMidiFile(_score(pitches, **kw))
    mf.open(str(path), "wb")
    mf.write()
    mf.close()
    return path


def _sounding_seconds(y: np.ndarray, rate: int, threshold: float = 1e-3) -> float:
    loud = np.nonzero(np.abs(y) > threshold)[0]
    return 0.0 if loud.size == 0 else (loud[-1] - loud[0]) / rate


def _timed(data: bytes) -> list[tuple[float, mido.Message]]:
    """Messages of a MIDI file (bytes) with absolute times in seconds (mido reads it back)."""
    out, t = [], 0.0
    for msg in mido.MidiFile(file=io.BytesIO(data)):  # mido yields delta seconds
        t += msg.time
        out.append((t, msg))
    return out


def test_prepare_midi_applies_every_option(tmp_path: Path) -> None:
    path = _midi(tmp_path, ["C4", "E4", "G4", "C5"], bpm=120.0)
    src = mido.MidiFile(str(path))
    out = prepare_midi(path, program=40, tempo_bpm=60.0, transpose=2, velocity_scale=0.5, max_seconds=None)
    events = _timed(out)
    notes_on = [(t, m) for t, m in events if m.type == "note_on" and m.velocity > 0]
    assert [m.note for _, m in notes_on] == [62, 66, 69, 74]
    assert [round(t, 3) for t, _ in notes_on] == [0.0, 1.0, 2.0, 3.0]  # quarters at 60 BPM
    original_vel = [m.velocity for m in src.tracks[1] if m.type == "note_on" and m.velocity > 0][0]
    assert notes_on[0][1].velocity == max(1, round(original_vel * 0.5))
    programs = {m.channel: m.program for _, m in events if m.type == "program_change"}
    assert programs and set(programs.values()) == {40}
    last = [m for _, m in events if m.type == "control_change"]
    assert {(m.channel, m.control) for m in last} == {(c, cc) for c in range(16) for cc in (120, 123)}
    end_cc = max(t for t, m in events if m.type == "control_change")
    assert end_cc == pytest.approx(4.5, abs=0.01)  # last note-off at 4 s + 0.5 s of release


def test_prepare_midi_cuts_at_max_seconds_and_keeps_the_tempo_map(tmp_path: Path) -> None:
    out = prepare_midi(_midi(tmp_path, ["C4"] * 8, bpm=120.0), program=None, tempo_bpm=None, transpose=0, velocity_scale=1.0, max_seconds=1.6)
    events = _timed(out)
    onsets = [round(t, 3) for t, m in events if m.type == "note_on" and m.velocity > 0]
    assert onsets == [0.0, 0.5, 1.0, 1.5]
    assert max(t for t, _ in events) <= 1.6 + 1e-3
    assert not any(m.type == "program_change" and m.program != 0 for _, m in events)


def test_render_score_makes_a_wav_at_the_rate(tmp_path: Path) -> None:
    wav = render_score(_score(["C4", "E4", "G4", "C5"], bpm=120.0), tmp_path / "out" / "s.wav", sample_rate=16000)
    assert wav.is_file() and wav.with_suffix(".mid").is_file()
    with wave.open(str(wav), "rb") as r:
        assert r.getframerate() == 16000
    y, rate = load_wav_mono(wav)
    assert rate == 16000 and y.dtype == np.float32
    assert 0.01 < float(np.sqrt(np.mean(y**2))) < 1.0
    assert 1.8 < _sounding_seconds(y, rate) < 3.5  # 2 s of notes, a release tail, then silence


def test_render_options_change_the_sound(tmp_path: Path) -> None:
    base = _score(["A4", "A4", "A4", "A4"], bpm=120.0)
    y0, rate = load_wav_mono(render_score(base, tmp_path / "a.wav"))
    y_up, _ = load_wav_mono(render_score(base, tmp_path / "b.wav", transpose=3))
    y_slow, _ = load_wav_mono(render_score(base, tmp_path / "c.wav", tempo_bpm=60.0))
    y_soft, _ = load_wav_mono(render_score(base, tmp_path / "d.wav", velocity_scale=0.3))
    y_cut, _ = load_wav_mono(render_score(base, tmp_path / "e.wav", max_seconds=0.75))

    def peak_hz(y: np.ndarray) -> float:
        seg = y[int(0.2 * rate) : int(0.2 * rate) + 8192]
        spec = np.abs(np.fft.rfft(seg * np.hanning(seg.size)))
        return float(np.argmax(spec)) * rate / seg.size

    assert peak_hz(y0) == pytest.approx(440.0, rel=0.02)
    assert peak_hz(y_up) == pytest.approx(523.25, rel=0.02)  # C5
    assert _sounding_seconds(y_slow, rate) > 1.6 * _sounding_seconds(y0, rate)
    assert np.sqrt(np.mean(y_soft**2)) < 0.7 * np.sqrt(np.mean(y0**2))
    assert y_cut.size <= int(0.75 * rate) + 1


def test_render_midi_of_an_existing_file(tmp_path: Path) -> None:
    wav = render_midi(_midi(tmp_path, ["G3", "B3", "D4"]), tmp_path / "m.wav", sample_rate=22050, program=0)
    y, rate = load_wav_mono(wav)
    assert rate == 22050 and float(np.abs(y).max()) > 0.01


def test_corpus_path(tmp_path: Path) -> None:
    y, rate = load_wav_mono(render_score("bach/bwv66.6", tmp_path / "c.wav", max_seconds=2.0))
    assert y.size == pytest.approx(2.0 * rate, abs=2) and float(np.abs(y).max()) > 0.01


def test_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RenderError, match="corpus"):
        render_score("no/such/piece-xyz", tmp_path / "x.wav")
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not a midi file")
    with pytest.raises(RenderError, match="bad.mid"):
        render_midi(bad, tmp_path / "x.wav")
    good = _midi(tmp_path, ["C4"])
    monkeypatch.setenv("KELLY_SOUNDFONT", str(tmp_path / "missing.sf2"))
    with pytest.raises(RenderError, match="soundfont"):
        render_midi(good, tmp_path / "x.wav")
    monkeypatch.delenv("KELLY_SOUNDFONT")
    monkeypatch.setenv("PATH", str(tmp_path))  # no fluidsynth here
    with pytest.raises(RenderError, match="fluidsynth"):
        render_midi(good, tmp_path / "x.wav")


def test_load_wav_mono_widths(tmp_path: Path) -> None:
    t = np.arange(1000) / 8000
    left, right = 0.5 * np.sin(2 * np.pi * 100 * t), 0.25 * np.sin(2 * np.pi * 100 * t)
    for width, scale, dtype in ((2, 32767, "<i2"), (4, 2**31 - 1, "<i4")):
        path = tmp_path / f"w{width}.wav"
        frames = np.stack([left, right], axis=1) * scale
        with wave.open(str(path), "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(width)
            w.setframerate(8000)
            w.writeframes(np.round(frames).astype(dtype).tobytes())
        y, rate = load_wav_mono(path)
        assert rate == 8000 and y.shape == (1000,)
        np.testing.assert_allclose(y, (left + right) / 2, atol=1e-4)
    with pytest.raises(RenderError):
        load_wav_mono(tmp_path / "nope.wav")


def test_prepare_midi_follows_a_tempo_change(tmp_path: Path) -> None:
    part = music21.stream.Part()
    part.append(music21.tempo.MetronomeMark(number=120))
    part.append([music21.note.Note("C4") for _ in range(4)])
    part.append(music21.tempo.MetronomeMark(number=60))
    part.append([music21.note.Note("D4") for _ in range(2)])
    score = music21.stream.Score()
    score.insert(0, part)
    path = tmp_path / "tempo.mid"
    mf = music21.midi.translate.streamToMidiFile(score)
    mf.open(str(path), "wb")
    mf.write()
    mf.close()
    events = _timed(prepare_midi(path))
    onsets = [round(t, 3) for t, m in events if m.type == "note_on" and m.velocity > 0]
    assert onsets == [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]
