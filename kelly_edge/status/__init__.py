"""The box's state for people: a JSON snapshot, a unix-socket publisher, and its readers.

- :mod:`kelly_edge.status.snapshot` builds a JSON-able dict from an engine (a few times a second).
- :mod:`kelly_edge.status.server` serves the latest snapshot on a unix socket from its own thread.
- :mod:`kelly_edge.status.client` reads it (``kelly-edge status``); :mod:`~kelly_edge.status.monitor`
  shows it live in a terminal (``kelly-edge monitor``); :mod:`~kelly_edge.status.text` lays it out.

Nothing here imports plotting libraries; the live loop may import the snapshot and the server.
"""
