"""The combined-graph trial: one INT8 TFLite graph holding all five nets, against five graphs.

    python -m tools.combined_graph [--json OUT.json] [--hops N]

A combined graph saves the per-invoke overhead of four interpreters, but it has one input per
net and computes all five whenever it is invoked. Whether it wins depends on how often each net
runs, so the trial measures, on this machine and in one run:

- ``invoke_us``: one combined invoke against five separate invokes (the "every net every hop"
  case: the floor of ``kelly-edge bench``);
- ``per_bar_us``: the cost of one 4/4 bar at the engine's default rates (emotion and melody every
  16th, harmony and dynamics every beat, groove every bar: 16 + 16 + 4 + 4 + 1 separate invokes)
  against one combined invoke per 16th step, which is what the generator would need.

The nets are built with the training code's builders (same layers and heads) and converted to
full INT8 by the shipped ones' converter (:func:`tools.train.convert.keras_to_int8`); weights are
untrained (an INT8 fully connected graph costs the same whatever the values). The combined graph
is the five :func:`tools.train.nets.build` models side by side, so its outputs equal theirs to
INT8 rounding (``output_max_abs_diff``). Needs the
``train`` extra (TensorFlow); ``ai_edge_litert`` runs both. Results are printed and, with
``--json``, written atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kelly_edge.fileio import write_atomic
from kelly_edge.models import spec
from tools.train.convert import keras_to_int8

N_REPRESENTATIVE = 200
DEFAULT_RATES = {"emotion": 16, "melody": 16, "harmony": 4, "dynamics": 4, "groove": 1}  # runs per bar
STEPS_PER_BAR = spec.N_STEPS


def build_models(seed: int = 0) -> tuple[dict[str, Any], Any]:
    """The five Keras nets and one functional model applying each to its own input ``in_<name>``."""
    import keras

    from tools.train import nets

    singles = {s.name: nets.build(s.name, seed=seed + i) for i, s in enumerate(spec.MODELS)}
    inputs = {name: keras.Input((spec.BY_NAME[name].n_in,), name=f"in_{name}") for name in singles}
    outputs = [singles[name](inputs[name]) for name in singles]
    combined = keras.Model([inputs[n] for n in singles], outputs, name="combined")
    return singles, combined


def convert_all(singles: dict[str, Any], combined: Any, *, seed: int = 0) -> tuple[dict[str, bytes], bytes]:
    """Full-INT8 flatbuffers of each net and of the combined graph (standard-normal calibration rows:
    the runtime standardises every input)."""
    rng = np.random.default_rng(seed)
    rows = {name: rng.standard_normal((N_REPRESENTATIVE, spec.BY_NAME[name].n_in)).astype(np.float32) for name in singles}

    def one(name: str) -> Callable[[], Any]:
        def gen() -> Any:
            for row in rows[name]:
                yield [row[None]]
        return gen

    def all_inputs() -> Any:  # a multi-input model is calibrated with dicts keyed by input name
        for i in range(N_REPRESENTATIVE):
            yield {f"in_{name}": rows[name][i][None] for name in singles}

    return {name: keras_to_int8(m, one(name)) for name, m in singles.items()}, keras_to_int8(combined, all_inputs)


def interpreter(data: bytes) -> Any:
    """An allocated, once-invoked single-threaded interpreter of a flatbuffer."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=data, num_threads=1)
    it.allocate_tensors()
    it.invoke()
    return it


def _deq(it: Any, d: dict[str, Any]) -> np.ndarray:
    scale, zero = d["quantization"]
    return (it.get_tensor(d["index"]).astype(np.float32) - zero) * scale


def _feed(it: Any, d: dict[str, Any], x: np.ndarray) -> None:
    scale, zero = d["quantization"]
    it.set_tensor(d["index"], np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)[None])


def agreement(singles: dict[str, Any], combined: Any, *, seed: int = 1) -> dict[str, float]:
    """Feed the same standard-normal input to each net and to its input of the combined graph;
    return, per net, the largest difference between its output and the closest combined output
    (each output of the combined graph claimed once). Inputs are found by name (``in_<net>``);
    outputs are matched by value, since the converter names them by position only."""
    rng = np.random.default_rng(seed)
    ins = {d["name"]: d for d in combined.get_input_details()}
    outs = list(combined.get_output_details())
    expected = {}
    for s in spec.MODELS:
        x = rng.standard_normal(s.n_in).astype(np.float32)
        single = singles[s.name]
        _feed(single, single.get_input_details()[0], x)
        single.invoke()
        expected[s.name] = _deq(single, single.get_output_details()[0])[0]
        _feed(combined, next(d for name, d in ins.items() if f"in_{s.name}" in name), x)
    combined.invoke()
    got = [_deq(combined, d)[0] for d in outs]
    diffs: dict[str, float] = {}
    for name, want in expected.items():
        best = min((float(np.max(np.abs(g - want))), k) for k, g in enumerate(got) if g.shape == want.shape)
        diffs[name] = round(best[0], 4)
        got[best[1]] = np.full_like(got[best[1]], np.inf)  # claimed
    return diffs


def _time(fn: Callable[[], None], n: int) -> np.ndarray:
    clock = time.perf_counter_ns
    t = np.zeros(n, dtype=np.int64)
    for k in range(n):
        t0 = clock()
        fn()
        t[k] = clock() - t0
    return t / 1000.0


def trial(singles_data: dict[str, bytes], combined_data: bytes, *, hops: int = 3000) -> dict[str, Any]:
    """Time both ways in one run (alternating blocks, so machine noise hits both) and decide."""
    singles = {name: interpreter(d) for name, d in singles_data.items()}
    combined = interpreter(combined_data)
    diffs = agreement(singles, combined)
    invokes = [it.invoke for it in singles.values()]

    def five() -> None:
        for inv in invokes:
            inv()

    per_net: dict[str, list[np.ndarray]] = {name: [] for name in singles}
    five_t: list[np.ndarray] = []
    comb_t: list[np.ndarray] = []
    block = max(1, hops // 10)
    for _ in range(10):
        five_t.append(_time(five, block))
        comb_t.append(_time(combined.invoke, block))
        for name, it in singles.items():
            per_net[name].append(_time(it.invoke, block // 5 or 1))
    five_us = float(np.median(np.concatenate(five_t)))
    comb_us = float(np.median(np.concatenate(comb_t)))
    net_us = {name: float(np.median(np.concatenate(v))) for name, v in per_net.items()}
    separate_bar = sum(DEFAULT_RATES[name] * net_us[name] for name in net_us)
    combined_bar = STEPS_PER_BAR * comb_us
    return {
        "invoke_us": {"five_separate": round(five_us, 2), "combined": round(comb_us, 2),
                      "combined_over_five": round(comb_us / five_us, 3)},
        "net_invoke_us": {k: round(v, 2) for k, v in net_us.items()},
        "per_bar_us": {"separate_at_default_rates": round(separate_bar, 1), "combined_every_step": round(combined_bar, 1),
                       "combined_over_separate": round(combined_bar / separate_bar, 3)},
        "runs_per_bar": DEFAULT_RATES,
        "adopt": bool(combined_bar < separate_bar),
        "output_max_abs_diff": diffs,
        "hops": hops,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.combined_graph", description=__doc__.split("\n")[0])
    p.add_argument("--json", type=Path, default=None, help="write the results here (atomically)")
    p.add_argument("--hops", type=int, default=3000, help="invokes timed each way (default 3000)")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        print("error: the combined-graph trial needs TensorFlow: pip install -e '.[train]'", file=sys.stderr)
        return 2
    singles, combined = build_models()
    singles_data, combined_data = convert_all(singles, combined)
    r = trial(singles_data, combined_data, hops=args.hops)
    i, b = r["invoke_us"], r["per_bar_us"]
    print(f"one combined invoke {i['combined']} us vs five separate {i['five_separate']} us ({i['combined_over_five']}x)")
    print(f"per bar at the default rates: combined every 16th {b['combined_every_step']} us vs separate "
          f"{b['separate_at_default_rates']} us ({b['combined_over_separate']}x) -> "
          f"{'adopt' if r['adopt'] else 'keep five graphs'}")
    if args.json is not None:
        write_atomic(args.json, (json.dumps(r, indent=2) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
