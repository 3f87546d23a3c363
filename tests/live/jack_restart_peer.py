"""The two processes of the JACK-server-restart test (run as scripts, never imported by pytest).

``synth SECONDS``: a JACK MIDI input ``kelly-restart-synth:in``; prints ``ready``, then ``on NOTE``
for every note-on it receives. ``sender SECONDS``: the box's live MIDI path (a ScheduledSink over an
RtMidiOutput on JACK, watchdog every 0.2 s) playing a short note every 50 ms to that synth; its log
lines ("lost", "is back") go to stderr. Both follow ``JACK_DEFAULT_SERVER``; the test process
itself never opens a JACK client, so a server dying under it cannot disturb its other tests.
"""

from __future__ import annotations

import logging
import sys
import time


def synth(seconds: float) -> None:
    import rtmidi

    midi_in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="kelly-restart-synth")
    midi_in.open_virtual_port("in")
    print("ready", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        msg = midi_in.get_message()
        if msg and msg[0][0] & 0xF0 == 0x90 and msg[0][2] > 0:
            print(f"on {msg[0][1]}", flush=True)
        elif not msg:
            time.sleep(0.002)


def sender(seconds: float) -> None:
    from kelly_edge.midi.rtmidi_sink import RtMidiOutput, ScheduledSink

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    t0 = time.monotonic()
    out = RtMidiOutput(port="kelly-restart-synth", api="jack", client_name="kelly-restart-box")
    out.open()
    sink = ScheduledSink(out, to_wall=lambda t: t0 + t, retry_s=0.2, channels=(0,))
    sink.start()
    k = 0
    while time.monotonic() - t0 < seconds:
        t = time.monotonic() - t0 + 0.02
        sink.send(t, bytes((0x90, 60 + k % 12, 100)))
        sink.send(t + 0.03, bytes((0x80, 60 + k % 12, 0)))
        k += 1
        time.sleep(0.05)
    sink.close()
    print(f"sent {sink.sent} dropped {sink.dropped} lost {sink.lost_count}", flush=True)


if __name__ == "__main__":
    {"synth": synth, "sender": sender}[sys.argv[1]](float(sys.argv[2]))
