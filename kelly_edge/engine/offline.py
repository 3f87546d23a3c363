"""Run a recording through the engine hop by hop, exactly as the live loop would, into a .mid.

One difference from live: the scheduler only measures the hop budget here (see
:meth:`Scheduler.measure_only`), so the notes depend on the input, config and models alone, never
on how fast or busy the machine is. ``run --input --realtime`` rehearses with the live budget.
"""

from __future__ import annotations

import gc
import logging
import time
from pathlib import Path
from typing import Any

from kelly_edge.audio.wav import WavReader
from kelly_edge.engine.engine import Engine
from kelly_edge.fileio import check_writable
from kelly_edge.midi.sinks import FileSink
from kelly_edge.report import build_report, write_report

log = logging.getLogger(__name__)

BLOCK_HOPS = 100  # read a second of audio at a time


def run_file(config: Any, input_path: str | Path, midi_out: str | Path, report_path: str | Path | None = None) -> dict[str, Any]:
    """Process ``input_path`` and write ``midi_out`` (and the report). Returns the report dict.

    Output paths are checked before the (possibly long) run; the MIDI file is written atomically
    when the run ends, with every note released at the end of the audio, and only once the report
    was written too (a full disk leaves neither).
    """
    check_writable(midi_out)
    if report_path is not None:
        check_writable(report_path)
    with WavReader(input_path) as reader:
        info = reader.info
        sink = FileSink(midi_out, bpm=config.tempo.bpm)
        engine = Engine(config, sink, sample_rate=reader.sample_rate)
        engine.scheduler.measure_only()
        log.info("%s: %s", input_path, info.describe())
        hop = engine.hop_length
        gc.collect()
        gc.freeze()  # start-up garbage is now permanent: no full collection walks it mid-run
        started = time.perf_counter()
        try:
            while True:
                block = reader.read(hop * BLOCK_HOPS)
                if block.size == 0:
                    break
                for start in range(0, block.size, hop):
                    engine.process_hop(block[start : start + hop])
        finally:
            engine.close()
            gc.unfreeze()
        midi = sink.finish()  # complete beside its path; put in place with the report: both or neither
        wall = time.perf_counter() - started
    source = {"path": str(input_path), "sample_rate": info.sample_rate, "channels": info.channels,
              "bits": info.bits, "float": info.is_float, "duration_s": round(reader.frames_read / info.sample_rate, 3)}
    try:
        report = build_report(engine, source=source, wall_s=wall)
        if report_path is not None:
            write_report(report_path, report)
    except BaseException:
        midi.discard()
        raise
    midi.commit()
    return report


