"""One root error for the project; leaves also inherit the builtin they refine.

Every error a user can cause (bad file, bad config, missing device) is one of these, raised with a
message that names the object, the problem and the fix. The CLI prints ``str(err)`` on one line
and exits 2; nothing user-caused ever reaches the user as a traceback.
"""

from __future__ import annotations


def one_line(text: str) -> str:
    """``text`` as one printable line: newlines, escapes and other control characters (in a path
    or a key, say) are shown as their escapes, so a message stays one line and cannot drive the
    terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class KellyEdgeError(Exception):
    """Root of every error kelly-edge raises on purpose."""


class ConfigError(KellyEdgeError, ValueError):
    """The YAML config is malformed or invalid. ``messages`` holds one ``file:line: key ...`` each."""

    def __init__(self, messages: list[str] | str) -> None:
        self.messages = [messages] if isinstance(messages, str) else list(messages)
        super().__init__("; ".join(self.messages))


class AudioInputError(KellyEdgeError, ValueError):
    """An audio file or device cannot be read (missing, empty, truncated, not a WAV...)."""


class OutputError(KellyEdgeError, OSError):
    """An output file (MIDI, report, state) cannot be written."""


class ModelError(KellyEdgeError, ValueError):
    """A model file is missing, corrupt or disagrees with the spec; callers fall back."""


class DeviceError(KellyEdgeError, RuntimeError):
    """An audio or MIDI device is absent, refused the request or went away."""
