"""Lay a status snapshot out as short lines of text, for ``kelly-edge status`` and the monitor.

Each line is ``(tag, text)``: ``tag`` is ``""`` for plain lines, ``"head"`` for the title,
``"warn"`` for something a player should look at (a model on its fallback, deadline misses, a
device not running) and ``"error"`` for the last error; the monitor colours by tag, ``status``
prints the text only. Everything tolerates missing keys and values of the wrong type, so an older
or newer box still shows; every control character in the result (a terminal escape planted in a
device name, say) is shown escaped, never sent to the terminal.
"""

from __future__ import annotations

import math
import time
from typing import Any, Mapping

from kelly_edge.errors import one_line

Line = tuple[str, str]

STALE_AFTER_S = 3.0  # a snapshot older than this means the box's loop has stopped publishing


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _num(value: Any, default: float = 0.0) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        return default
    return x if math.isfinite(x) else default


def _f(value: Any, fmt: str, missing: str = "?") -> str:
    try:
        return format(float(value), fmt)
    except (TypeError, ValueError, OverflowError):
        return missing


def bar(value: Any, lo: float = -1.0, hi: float = 1.0, width: int = 21) -> str:
    """``[----|--*-------]``: where ``value`` sits between ``lo`` and ``hi`` (``|`` marks the middle)."""
    cells = ["-"] * width
    cells[width // 2] = "|"
    try:
        x = (float(value) - lo) / (hi - lo)
    except (TypeError, ValueError, OverflowError):
        return "[" + "".join(cells) + "]"
    if x == x:  # not NaN (±inf lands at an end)
        cells[round(min(1.0, max(0.0, x)) * (width - 1))] = "*"
    return "[" + "".join(cells) + "]"


def _uptime(seconds: float) -> str:
    s = int(max(0.0, seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _device(info: Any) -> tuple[str, bool]:
    """Text of an audio/MIDI device dict and whether it looks healthy."""
    if info is None:
        return "not reported", True
    if not isinstance(info, Mapping):
        return str(info), True
    state = str(info.get("state", "unknown"))
    parts = []
    for key in ("backend", "device", "port", "sample_rate", "channels"):
        if info.get(key) not in (None, ""):
            value = info[key]
            parts.append(f"{value} Hz" if key == "sample_rate" else f'"{value}"' if key in ("device", "port") else str(value))
    for key, value in info.items():
        if key not in ("backend", "device", "port", "sample_rate", "channels", "state") and isinstance(value, (int, float, str, bool)):
            parts.append(f"{key} {value}")
    ok = state.lower() in ("running", "open", "ok", "connected", "file", "unknown")
    return "  ".join([*parts, state]), ok


def render(snap: Mapping[str, Any], *, now: float | None = None) -> list[Line]:
    """The snapshot as tagged lines (see the module docstring), every one printable."""
    return [(tag, one_line(text)) for tag, text in _render(_map(snap), time.time() if now is None else now)]


def _render(snap: Mapping[str, Any], now: float) -> list[Line]:
    lines: list[Line] = []
    age = now - _num(snap.get("time", now), now)
    state = snap.get("state", "?")
    head = f"kelly-edge box  {state}  pid {snap.get('pid', '?')}  audio {_uptime(_num(snap.get('audio_s')))}"
    if isinstance(snap.get("input_file"), str):
        head += f"  file {snap['input_file']}"
    lines.append(("head", head))
    if age > STALE_AFTER_S:
        lines.append(("warn", f"STALE: last update {age:.0f} s ago (the box's loop is not publishing)"))
    if state == "starting":
        lines.append(("", "the box is starting: no audio processed yet"))
        return lines

    emo = _map(snap.get("emotion"))
    intent = emo.get("intent")
    lines.append(("", f"Emotion  {emo.get('name', '?')} ({emo.get('family', '?')})" + (f"   leaning to {intent}" if intent else "")))
    lines.append(("", f"  valence {_f(emo.get('valence'), '+.2f')} {bar(emo.get('valence'), width=19)}  "
                      f"arousal {_f(emo.get('arousal'), '+.2f')} {bar(emo.get('arousal'), width=19)}"))
    key = _map(snap.get("key"))
    tempo = _map(snap.get("tempo"))
    known = "" if key.get("known", True) else " (not heard yet)"
    detected = tempo.get("detected_bpm")
    det = f", heard {_f(detected, '.0f')}" if detected else ""
    lines.append(("", f"Key      {key.get('name', '?')}{known} (clarity {_f(key.get('clarity'), '.2f')})   "
                      f"Chord {snap.get('chord', '?')}"))
    lines.append(("", f"Tempo    {_f(tempo.get('bpm'), '.1f')} BPM ({tempo.get('source', '?')}{det})"))
    inp = _map(snap.get("input"))
    gate = f"silent {_f(inp.get('silent_for_s'), '.1f')} s" if inp.get("silent") else "playing"
    lines.append(("", f"Input    {_f(inp.get('level_db'), '.1f')} dBFS  {bar(inp.get('level_db'), -100.0, 0.0, 21)}  {gate}"))

    lines.append(("", "Models   name      state     conf  top            runs  defer  fail"))
    for name, m in _map(snap.get("models")).items():
        m = _map(m)
        status = m.get("status", "?") if m.get("enabled", True) else "off"
        conf = _f(m.get("confidence"), ".2f", "  - ")
        text = (f"         {str(name):<9} {str(status):<9} {conf:>4}  {str(m.get('top', '')):<14} "
                f"{int(_num(m.get('runs'))):>5} {int(_num(m.get('deferrals'))):>6} {int(_num(m.get('failures'))):>5}")
        warn = status != "trained" or _num(m.get("failures"))
        why = "switched off" if status == "off" else m.get("why")  # a switch, not its load's story
        if warn and why:
            text += f"  ({why})"
        lines.append(("warn" if warn else "", text))

    timing = _map(snap.get("timing"))
    hop = _map(timing.get("hop_ms"))
    window_s = _num(timing.get("window_hops")) / 100.0
    lines.append(("", f"Timing   hop ms p50 {_f(hop.get('p50'), '.2f')} p99 {_f(hop.get('p99'), '.2f')} "
                      f"p99.9 {_f(hop.get('p999'), '.2f')} max {_f(hop.get('max'), '.2f')} "
                      f"(last {window_s:.0f} s, budget {_f(timing.get('budget_ms'), '.0f')})"))
    misses = int(_num(timing.get("deadline_misses")))
    lines.append(("warn" if misses else "", f"         deadline misses {misses} of {timing.get('hops', 0)} hops"))
    for label, key_ in (("Audio", "audio"), ("MIDI", "midi")):
        info = snap.get(key_)
        ports = info.get("ports") if isinstance(info, Mapping) else None
        if ports:  # one port per synth: a line each, naming its voices
            for i, port in enumerate(ports):
                port = _map(port)
                who = "+".join(str(v) for v in port.get("voices", ())) or "clock only"
                clock = " + clock" if port.get("clock") and port.get("voices") else ""
                state = str(port.get("state", "unknown"))
                ok = state == "connected"
                text = (f'{who}{clock} -> "{port.get("port", "?")}"  sent {port.get("sent", 0)}  '
                        f'late {port.get("late", 0)}  {state}' + ("" if ok else f' {_f(port.get("since_s"), ".0f")} s'))
                lines.append(("" if ok else "warn", f"{label if i == 0 else '':<8} {text}"))
            continue
        text, ok = _device(info)
        lines.append(("" if ok else "warn", f"{label:<8} {text}"))
    err = snap.get("last_error")
    lines.append(("error" if err else "", f"Error    {err if err else 'none'}"))
    return lines


def render_text(snap: Mapping[str, Any], *, now: float | None = None) -> str:
    """The snapshot as plain text, one line per row, newline-terminated."""
    return "".join(text + "\n" for _, text in render(snap, now=now))
