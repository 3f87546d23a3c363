"""One picture of a run: what the box heard, what it played, and the emotion it followed.

``kelly-edge plot REPORT.json MIDI.mid OUT.png`` (and ``kelly-edge run --input X.wav --plot OUT.png``)
draw, on a shared time axis,

- the input's log-mel spectrogram, computed with the runtime's own
  :class:`~kelly_edge.features.mel.MelExtractor` from the WAV named in the report (``source.path``),
  so the picture shows exactly the frames the models saw;
- two chord strips: the player's chords (what the engine recognised, the report's ``heard_chords``,
  or an annotation given as ``player_chords``) and under them the box's, from the report's
  ``chords`` (older reports without it: named from the chord voice's notes);
- the generated piano roll, one colour per voice (melody, chord, bass by their MIDI channels);

and beside them the emotion path on the valence/arousal plane, coloured by time, with the names
of the thesaurus emotions it passes near.

matplotlib is an optional extra (``pip install 'kelly-edge[plot]'``), imported inside the functions
here through the Agg backend (no display needed); nothing in the live loop imports this module.
"""

from __future__ import annotations

import io
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from kelly_edge.errors import KellyEdgeError
from kelly_edge.fileio import check_writable, write_atomic
from kelly_edge.models import spec

log = logging.getLogger(__name__)

MAX_COLUMNS = 2400
"""Spectrogram columns at most: long recordings are averaged down to this many (about the
figure's width in pixels), so an hour-long file plots in bounded memory."""
DEFAULT_CHANNELS: Mapping[str, int] = {"melody": 1, "chord": 2, "bass": 3}
VOICE_COLOURS: Mapping[str, str] = {"melody": "#e8590c", "chord": "#1c7ed6", "bass": "#2b8a3e", "other": "#868e96"}
NEAR_PATH = 0.22  # thesaurus names within this valence/arousal distance of the path are shown
MAX_NAMES = 16
FIGSIZE = (16.0, 9.0)
WIDTH_LEFT, WIDTH_RIGHT = 2.15, 1.2  # time panels : emotion plane
DPI = 100


class PlotError(KellyEdgeError, ValueError):
    """The plot cannot be made (matplotlib missing, unreadable report)."""


def _matplotlib() -> Any:
    """The matplotlib module, on the Agg backend; PlotError with the install command when absent."""
    try:
        import matplotlib
    except ImportError as err:
        raise PlotError(
            "plotting needs matplotlib, an optional extra: pip install 'kelly-edge[plot]' (or pip install matplotlib)"
        ) from err
    matplotlib.use("Agg", force=True)
    return matplotlib


def check_available() -> None:
    """Raise PlotError now (before a long run) if plotting would fail for want of matplotlib."""
    _matplotlib()


# --- data ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    channel: int  # 1..16
    pitch: int
    start: float  # s
    end: float  # s
    velocity: int


def notes_from_events(events: Sequence[tuple[float, bytes]]) -> list[Note]:
    """Pair note-ons with note-offs (a note-on at velocity 0 is an off) per channel and pitch.

    A note still on at the end of the events ends at the last event's time; a second note-on of a
    sounding pitch ends the first one there (what a synth does on most patches).
    """
    open_notes: dict[tuple[int, int], tuple[float, int]] = {}
    notes: list[Note] = []
    last_t = 0.0
    for t, msg in events:
        last_t = max(last_t, t)
        if len(msg) < 3:
            continue
        kind, ch = msg[0] & 0xF0, (msg[0] & 0x0F) + 1
        if kind not in (0x80, 0x90):
            continue
        key = (ch, msg[1])
        started = open_notes.pop(key, None)
        if started is not None:
            notes.append(Note(ch, msg[1], started[0], t, started[1]))
        if kind == 0x90 and msg[2] > 0:
            open_notes[key] = (t, msg[2])
    for (ch, pitch), (start, vel) in open_notes.items():
        notes.append(Note(ch, pitch, start, max(last_t, start), vel))
    notes.sort(key=lambda n: (n.start, n.channel, n.pitch))
    return notes


def name_chord(pitches: Sequence[int]) -> str:
    """Name sounding notes with the spec's chord vocabulary (``"Am"``, ``"G7"``), by pitch classes.

    The chord whose pitch-class set best matches wins: each shared class +1, each missing template
    class -1, each extra sounding class -0.5; ties go to the chord rooted on the lowest note, then
    to the smaller chord (a triad before its seventh). One class alone is named as that note.
    Empty: ``"N.C."``.
    """
    if not pitches:
        return "N.C."
    pcs = {p % 12 for p in pitches}
    bass = min(pitches) % 12
    if len(pcs) == 1:
        return spec.PITCH_NAMES[bass]
    best: tuple[float, int, int, str] | None = None
    for root in range(12):
        for quality, intervals in spec.CHORD_INTERVALS.items():
            template = {(root + i) % 12 for i in intervals}
            shared = len(template & pcs)
            score = shared - len(template - pcs) - 0.5 * len(pcs - template)
            key = (score, int(root == bass), -len(template), spec.chord_name(spec.chord_index(root, quality)))
            if best is None or key[:3] > best[:3]:
                best = key
    assert best is not None
    return best[3]


def chord_segments(notes: Sequence[Note], channel: int, *, tolerance_s: float = 0.005) -> list[tuple[float, float, str]]:
    """``(start, end, name)`` of each chord the ``channel`` voice sounds, merged while the name stays.

    The set of sounding notes is re-read after every group of events within ``tolerance_s`` (a
    voicing's notes start together but may land a tick apart in the file).
    """
    edges: list[tuple[float, int, int]] = []  # (time, +1 on / -1 off, pitch)
    for n in notes:
        if n.channel == channel:
            edges.append((n.start, 1, n.pitch))
            edges.append((n.end, -1, n.pitch))
    edges.sort(key=lambda e: (e[0], e[1]))
    sounding: dict[int, int] = {}
    segments: list[tuple[float, float, str]] = []
    current: tuple[float, str] | None = None
    k = 0
    while k < len(edges):
        t0 = edges[k][0]
        while k < len(edges) and edges[k][0] - t0 <= tolerance_s:
            _, d, p = edges[k]
            sounding[p] = sounding.get(p, 0) + d
            if sounding[p] <= 0:
                del sounding[p]
            k += 1
        name = name_chord(sorted(sounding)) if sounding else None
        if current is not None and name != current[1]:
            segments.append((current[0], t0, current[1]))
            current = None
        if name is not None and current is None:
            current = (t0, name)
    if current is not None and edges:
        segments.append((current[0], edges[-1][0], current[1]))
    return segments


def mel_spectrogram(wav_path: str | Path, *, max_columns: int = MAX_COLUMNS) -> tuple[np.ndarray, float]:
    """The recording's log-mel frames as the box computes them: ``((n_mels, n_cols) float32 dB, duration s)``.

    Every hop is pushed through the runtime's streaming extractor; when there are more frames
    than ``max_columns``, consecutive frames are averaged (in dB) into one column.
    """
    from kelly_edge.audio.wav import WavReader
    from kelly_edge.features.mel import MelExtractor

    with WavReader(wav_path) as reader:
        mel = MelExtractor(sample_rate=reader.sample_rate)
        hop = mel.hop_length
        n_frames = max(1, math.ceil(reader.info.frames / hop))
        per_col = max(1, math.ceil(n_frames / max_columns))
        out = np.zeros((mel.n_mels, math.ceil(n_frames / per_col)), dtype=np.float32)
        acc = np.zeros(mel.n_mels, dtype=np.float64)
        buf = np.zeros(hop, dtype=np.float32)
        frame_i = 0
        while True:
            block = reader.read(hop * 200)
            if block.size == 0:
                break
            for start in range(0, block.size, hop):
                piece = block[start : start + hop]
                buf[: piece.size] = piece
                buf[piece.size :] = 0.0
                acc += mel.push(buf)
                frame_i += 1
                if frame_i % per_col == 0:
                    out[:, frame_i // per_col - 1] = acc / per_col
                    acc[:] = 0.0
        if frame_i % per_col:
            out[:, frame_i // per_col] = acc / (frame_i % per_col)
        return out[:, : math.ceil(frame_i / per_col)], reader.info.duration_s


# --- drawing ---------------------------------------------------------------------------------------


def _draw_spectrogram(ax: Any, wav_path: Path | None, duration_hint: float) -> float:
    from kelly_edge.features.mel import hz_to_mel

    if wav_path is None or not wav_path.is_file():
        ax.text(0.5, 0.5, f"input audio not found: {wav_path}" if wav_path else "no input audio named in the report",
                ha="center", va="center", transform=ax.transAxes, fontsize=12)
        ax.set_yticks([])
        return duration_hint
    try:
        frames, duration = mel_spectrogram(wav_path)
    except KellyEdgeError as err:
        ax.text(0.5, 0.5, str(err), ha="center", va="center", transform=ax.transAxes, fontsize=11, wrap=True)
        return duration_hint
    top = float(frames.max())
    ax.imshow(frames, origin="lower", aspect="auto", cmap="magma", vmin=top - 80.0, vmax=top,
              extent=(0.0, duration, 0.0, frames.shape[0]), interpolation="nearest")
    max_mel = float(hz_to_mel(np.array([8000.0]))[0])
    ticks_hz = [100, 250, 500, 1000, 2000, 4000, 8000]
    pos = [float(hz_to_mel(np.array([float(f)]))[0]) / max_mel * frames.shape[0] for f in ticks_hz]
    ax.set_yticks(pos)
    ax.set_yticklabels([f"{f // 1000}k" if f >= 1000 else str(f) for f in ticks_hz])
    ax.set_ylabel("Hz (mel scale)")
    return duration


def _voice_of(channel: int, channels: Mapping[str, int]) -> str:
    for voice, ch in channels.items():
        if ch == channel:
            return voice
    return "other"


def _draw_piano_roll(ax: Any, notes: Sequence[Note], channels: Mapping[str, int], t_end: float) -> None:
    if not notes:
        ax.text(0.5, 0.5, "no notes were played", ha="center", va="center", transform=ax.transAxes, fontsize=12)
        ax.set_ylim(36, 84)
        return
    by_voice: dict[str, list[Note]] = {}
    for n in notes:
        by_voice.setdefault(_voice_of(n.channel, channels), []).append(n)
    for voice in [*channels, "other"]:
        group = by_voice.get(voice)
        if not group:
            continue
        starts = np.array([n.start for n in group])
        widths = np.maximum(np.array([n.end - n.start for n in group]), t_end * 0.002)
        alphas = 0.45 + 0.55 * np.array([n.velocity for n in group]) / 127.0
        colours = [(*_rgb(VOICE_COLOURS[voice]), a) for a in alphas]
        ch = channels.get(voice)
        label = f"{voice} (ch {ch})" if ch else "other channels"
        ax.barh([n.pitch for n in group], widths, left=starts, height=0.85, color=colours,
                edgecolor=VOICE_COLOURS[voice], linewidth=0.4, label=f"{label}: {len(group)} notes")
    lo = min(n.pitch for n in notes) - 2
    hi = max(n.pitch for n in notes) + 2
    ax.set_ylim(lo, hi)
    cs = [p for p in range(lo, hi + 1) if p % 12 == 0]
    ax.set_yticks(cs)
    ax.set_yticklabels([f"C{p // 12 - 1}" for p in cs])
    for p in cs:
        ax.axhline(p - 0.5, color="#dee2e6", linewidth=0.6, zorder=0)
    ax.set_ylabel("pitch")
    ax.legend(loc="upper right", fontsize=9, framealpha=0.85)


_MIR_EVAL_SUFFIX = {"maj": "", "min": "m", "7": "7", "min7": "m7", "dim": "dim", "maj7": "maj7"}


def display_name(label: str) -> str:
    """A chord name as the box writes it: mir_eval labels (``A:min``, ``N``) become ``Am``, ``N.C.``."""
    if label in ("N", "X"):
        return "N.C."
    root, sep, quality = label.partition(":")
    if not sep:
        return label
    return root + _MIR_EVAL_SUFFIX.get(quality.split("/")[0], quality)


def segments_of_changes(changes: Sequence[Mapping[str, Any]], t_end: float) -> list[tuple[float, float, str]]:
    """``(start, end, name)`` of each chord in a ``[{t, chord}]`` change list (the report's
    ``chords``), each lasting until the next change or ``t_end``; N.C. spans are left out."""
    marks = sorted((float(c["t"]), display_name(str(c["chord"]))) for c in changes if "t" in c and "chord" in c)
    segments = []
    for i, (start, name) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else max(t_end, start)
        if name != "N.C." and end > start:
            segments.append((start, end, name))
    return segments


def _draw_chord_names(ax: Any, segments: Sequence[tuple[float, float, str]], t_end: float, width_px: float,
                      label: str = "chords", empty: str = "") -> None:
    """Chord names in a strip above the piano roll; a name that would overlap the previous is left out."""
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_ylabel(label, rotation=0, ha="right", va="center")
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    if not segments and empty:
        ax.text(0.01, 0.5, empty, transform=ax.transAxes, ha="left", va="center", fontsize=9, color="#868e96")
    s_per_px = t_end / max(width_px, 1.0)
    next_free = -math.inf
    shade = False
    for start, end, name in segments:
        shade = not shade
        ax.axvspan(start, end, color="#e7f5ff" if shade else "#c5e3fc", linewidth=0)
        ax.axvline(start, color="#1c7ed6", linewidth=1.0)
        width = (len(name) * 9.0 + 18) * s_per_px  # ~9 px per bold 10 pt character, plus a gap
        x = max(start, next_free)  # after a short chord's name, a long chord is named further in
        if x == start or x + width <= end:
            ax.text(x + 3 * s_per_px, 0.5, name, ha="left", va="center", fontsize=10, fontweight="bold", color="#1864ab")
            next_free = x + width


def _rgb(hex_colour: str) -> tuple[float, float, float]:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) / 255.0 for i in (0, 2, 4))
    return r, g, b


def _draw_emotion(ax: Any, fig: Any, emotion: Sequence[Mapping[str, Any]]) -> None:
    from matplotlib.collections import LineCollection

    from kelly_edge.emotion import thesaurus

    ax.set_xlim(-1.08, 1.08)
    ax.set_ylim(-1.08, 1.08)
    ax.set_aspect("equal")
    ax.axhline(0, color="#adb5bd", linewidth=0.8, zorder=0)
    ax.axvline(0, color="#adb5bd", linewidth=0.8, zorder=0)
    ax.set_xlabel("valence  (unpleasant \u2192 pleasant)\n\nbold: emotions the box named;  grey: thesaurus emotions near the path",
                  fontsize=10)
    ax.set_ylabel("arousal  (calm \u2192 excited)")
    ax.set_title("emotion path on the valence/arousal plane", fontsize=12)
    table = np.array([(n.valence, n.arousal) for n in thesaurus.THESAURUS])
    ax.scatter(table[:, 0], table[:, 1], s=9, color="#ced4da", zorder=1)
    pts = np.array([(float(e["valence"]), float(e["arousal"])) for e in emotion
                    if e.get("valence") is not None and e.get("arousal") is not None], dtype=float).reshape(-1, 2)
    times = np.array([float(e.get("t", k)) for k, e in enumerate(emotion)
                      if e.get("valence") is not None and e.get("arousal") is not None], dtype=float)
    if pts.shape[0] == 0:
        ax.text(0.0, 0.0, "no emotion samples in the report", ha="center", va="center", fontsize=11)
        return
    visited = {str(e.get("label")) for e in emotion if e.get("label")}
    # thesaurus names: the ones the box named first, then others near the path, nearest first
    d = np.sqrt(((table[:, None, :] - pts[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
    names = thesaurus.THESAURUS
    order = sorted((k for k in range(len(names)) if d[k] <= NEAR_PATH or names[k].name in visited),
                   key=lambda k: (names[k].name not in visited, d[k]))[:MAX_NAMES]
    u = _PLANE_UNITS_PER_PX  # the "start" and "end" words (drawn below, left of their markers) come first
    (x_s, y_s), (x_e, y_e) = pts[0], pts[-1]
    boxes: list[tuple[float, float, float, float]] = [
        (x_s - 50 * u, y_s - 25 * u, x_s, y_s), (x_e - 40 * u, y_e, x_e, y_e + 25 * u),
    ]
    for k in order:
        node = names[k]
        strong = node.name in visited
        place = _label_place(node.name, node.valence, node.arousal, strong, boxes)
        ax.scatter([node.valence], [node.arousal], s=22 if strong else 12, color="#495057" if strong else "#adb5bd", zorder=2)
        if place is None:
            continue  # no free spot: the dot stays, the name is left out rather than overprinted
        (dx, dy, ha, va), box = place
        boxes.append(box)
        ax.annotate(node.name, (node.valence, node.arousal), xytext=(dx, dy), textcoords="offset points", zorder=4,
                    ha=ha, va=va, fontsize=10 if strong else 8.5, color="#212529" if strong else "#6c757d",
                    fontweight="bold" if strong else "normal")
    if pts.shape[0] > 1:
        segs = np.stack([pts[:-1], pts[1:]], axis=1)
        lc = LineCollection(list(segs), cmap="viridis", linewidth=2.2, zorder=3)
        lc.set_array(times[1:])
        lc.set_clim(float(times.min()), float(times.max()))
        ax.add_collection(lc)
        cbar = fig.colorbar(lc, ax=ax, orientation="vertical", shrink=0.45, pad=0.02, aspect=15)
        cbar.set_label("time (s)")
    ax.scatter(pts[:, 0], pts[:, 1], c=times, cmap="viridis", s=14, zorder=3)
    ax.scatter([pts[0, 0]], [pts[0, 1]], s=90, marker="o", facecolor="white", edgecolor="black", zorder=5)
    ax.scatter([pts[-1, 0]], [pts[-1, 1]], s=170, marker="*", color="black", zorder=5)
    ax.annotate("start", (pts[0, 0], pts[0, 1]), xytext=(-8, -4), textcoords="offset points", ha="right", va="top",
                fontsize=9, fontstyle="italic", zorder=5)
    ax.annotate("end", (pts[-1, 0], pts[-1, 1]), xytext=(-8, 4), textcoords="offset points", ha="right", va="bottom",
                fontsize=9, fontstyle="italic", zorder=5)


_PLANE_UNITS_PER_PX = 2.16 / 380.0  # the plane spans 2.16 units in about 380 px at FIGSIZE/DPI
_LABEL_SPOTS = ((4, 3, "left", "bottom"), (-4, 3, "right", "bottom"), (4, -3, "left", "top"), (-4, -3, "right", "top"))


def _label_place(name: str, x: float, y: float, strong: bool,
                 boxes: Sequence[tuple[float, float, float, float]]) -> tuple[tuple[int, int, str, str], tuple[float, float, float, float]] | None:
    """The first spot around a point (right/left, above/below) where a name's estimated box
    (x0, y0, x1, y1 in data units) overlaps no name already placed and stays on the plane."""
    u = _PLANE_UNITS_PER_PX
    w = (len(name) * (8.2 if strong else 6.0) + 4) * u
    h = (14.0 if strong else 12.0) * u
    for dx, dy, ha, va in _LABEL_SPOTS:
        x0 = x + dx * 1.4 * u if ha == "left" else x + dx * 1.4 * u - w  # 1.4 px per point at 100 dpi
        y0 = y + dy * 1.4 * u if va == "bottom" else y + dy * 1.4 * u - h
        box = (x0, y0, x0 + w, y0 + h)
        if box[0] < -1.08 or box[2] > 1.08 or box[1] < -1.08 or box[3] > 1.08:
            continue
        if all(box[2] <= b[0] or box[0] >= b[2] or box[3] <= b[1] or box[1] >= b[3] for b in boxes):
            return (dx, dy, ha, va), box
    return None


def _title(report: Mapping[str, Any], wav_path: Path | None) -> str:
    name = wav_path.name if wav_path else "run"
    parts = [name]
    src = report.get("source") or {}
    dur = report.get("audio_s", src.get("duration_s"))
    if dur is not None:
        parts.append(f"{float(dur):.1f} s")
    if report.get("key"):
        parts.append(f"key {report['key']}")
    if report.get("tempo_bpm"):
        parts.append(f"{float(report['tempo_bpm']):.0f} BPM")
    if report.get("notes") is not None:
        parts.append(f"{report['notes']} notes")
    hop = report.get("hop_ms") or {}
    if "p99" in hop:
        parts.append(f"hop p99 {float(hop['p99']):.2f} ms, {report.get('deadline_misses', 0)} deadline misses")
    models = report.get("models") or {}
    line2 = "models: " + ", ".join(f"{k} {v}" for k, v in models.items()) if models else ""
    return "   \u2022   ".join(parts) + ("\n" + line2 if line2 else "")


def _resolve_wav(report: Mapping[str, Any], wav_path: str | Path | None, report_dir: Path | None) -> Path | None:
    if wav_path is not None:
        return Path(wav_path)
    src = (report.get("source") or {}).get("path")
    if not src:
        return None
    p = Path(src)
    if not p.is_absolute() and not p.exists() and report_dir is not None and (report_dir / p).exists():
        return report_dir / p
    return p


def plot_run(
    report_dict: Mapping[str, Any],
    midi_path: str | Path,
    wav_path: str | Path | None,
    out_png: str | Path,
    *,
    channels: Mapping[str, int] | None = None,
    report_dir: Path | None = None,
    player_chords: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Draw the run picture into ``out_png`` (written atomically). Returns what was drawn.

    ``wav_path`` None: the report's ``source.path`` (relative paths also tried against
    ``report_dir``). ``channels``: the voices' MIDI channels 1..16 (default: the report's
    ``voices`` when it has them, else melody 1, chord 2, bass 3 as in the default config).
    ``player_chords``: the player's chords as ``[{t, chord}]`` (an annotation; default: the
    report's ``heard_chords``, if the engine recorded them), drawn above the box's.
    The return value (for the CLI's summary line and tests): ``{"notes", "chords", "chord_names",
    "player_chord_names", "emotion_points", "duration_s", "path", "size" (w, h px), "panels"}``;
    ``panels`` maps ``spectrogram``, ``player_chords``, ``chords`` (the box's), ``piano_roll`` and
    ``emotion`` to their pixel box and data limits.
    """
    mpl = _matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from kelly_edge.midi.smf_read import read_smf

    check_writable(out_png)
    chans = dict(channels or report_dict.get("voices") or DEFAULT_CHANNELS)
    notes = notes_from_events(read_smf(midi_path))
    wav = _resolve_wav(report_dict, wav_path, report_dir)
    emotion = list(report_dict.get("emotion") or [])
    duration_hint = float(report_dict.get("audio_s") or (report_dict.get("source") or {}).get("duration_s") or 0.0)
    t_notes = max((n.end for n in notes), default=0.0)

    with mpl.rc_context({"font.size": 10, "axes.titlesize": 12, "axes.titleweight": "bold"}):
        fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        # two subfigures, so each column lays out its own margins (the emotion plane's labels
        # would otherwise widen the time axes' bottom margin)
        left, right = fig.subfigures(1, 2, width_ratios=[WIDTH_LEFT, WIDTH_RIGHT], wspace=0.01)  # type: ignore[misc]
        grid = left.add_gridspec(4, 1, height_ratios=[1.0, 0.09, 0.09, 1.2])
        ax_spec = left.add_subplot(grid[0])
        ax_player = left.add_subplot(grid[1], sharex=ax_spec)
        ax_chords = left.add_subplot(grid[2], sharex=ax_spec)
        ax_roll = left.add_subplot(grid[3], sharex=ax_spec)
        ax_emo = right.add_subplot(1, 1, 1)

        duration = _draw_spectrogram(ax_spec, wav, duration_hint)
        t_end = max(duration, t_notes, 1e-3)
        ax_spec.set_title("what the box heard: input log-mel spectrogram", loc="left")
        ax_spec.tick_params(labelbottom=False)
        width_px = FIGSIZE[0] * DPI * WIDTH_LEFT / (WIDTH_LEFT + WIDTH_RIGHT) * 0.9
        if report_dict.get("chords") is not None:
            segments = segments_of_changes(report_dict["chords"], t_end)
        else:  # a report from before the box logged its chords
            segments = chord_segments(notes, chans.get("chord", 2))
        heard = player_chords if player_chords is not None else report_dict.get("heard_chords")
        player_segments = segments_of_changes(heard or [], t_end)
        _draw_chord_names(ax_player, player_segments, t_end, width_px, label="player",
                          empty="" if heard else "no chords of the player's: give an annotation")
        _draw_chord_names(ax_chords, segments, t_end, width_px, label="box")
        for ax in (ax_player, ax_chords):
            ax.tick_params(labelbottom=False, bottom=False)
        _draw_piano_roll(ax_roll, notes, chans, t_end)
        ax_roll.set_title("what it played: piano roll by voice", loc="left")
        ax_roll.set_xlabel("time (s)")
        ax_roll.set_xlim(0.0, t_end)
        _draw_emotion(ax_emo, right, emotion)
        fig.suptitle(_title(report_dict, wav), fontsize=13)

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
        height = fig.bbox.height
        panels = {
            name: _panel(ax, height)
            for name, ax in (("spectrogram", ax_spec), ("player_chords", ax_player), ("chords", ax_chords),
                             ("piano_roll", ax_roll), ("emotion", ax_emo))
        }
    write_atomic(out_png, buf.getvalue())
    log.info("wrote %s", out_png)
    return {
        "notes": len(notes),
        "chords": len(segments),
        "chord_names": [name for _, _, name in segments],
        "player_chord_names": [name for _, _, name in player_segments],
        "emotion_points": len(emotion),
        "duration_s": t_end,
        "path": str(out_png),
        "size": (int(round(fig.bbox.width)), int(round(height))),
        "panels": panels,
    }


def _panel(ax: Any, fig_height: float) -> dict[str, tuple[float, ...]]:
    """Where an axes landed in the PNG: ``box`` (left, top, right, bottom) pixels from the top-left
    corner, and its data limits, so a reader (a test) can map data to pixels."""
    bb = ax.get_window_extent()
    return {
        "box": (float(bb.x0), float(fig_height - bb.y1), float(bb.x1), float(fig_height - bb.y0)),
        "xlim": tuple(float(v) for v in ax.get_xlim()),
        "ylim": tuple(float(v) for v in ax.get_ylim()),
    }


def load_player_chords(path: str | Path) -> list[dict[str, Any]]:
    """The player's chords from a JSON file: a ``[{t, chord}]`` list, or an object with one under
    ``chords`` (the evaluation's annotation files)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError as err:
        raise PlotError(f"{p}: chord annotation not found") from err
    except (OSError, ValueError) as err:
        raise PlotError(f"{p}: not a JSON chord annotation ({err})") from err
    chords = data.get("chords") if isinstance(data, dict) else data
    if not isinstance(chords, list) or not all(isinstance(c, dict) and "t" in c and "chord" in c for c in chords):
        raise PlotError(f"{p}: expected a list of {{\"t\": seconds, \"chord\": name}} (or an object with one under \"chords\")")
    return chords


def plot_main(report: str | Path, midi: str | Path, out_png: str | Path, player_chords: str | Path | None = None) -> int:
    """``kelly-edge plot REPORT.json MIDI.mid OUT.png``: draw a finished run. 0 on success.

    User errors (missing files, bad JSON, no matplotlib) raise KellyEdgeError subclasses, which the
    CLI prints on one line (exit 2).
    """
    check_available()
    rp = Path(report)
    try:
        data = json.loads(rp.read_text())
    except FileNotFoundError as err:
        raise PlotError(f"{rp}: report not found (write one with kelly-edge run --report)") from err
    except OSError as err:
        raise PlotError(f"{rp}: cannot read ({err.strerror or err})") from err
    except ValueError as err:
        raise PlotError(f"{rp}: not a JSON run report ({err})") from err
    if not isinstance(data, dict):
        raise PlotError(f"{rp}: not a run report (expected a JSON object)")
    heard = load_player_chords(player_chords) if player_chords is not None else None
    drawn = plot_run(data, midi, None, out_png, report_dir=rp.parent, player_chords=heard)
    print(f"{out_png}: spectrogram, piano roll ({drawn['notes']} notes, {drawn['chords']} chords), "
          f"emotion path ({drawn['emotion_points']} points)")
    return 0
