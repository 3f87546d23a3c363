"""kelly-edge: a Raspberry Pi stomp-box that hears emotion, key and groove and plays along over MIDI."""

__version__ = "0.1.0"
