"""``kelly-edge monitor``: the box's state live in a terminal (an SSH session is enough).

A curses screen redrawn :data:`REFRESH_HZ` times a second from the status socket. Models on their
fallback, deadline misses and devices that are not running are highlighted; the last error is red.
When no box is running it says so plainly and keeps looking (a box started later appears by
itself). ``q`` or Ctrl-C quits and leaves the terminal as it was.
"""

from __future__ import annotations

import curses
import os
import sys
import time
from typing import Any

from kelly_edge.status import paths
from kelly_edge.status.client import NoBoxError, StatusClient, StatusError
from kelly_edge.status.text import Line, render

REFRESH_HZ = 4.0
EXIT_NO_TERMINAL = 2


def _screen_lines(client: StatusClient, socket_path: str | None) -> list[Line]:
    try:
        return render(client.get())
    except NoBoxError:
        return [
            ("head", "kelly-edge monitor"),
            ("warn", "No kelly-edge box is running."),
            ("", "Waiting for one to start; looking for its status socket at:"),
            *(("", f"  {p}") for p in paths.candidates(socket_path)),
        ]
    except StatusError as err:
        return [("head", "kelly-edge monitor"), ("error", str(err))]


def _follow_terminal_size(stdscr: Any) -> None:
    """Resize curses' idea of the screen to the terminal's, in case a SIGWINCH went unnoticed
    (one arriving before curses started, or a terminal resized by a multiplexer)."""
    try:
        cols, rows = os.get_terminal_size(sys.__stdout__.fileno())  # type: ignore[union-attr]
    except (OSError, AttributeError, ValueError):
        return
    if (rows, cols) != stdscr.getmaxyx():
        try:
            curses.resizeterm(rows, cols)
        except curses.error:
            pass


def _draw(stdscr: Any, lines: list[Line], attrs: dict[str, int]) -> None:
    _follow_terminal_size(stdscr)
    stdscr.erase()
    height, width = stdscr.getmaxyx()
    footer = "q or Ctrl-C: quit"
    for row, (tag, text) in enumerate(lines[: max(0, height - 2)]):
        try:
            stdscr.addnstr(row, 0, text, max(0, width - 1), attrs.get(tag, 0))
        except curses.error:  # writing into the last cell of a tiny window: ignore
            pass
    try:
        stdscr.addnstr(height - 1, 0, footer, max(0, width - 1), curses.A_DIM)
    except curses.error:
        pass
    stdscr.refresh()


def _attrs() -> dict[str, int]:
    attrs = {"head": curses.A_BOLD, "warn": curses.A_BOLD, "error": curses.A_BOLD}
    try:
        if curses.has_colors():
            curses.start_color()
            curses.use_default_colors()
            curses.init_pair(1, curses.COLOR_YELLOW, -1)
            curses.init_pair(2, curses.COLOR_RED, -1)
            curses.init_pair(3, curses.COLOR_CYAN, -1)
            attrs = {
                "head": curses.color_pair(3) | curses.A_BOLD,
                "warn": curses.color_pair(1) | curses.A_BOLD,
                "error": curses.color_pair(2) | curses.A_BOLD,
            }
    except curses.error:
        pass
    return attrs


def _loop(stdscr: Any, socket_path: str | None, refresh_hz: float) -> None:
    try:
        curses.curs_set(0)
    except curses.error:
        pass
    attrs = _attrs()
    period = 1.0 / refresh_hz
    stdscr.timeout(int(period * 1000))
    with StatusClient(socket_path, timeout=max(0.5, period * 2)) as client:
        while True:
            started = time.monotonic()
            _draw(stdscr, _screen_lines(client, socket_path), attrs)
            while True:  # wait for the next frame, reacting to keys at once
                key = stdscr.getch()
                if key in (ord("q"), ord("Q"), 27):  # q or Esc
                    return
                if time.monotonic() - started >= period:
                    break
                left = period - (time.monotonic() - started)
                stdscr.timeout(max(1, int(left * 1000)))
            stdscr.timeout(int(period * 1000))


def monitor_main(socket_path: str | None, *, refresh_hz: float = REFRESH_HZ) -> int:
    """Run the live view until q or Ctrl-C; 0 then, 2 when stdout is not a terminal."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("kelly-edge: error: monitor needs a terminal (use 'kelly-edge status' in scripts)", file=sys.stderr)
        return EXIT_NO_TERMINAL
    try:
        curses.wrapper(_loop, socket_path, refresh_hz)
    except KeyboardInterrupt:  # curses.wrapper has already restored the terminal
        pass
    except curses.error as err:
        print(f"kelly-edge: error: cannot draw on this terminal ({err}); check TERM", file=sys.stderr)
        return EXIT_NO_TERMINAL
    return 0


if __name__ == "__main__":  # python -m kelly_edge.status.monitor [SOCKET]: for tests before the CLI has the command
    sys.exit(monitor_main(sys.argv[1] if len(sys.argv) > 1 else None))
