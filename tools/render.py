"""Render symbolic music to audio with FluidSynth: test signals, training audio and demo input.

``render_score`` takes a music21 score (or a corpus path such as ``"bach/bwv66.6"``), writes a
MIDI file and renders it with the ``fluidsynth`` command line under a timeout. ``render_midi``
does the same for an existing MIDI file. Both flatten the file to one track with a fixed time
base first, which makes the options simple and exact: one GM program for every melodic
channel, a constant tempo, a transposition, a velocity scale, a cut at ``max_seconds`` and, at
the very end, CC120 (all sound off) + CC123 (all notes off) on all 16 channels so FluidSynth's
file renderer stops instead of ringing on.

Dependencies: music21 (scores, and reading MIDI files), numpy (WAV reading), and the
``fluidsynth`` binary with a GM soundfont (Debian: ``fluidsynth`` and ``fluid-soundfont-gm``).
The rewritten MIDI file is written by a few lines here, so nothing else is needed.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np

from kelly_edge.errors import KellyEdgeError

if TYPE_CHECKING:  # music21 is imported lazily: it is slow to import
    import music21

log = logging.getLogger(__name__)

SOUNDFONT_NAMES = ("FluidR3_GM.sf2", "TimGM6mb.sf2")
"""Soundfonts looked for, best first."""
SOUNDFONT_DIRS = (
    "/usr/share/sounds/sf2",
    "/usr/share/soundfonts",
    "/usr/local/share/soundfonts",
    "/usr/share/sounds/sf3",
)
SOUNDFONT_ENV = "KELLY_SOUNDFONT"
"""Environment variable naming a soundfont file; overrides the search."""

DRUM_CHANNEL = 9  # GM channel 10: never transposed or re-programmed
_OUT_TPB = 960  # ticks per beat of the rewritten file
_OUT_TEMPO = 1_000_000  # µs per beat: 60 BPM, so one tick is 1/960 s
_TAIL_S = 0.5  # release time left before the final all-sound-off


class RenderError(KellyEdgeError, RuntimeError):
    """Rendering failed: FluidSynth or a soundfont missing, a bad score or MIDI file, a timeout."""


def find_soundfont() -> Path:
    """Path of the GM soundfont: ``$KELLY_SOUNDFONT``, else FluidR3_GM.sf2, else TimGM6mb.sf2."""
    env = os.environ.get(SOUNDFONT_ENV)
    if env:
        path = Path(env)
        if not path.is_file():
            raise RenderError(f"{SOUNDFONT_ENV}={env} is not a file (point it at a .sf2 soundfont)")
        return path
    for name in SOUNDFONT_NAMES:
        for folder in SOUNDFONT_DIRS:
            path = Path(folder) / name
            if path.is_file():
                return path
    raise RenderError(
        f"no GM soundfont found ({' or '.join(SOUNDFONT_NAMES)} in {', '.join(SOUNDFONT_DIRS)}): "
        f"install Debian's fluid-soundfont-gm or set {SOUNDFONT_ENV}"
    )


def find_fluidsynth() -> str:
    """Path of the ``fluidsynth`` executable."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise RenderError("fluidsynth not found on PATH: install it (Debian: apt-get install fluidsynth)")
    return exe


_NOTE_OFF, _NOTE_ON, _CONTROL, _PROGRAM = 0x80, 0x90, 0xB0, 0xC0


def _read_midi(midi_path: Path) -> tuple[int, list[tuple[int, int, bytes]], list[tuple[int, int]]]:
    """``(ticks_per_beat, channel events, tempo changes)`` of a MIDI file, via music21's reader.

    Channel events are ``(tick, order, raw bytes)`` with the status byte first; ``order`` keeps
    the file order of simultaneous events (a note-off before the next note-on). Tempo changes are
    ``(tick, µs per beat)``.
    """
    from music21 import midi as m21midi  # lazy: music21 is slow to import

    mf = m21midi.MidiFile()
    try:
        mf.open(str(midi_path), "rb")
        try:
            mf.read()
        finally:
            mf.close()
    except Exception as err:  # music21 raises MidiException, IndexError, ... on garbage
        raise RenderError(f"cannot read MIDI file {midi_path}: {err}") from err
    tpb = mf.ticksPerQuarterNote
    if not isinstance(tpb, int) or tpb <= 0:
        raise RenderError(f"{midi_path}: SMPTE time division is not supported (need ticks per beat)")
    events: list[tuple[int, int, bytes]] = []
    tempos: list[tuple[int, int]] = []
    order = 0
    for track in mf.tracks:
        tick = 0
        for ev in track.events:
            if ev.isDeltaTime():
                tick += int(ev.time or 0)
                continue
            order += 1
            if ev.isChannelEvent():
                raw = ev.getBytes()
                if raw and raw[0] & 0xF0 != 0xF0:
                    events.append((tick, order, bytes(raw)))
            elif int(ev.type) == 0x51 and isinstance(ev.data, bytes) and len(ev.data) == 3:
                tempos.append((tick, int.from_bytes(ev.data, "big")))
    events.sort(key=lambda e: (e[0], e[1]))
    tempos.sort()
    return tpb, events, tempos


def _seconds_of_ticks(tpb: int, tempos: list[tuple[int, int]], tempo_bpm: float | None) -> Callable[[int], float]:
    """A function tick -> seconds under the tempo map (or a constant ``tempo_bpm``)."""
    if tempo_bpm is not None:
        spt = 60.0 / tempo_bpm / tpb
        return lambda tick: tick * spt
    marks: list[tuple[int, float, int]] = []  # (tick, seconds at tick, µs per beat from there)
    seconds, last_tick, tempo = 0.0, 0, 500_000  # MIDI default: 120 BPM
    for tick, new in tempos:
        seconds += (tick - last_tick) * tempo / 1e6 / tpb
        marks.append((tick, seconds, new))
        last_tick, tempo = tick, new

    def convert(tick: int) -> float:
        base_tick, base_s, us = 0, 0.0, 500_000
        for m_tick, m_s, m_us in marks:
            if m_tick > tick:
                break
            base_tick, base_s, us = m_tick, m_s, m_us
        return base_s + (tick - base_tick) * us / 1e6 / tpb

    return convert


def _vlq(n: int) -> bytes:
    """MIDI variable-length quantity."""
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def _type0_file(events: list[tuple[float, bytes]]) -> bytes:
    """A format-0 MIDI file of ``(seconds, raw channel message)`` at 960 ticks per second."""
    track = bytearray(_vlq(0) + b"\xff\x51\x03" + _OUT_TEMPO.to_bytes(3, "big"))
    ticks_per_s = _OUT_TPB * 1e6 / _OUT_TEMPO
    last = 0
    for t, raw in events:
        tick = max(last, round(t * ticks_per_s))
        track += _vlq(tick - last) + raw
        last = tick
    track += _vlq(0) + b"\xff\x2f\x00"
    header = b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big") + _OUT_TPB.to_bytes(2, "big")
    return header + b"MTrk" + len(track).to_bytes(4, "big") + bytes(track)


def prepare_midi(
    midi_path: str | os.PathLike[str],
    *,
    program: int | None = None,
    tempo_bpm: float | None = None,
    transpose: int = 0,
    velocity_scale: float = 1.0,
    max_seconds: float | None = None,
) -> bytes:
    """The MIDI file that gets rendered (bytes): a format-0 copy of ``midi_path``, options applied.

    Fixed time base (960 ticks per beat at 60 BPM, so 960 ticks per second); ``program`` replaces
    every melodic channel's program (None keeps them); ``tempo_bpm`` replaces the tempo map;
    ``transpose`` shifts melodic notes (ones pushed off 0..127 are dropped); note-on velocities
    are scaled (1..127); events at or after ``max_seconds`` are dropped; CC120 and CC123 on all
    16 channels close the file, ``0.5 s`` after the last event (or at ``max_seconds``).
    """
    if tempo_bpm is not None and not tempo_bpm > 0:
        raise RenderError(f"tempo_bpm must be positive, got {tempo_bpm}")
    if program is not None and not 0 <= program <= 127:
        raise RenderError(f"program must be a GM program 0..127, got {program}")
    tpb, events, tempos = _read_midi(Path(midi_path))
    seconds = _seconds_of_ticks(tpb, tempos, tempo_bpm)
    channels = sorted({raw[0] & 0x0F for _, _, raw in events})
    kept: list[tuple[float, bytes]] = []
    if program is not None:
        kept.extend((0.0, bytes((_PROGRAM | c, program))) for c in channels if c != DRUM_CHANNEL)
    end = 0.0
    for tick, _, raw in events:
        t = seconds(tick)
        if max_seconds is not None and t >= max_seconds:
            break
        kind, channel = raw[0] & 0xF0, raw[0] & 0x0F
        melodic = channel != DRUM_CHANNEL
        if kind == _PROGRAM and program is not None and melodic:
            continue
        if kind in (_NOTE_ON, _NOTE_OFF) and len(raw) >= 3:
            note, velocity = raw[1], raw[2]
            if melodic and transpose:
                note += transpose
                if not 0 <= note <= 127:
                    continue  # transposed off the keyboard: dropped (its note-off is dropped too)
            if kind == _NOTE_ON and velocity > 0 and velocity_scale != 1.0:
                velocity = int(min(127, max(1, round(velocity * velocity_scale))))
            raw = bytes((raw[0], note, velocity))
        kept.append((t, raw))
        end = t
    stop = end + _TAIL_S if max_seconds is None else min(end + _TAIL_S, max_seconds)
    for c in range(16):
        kept.append((stop, bytes((_CONTROL | c, 120, 0))))
        kept.append((stop, bytes((_CONTROL | c, 123, 0))))
    return _type0_file(kept)


def _fluidsynth(midi_path: Path, wav_path: Path, *, sample_rate: int, gain: float, timeout_s: float) -> None:
    exe = find_fluidsynth()
    sf2 = find_soundfont()
    cmd = [exe, "-ni", "-q", "-g", f"{gain:g}", "-F", str(wav_path), "-r", str(int(sample_rate)), "-T", "wav", str(sf2), str(midi_path)]
    log.debug("rendering: %s", cmd)
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as err:
        raise RenderError(f"fluidsynth did not finish {midi_path} within {timeout_s:g} s (raise timeout_s or set max_seconds)") from err
    if proc.returncode != 0 or not wav_path.is_file() or wav_path.stat().st_size <= 44:
        detail = (proc.stderr or proc.stdout).decode(errors="replace").strip().splitlines()
        raise RenderError(f"fluidsynth failed on {midi_path} (exit {proc.returncode}): {detail[-1] if detail else 'no output'}")


def _trim_wav(wav_path: Path, max_seconds: float) -> None:
    with wave.open(str(wav_path), "rb") as r:
        params = r.getparams()
        keep = min(params.nframes, int(round(max_seconds * params.framerate)))
        if keep >= params.nframes:
            return
        data = r.readframes(keep)
    with wave.open(str(wav_path), "wb") as w:
        w.setparams(params)
        w.writeframes(data)


def render_midi(
    midi_path: str | os.PathLike[str],
    wav_path: str | os.PathLike[str],
    *,
    sample_rate: int = 22050,
    program: int | None = None,
    tempo_bpm: float | None = None,
    transpose: int = 0,
    velocity_scale: float = 1.0,
    gain: float = 0.8,
    max_seconds: float | None = None,
    timeout_s: float = 60.0,
) -> Path:
    """Render an existing MIDI file to a 16-bit stereo WAV; returns ``wav_path``.

    ``program`` None keeps the file's instruments; otherwise every melodic channel plays that
    GM program (0 = piano). ``tempo_bpm`` None keeps the file's tempo map. ``transpose`` is in
    semitones (drums untouched). The WAV is at most ``max_seconds`` long.
    """
    midi_path, wav_path = Path(midi_path), Path(wav_path)
    if not midi_path.is_file():
        raise RenderError(f"MIDI file {midi_path} does not exist")
    prepared = prepare_midi(
        midi_path, program=program, tempo_bpm=tempo_bpm, transpose=transpose, velocity_scale=velocity_scale, max_seconds=max_seconds
    )
    wav_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kelly-render-") as tmp:
        flat = Path(tmp) / "render.mid"
        flat.write_bytes(prepared)
        _fluidsynth(flat, wav_path, sample_rate=sample_rate, gain=gain, timeout_s=timeout_s)
    if max_seconds is not None:
        _trim_wav(wav_path, max_seconds)
    return wav_path


def render_score(
    score: "music21.stream.Score | str",
    wav_path: str | os.PathLike[str],
    *,
    sample_rate: int = 22050,
    program: int = 0,
    tempo_bpm: float | None = None,
    transpose: int = 0,
    velocity_scale: float = 1.0,
    gain: float = 0.8,
    max_seconds: float | None = None,
    timeout_s: float = 60.0,
) -> Path:
    """Render a music21 score (or corpus path like ``"bach/bwv66.6"``) to WAV; returns ``wav_path``.

    The MIDI file music21 writes is kept beside the WAV (``wav_path`` with suffix ``.mid``,
    before the render options are applied) so the symbolic source of the audio stays at hand.
    """
    import music21  # lazy: importing music21 takes a second

    if isinstance(score, str):
        try:
            score = music21.corpus.parse(score)
        except Exception as err:  # music21 raises many kinds for a bad path
            raise RenderError(f"cannot load music21 corpus piece {score!r}: {err}") from err
    wav_path = Path(wav_path)
    wav_path.parent.mkdir(parents=True, exist_ok=True)
    midi_path = wav_path.with_suffix(".mid")
    try:
        mf = music21.midi.translate.streamToMidiFile(score)  # type: ignore[arg-type]
        mf.open(str(midi_path), "wb")
        try:
            mf.write()
        finally:
            mf.close()
    except Exception as err:
        raise RenderError(f"music21 could not write MIDI for {score}: {err}") from err
    return render_midi(
        midi_path,
        wav_path,
        sample_rate=sample_rate,
        program=program,
        tempo_bpm=tempo_bpm,
        transpose=transpose,
        velocity_scale=velocity_scale,
        gain=gain,
        max_seconds=max_seconds,
        timeout_s=timeout_s,
    )


def load_wav_mono(wav_path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Read a PCM WAV (8/16/24/32-bit) as mono ``(n,) float32`` in -1..1, plus its sample rate."""
    try:
        with wave.open(str(wav_path), "rb") as r:
            n_ch, width, rate, n = r.getnchannels(), r.getsampwidth(), r.getframerate(), r.getnframes()
            raw = r.readframes(n)
    except (OSError, EOFError, wave.Error) as err:
        raise RenderError(f"cannot read WAV {wav_path}: {err}") from err
    if width == 1:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        x = v.astype(np.float32) / float(1 << 23)
    elif width == 4:
        x = np.frombuffer(raw, dtype="<i4").astype(np.float32) / float(1 << 31)
    else:
        raise RenderError(f"{wav_path}: unsupported sample width {width} bytes")
    x = x[: (x.size // n_ch) * n_ch].reshape(-1, n_ch).mean(axis=1, dtype=np.float32)
    return x, rate


def iter_hops(x: np.ndarray, hop_length: int) -> Iterable[np.ndarray]:
    """Consecutive ``(hop_length,)`` float32 hops of ``x`` (a partial last hop is dropped)."""
    x = np.asarray(x, dtype=np.float32)
    for i in range(x.size // hop_length):
        yield x[i * hop_length : (i + 1) * hop_length]
