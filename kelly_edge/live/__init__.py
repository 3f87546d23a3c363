"""The live stomp-box: capture -> engine -> scheduled MIDI, with hotplug, tempo sources and clean stops."""
