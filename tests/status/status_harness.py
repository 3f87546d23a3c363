"""A box on a recording for the status tests: an Engine driven over a WAV in a thread, publishing.

This is what the live loop does (process hops, hand a snapshot to the publisher a few times a
second of audio), minus the audio device: the hops come from a WAV file, paced at ``speed`` x
real time so that readers can watch the state move.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from kelly_edge.audio.wav import WavReader
from kelly_edge.config.schema import default_config
from kelly_edge.engine.engine import Engine
from kelly_edge.midi.sinks import RecordingSink
from kelly_edge.status.server import StatusServer
from kelly_edge.status.snapshot import build_snapshot

REPO = Path(__file__).resolve().parents[2]
DEMO_WAV = REPO / "kelly_edge" / "data" / "demo.wav"


def read_wav(path: Path = DEMO_WAV) -> tuple[np.ndarray, int]:
    with WavReader(path) as reader:
        return reader.read(reader.info.frames), reader.sample_rate


class RecordingBox:
    """An engine playing ``samples`` into a RecordingSink, publishing on ``server`` from its own thread."""

    def __init__(self, server: StatusServer, samples: np.ndarray, sample_rate: int, *, speed: float = 8.0,
                 extras: dict[str, Any] | None = None) -> None:
        self.server = server
        self.samples = samples
        self.sink = RecordingSink()
        self.engine = Engine(default_config(), self.sink, sample_rate=sample_rate)
        self.speed = speed
        self.extras = extras or {"audio": {"backend": "file", "state": "running", "sample_rate": sample_rate},
                                 "midi": {"port": "recording", "state": "open"}}
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="test-box", daemon=True)

    def start(self) -> "RecordingBox":
        self._thread.start()
        return self

    def join(self, timeout: float = 60.0) -> None:
        self._thread.join(timeout)
        if self.error is not None:
            raise self.error

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            eng = self.engine
            hop = eng.hop_length
            pace_every = 25  # hops between sleeps
            pause = pace_every * hop / eng.sample_rate / self.speed if self.speed > 0 else 0.0
            for k, start in enumerate(range(0, self.samples.size, hop)):
                eng.process_hop(self.samples[start : start + hop])
                if self.server.due(eng.time_s):
                    self.server.publish(build_snapshot(eng, self.extras))
                if self.speed > 0 and k % pace_every == pace_every - 1:
                    time.sleep(pause)
            eng.close()
            self.server.publish(build_snapshot(eng, self.extras))  # the final state
        except BaseException as err:  # surfaced by join()
            self.error = err
