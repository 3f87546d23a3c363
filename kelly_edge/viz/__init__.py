"""Pictures of a run (optional extra: needs matplotlib). Imported only by the plot command, never by
the live loop: ``kelly_edge.viz.plot`` imports matplotlib lazily and says how to install it."""
