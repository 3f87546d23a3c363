"""``kelly-edge`` command line. Every user-caused error is one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import stat
import sys
import threading
from typing import Sequence

from kelly_edge import __version__
from kelly_edge.errors import KellyEdgeError, one_line

log = logging.getLogger("kelly_edge")

EXIT_USAGE = 2


def _cmd_run(args: argparse.Namespace) -> int:
    from kelly_edge.config.loader import load_config
    from kelly_edge.config.schema import default_config
    from kelly_edge.engine.offline import run_file
    from kelly_edge.fileio import check_outputs

    # before any work: no output may be a device, or the same file as an input or another output
    check_outputs((("--midi-out", args.midi_out), ("--report", args.report), ("--plot", args.plot)),
                  (("--input", args.input), ("--config", args.config)))
    config = load_config(args.config) if args.config else default_config()
    if args.input is not None and (args.realtime or args.plot) and _is_stream(args.input):
        raise KellyEdgeError(f"--input {args.input} is a pipe: {'--realtime' if args.realtime else '--plot'} reads "
                             f"the recording twice; save it to a .wav file first (or drop that option)")
    if args.input is None or args.realtime:
        if args.realtime and args.input is None:
            raise KellyEdgeError("--realtime plays a recording through the live loop: give --input FILE.wav")
        if args.plot:
            raise KellyEdgeError("--plot draws an offline run: drop --realtime, or plot the report afterwards")
        from kelly_edge.live.commands import live_main

        try:
            return live_main(config, args)
        finally:
            _ignore_stop_signals()
    if args.midi_out is None:
        raise KellyEdgeError("--midi-out OUT.mid is required with --input")
    player_chords = None
    if args.plot:
        from kelly_edge.fileio import check_writable
        from kelly_edge.viz.plot import check_available, load_player_chords

        check_available()
        check_writable(args.plot)
        player_chords = load_player_chords(args.player_chords) if args.player_chords else None
    report = run_file(config, args.input, args.midi_out, args.report)
    if args.plot:
        from kelly_edge.viz.plot import plot_run

        plot_run(report, args.midi_out, args.input, args.plot, player_chords=player_chords)
    print(
        f"{args.input}: {report['audio_s']:.1f} s, {report['hops']} hops, {report['notes']} notes, key {report['key']}, "
        f"hop p99 {report['hop_ms']['p99']:.3f} ms, {report['deadline_misses']} deadline misses, "
        f"models: {', '.join(f'{k}={v}' for k, v in report['models'].items())} -> {args.midi_out}"
    )
    return 0


def _is_stream(path: str) -> bool:
    """True for an input that can be read only once (a pipe such as /dev/stdin, a FIFO, a socket)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _cmd_check_config(args: argparse.Namespace) -> int:
    from kelly_edge.config.loader import check_config_main

    return check_config_main(args.file)


def _cmd_devices(args: argparse.Namespace) -> int:
    from kelly_edge.config.loader import load_config
    from kelly_edge.config.schema import default_config
    from kelly_edge.live.commands import devices_main

    return devices_main(load_config(args.config) if args.config else default_config())


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from kelly_edge.config.loader import load_config
    from kelly_edge.config.schema import default_config
    from kelly_edge.live.commands import calibrate_main

    return calibrate_main(load_config(args.config) if args.config else default_config(), args.seconds)


def _cmd_bench(args: argparse.Namespace) -> int:
    from kelly_edge.bench import bench_main

    return bench_main(args.seconds, args.json, args.wav)


def _cmd_status(args: argparse.Namespace) -> int:
    from kelly_edge.status.client import status_main

    return status_main(args.socket, args.json)


def _cmd_monitor(args: argparse.Namespace) -> int:
    from kelly_edge.status.monitor import monitor_main

    return monitor_main(args.socket)


def _cmd_plot(args: argparse.Namespace) -> int:
    from kelly_edge.viz.plot import plot_main

    return plot_main(args.report, args.midi, args.out, args.player_chords)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kelly-edge",
        description="Listens to an instrument, hears its emotion, key and groove, and plays along over MIDI.",
    )
    parser.add_argument("--version", action="version", version=f"kelly-edge {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    parser.add_argument("--debug", action="store_true", help="debug logging; show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    run = sub.add_parser("run", help="play live, or process a WAV recording into a MIDI file", description=(
        "Without --input: the live box (audio interface in, MIDI port out, as the config says) until SIGTERM or "
        "Ctrl-C. With --input: process the WAV file hop by hop, exactly as the live box would, and write what the "
        "box plays as a Standard MIDI File whose timing matches the audio. With --input and --realtime: play the "
        "recording through the live loop at real-time pace (rehearsal: footswitches, SIGHUP and status work)."))
    run.add_argument("--input", metavar="FILE.wav", help="WAV recording (16-96 kHz; 8/16/24/32-bit int or 32/64-bit float; any channels; RF64 too; /dev/stdin reads a pipe)")
    run.add_argument("--midi-out", metavar="OUT.mid", help="Standard MIDI File to write (with --realtime: instead of the MIDI port)")
    run.add_argument("--realtime", action="store_true", help="with --input: play the recording through the live loop in real time")
    run.add_argument("--duration", type=float, metavar="SECONDS", help="live: stop after this many seconds (default: until SIGTERM/Ctrl-C)")
    run.add_argument("--trace", action="store_true", help="live: add every MIDI message's scheduled and sent time to --report")
    run.add_argument("--status-socket", metavar="PATH", help="live: where to publish the status (default: the standard location)")
    run.add_argument("--report", metavar="REPORT.json", help="write a JSON run report (timing, notes, key, models, emotion)")
    run.add_argument("--config", metavar="CONFIG.yaml", help="YAML config (default: built-in defaults, see config/default.yaml)")
    run.add_argument("--plot", metavar="OUT.png", help="also draw the run: mel spectrogram, the player's and the box's chords, piano roll, emotion path (needs matplotlib)")
    run.add_argument("--player-chords", metavar="CHORDS.json",
                     help="with --plot: the player's chords, drawn above the box's ([{\"t\": s, \"chord\": \"Am\"}] or an annotation file)")
    run.set_defaults(func=_cmd_run)

    check = sub.add_parser("check-config", help="validate a YAML config file", description=(
        "Validate a config file: exit 0 when valid, 1 with one 'file:line: key ...' message per problem."))
    check.add_argument("file", metavar="FILE")
    check.set_defaults(func=_cmd_check_config)

    devices = sub.add_parser("devices", help="list audio inputs and MIDI outputs as the config names them, and each voice's port")
    devices.add_argument("--config", metavar="CONFIG.yaml", help="whose voices' ports to look for (default: built-in defaults)")
    devices.set_defaults(func=_cmd_devices)

    calibrate = sub.add_parser("calibrate", help="measure the input level while you play and store the input gain",
                               description="Listen to a few seconds of playing on the configured input and store its "
                                           "gain, so loudness cues mean the same on every interface and pickup.")
    calibrate.add_argument("--config", metavar="CONFIG.yaml", help="YAML config naming the input device")
    calibrate.add_argument("--seconds", type=float, default=10.0, help="how long to listen (default 10)")
    calibrate.set_defaults(func=_cmd_calibrate)

    bench = sub.add_parser("bench", help="measure the cost of a hop, stage by stage, against the alternatives",
                           description="Per-hop cost of mel, each model, the generator and the whole hop over real audio "
                                       "(p50/p99/p99.9/max; the whole hop's mean too), the floor (mel + five invokes), librosa and numpy "
                                       "comparisons, the offline real-time factor, RSS and cold start.")
    bench.add_argument("--seconds", type=float, default=30.0, help="seconds of audio per pass (default 30)")
    bench.add_argument("--json", metavar="OUT.json", help="write the results as JSON")
    bench.add_argument("--wav", metavar="FILE.wav", help="audio to measure on (default: the demo, looped)")
    bench.set_defaults(func=_cmd_bench)

    status = sub.add_parser("status", help="print the running box's state once", description=(
        "Read the running box's state from its status socket: models, emotion, key, chord, tempo, timing, devices."))
    status.add_argument("--socket", metavar="PATH", help="status socket (default: the box's standard location)")
    status.add_argument("--json", action="store_true", help="print the raw JSON snapshot")
    status.set_defaults(func=_cmd_status)

    monitor = sub.add_parser("monitor", help="show the running box's state live (q or Ctrl-C quits)")
    monitor.add_argument("--socket", metavar="PATH", help="status socket (default: the box's standard location)")
    monitor.set_defaults(func=_cmd_monitor)

    plot = sub.add_parser("plot", help="draw a past run from its report and MIDI file", description=(
        "Draw a run: the input's mel spectrogram, the piano roll coloured by voice with chord names, and the "
        "emotion path on the valence/arousal plane. The input WAV is found through the report's source path."))
    plot.add_argument("report", metavar="REPORT.json")
    plot.add_argument("midi", metavar="MIDI.mid")
    plot.add_argument("out", metavar="OUT.png")
    plot.add_argument("--player-chords", metavar="CHORDS.json",
                      help="the player's chords, drawn above the box's: [{\"t\": s, \"chord\": \"Am\"}] or an annotation file")
    plot.set_defaults(func=_cmd_plot)
    return parser


def _hold_sighup() -> None:
    """SIGHUP means "reload the config" to a running box; until the box installs its own handler
    (imports and model loading take seconds) and after it restores this one, a SIGHUP from
    ``systemctl reload`` must not kill it (the default action). A Python-level no-op, not SIG_IGN,
    so child processes still get the default."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGHUP) is signal.SIG_DFL:
        signal.signal(signal.SIGHUP, _sighup_before_the_box)


def _ignore_stop_signals() -> None:
    """The live box has stopped (notes off, report written): the process only exits now. Python's
    finalization puts its own handlers back to the default (a second SIGTERM, Ctrl-C or a SIGHUP
    would then kill it mid-exit, exit 143/130/129); ignored signals are left alone."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGHUP", None)):
            if sig is not None:
                signal.signal(sig, signal.SIG_IGN)


def _sighup_before_the_box(signum: int, frame: object) -> None:
    """Nothing to reload yet (or any more): the config being read is the current one."""


def main(argv: Sequence[str] | None = None) -> int:
    if hasattr(signal, "SIGHUP"):
        _hold_sighup()
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="kelly-edge: %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args))
    except KellyEdgeError as err:
        for line in getattr(err, "messages", None) or [str(err)]:  # each one line, whatever a path holds
            print(f"kelly-edge: error: {one_line(line)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # a bug, not bad input: still one line unless --debug
        if args.debug:
            raise
        print(f"kelly-edge: internal error: {type(err).__name__}: {one_line(str(err))} (rerun with --debug for details)",
              file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
