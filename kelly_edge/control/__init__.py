"""Footswitches, LEDs and the actions they trigger (gpiozero behind a pin-factory seam).

Importing this package imports nothing heavy: :mod:`kelly_edge.control.actions` is read by the
config schema; the gpiozero-backed modules are imported by whoever builds the live box.
"""
