"""The combined-graph trial: a real five-net INT8 graph, equal to the five, timed against them."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import tensorflow  # noqa: F401  (the [train] extra: make test installs it; a missing TF must fail, not skip)

from kelly_edge.models import spec
from tools import combined_graph as cg


@pytest.fixture(scope="module")
def graphs() -> tuple[dict[str, bytes], bytes]:
    singles, combined = cg.build_models(seed=3)
    return cg.convert_all(singles, combined, seed=3)


def test_the_combined_graph_holds_the_five_nets_in_int8(graphs: tuple[dict[str, bytes], bytes]) -> None:
    singles_data, combined_data = graphs
    it: Any = cg.interpreter(combined_data)
    ins, outs = it.get_input_details(), it.get_output_details()
    assert sorted(int(d["shape"][1]) for d in ins) == sorted(s.n_in for s in spec.MODELS)
    assert sorted(int(d["shape"][1]) for d in outs) == sorted(s.n_out for s in spec.MODELS)
    assert all(d["dtype"] == np.int8 for d in (*ins, *outs))
    assert all(any(f"in_{s.name}" in d["name"] for d in ins) for s in spec.MODELS)  # one input per net, by name
    for name, data in singles_data.items():
        single: Any = cg.interpreter(data)
        assert tuple(single.get_input_details()[0]["shape"]) == (1, spec.BY_NAME[name].n_in)


def test_its_outputs_equal_the_separate_nets(graphs: tuple[dict[str, bytes], bytes]) -> None:
    singles_data, combined_data = graphs
    singles = {name: cg.interpreter(d) for name, d in singles_data.items()}
    diffs = cg.agreement(singles, cg.interpreter(combined_data), seed=7)
    assert set(diffs) == set(spec.MODEL_NAMES)
    assert max(diffs.values()) < 0.05, diffs  # the same weights: at most INT8 rounding apart


NET_US = {"emotion": 10.0, "melody": 20.0, "harmony": 30.0, "dynamics": 5.0, "groove": 40.0}
"""Invoke costs the work clock charges per net: 16*10 + 16*20 + 4*30 + 4*5 + 40 = 660 us a bar,
105 us for the five invoked once each."""


def _trial_on_a_work_clock(monkeypatch: pytest.MonkeyPatch, graphs: tuple[dict[str, bytes], bytes],
                           combined_us: float) -> dict[str, Any]:
    """The real trial (real interpreters, real outputs) timed by a clock only their invokes move."""
    singles_data, combined_data = graphs
    cost_ns = {id(combined_data): int(combined_us * 1000)}
    cost_ns.update({id(data): int(NET_US[name] * 1000) for name, data in singles_data.items()})
    now = [0]
    real = cg.interpreter

    class Timed:
        def __init__(self, data: bytes) -> None:
            self._it, self._ns = real(data), cost_ns[id(data)]

        def invoke(self) -> None:
            self._it.invoke()
            now[0] += self._ns

        def __getattr__(self, name: str) -> Any:
            return getattr(self._it, name)

    monkeypatch.setattr(cg, "interpreter", Timed)
    monkeypatch.setattr(cg, "time", SimpleNamespace(perf_counter_ns=lambda: now[0]))
    return cg.trial(singles_data, combined_data, hops=50)


def test_the_trial_decides_by_the_cost_of_a_bar_not_of_one_invoke(
        graphs: tuple[dict[str, bytes], bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    # one combined invoke (50 us) is cheaper than the five (105 us), but 16 of them a bar (800 us)
    # cost more than the five at their own rates (660 us): keep five graphs
    r = _trial_on_a_work_clock(monkeypatch, graphs, combined_us=50.0)
    assert r["invoke_us"]["five_separate"] == 105.0 and r["invoke_us"]["combined"] == 50.0
    assert r["net_invoke_us"] == NET_US
    assert r["per_bar_us"]["separate_at_default_rates"] == 660.0 and r["per_bar_us"]["combined_every_step"] == 800.0
    assert r["adopt"] is False
    r = _trial_on_a_work_clock(monkeypatch, graphs, combined_us=40.0)  # 640 us a bar: now it wins
    assert r["per_bar_us"]["combined_every_step"] == 640.0 and r["adopt"] is True
    assert max(r["output_max_abs_diff"].values()) < 0.05  # the outputs were still compared for real


def test_the_trial_times_both_on_this_machine_and_writes_json(graphs: tuple[dict[str, bytes], bytes],
                                                              tmp_path: Path) -> None:
    singles_data, combined_data = graphs
    r = cg.trial(singles_data, combined_data, hops=200)
    i, per = r["invoke_us"], r["net_invoke_us"]
    assert i["five_separate"] > 0 and i["combined"] > 0 and set(per) == set(spec.MODEL_NAMES)
    assert all(v > 0 for v in per.values()) and isinstance(r["adopt"], bool)
    out = tmp_path / "cg.json"
    assert cg.main(["--json", str(out), "--hops", "50"]) == 0
    assert set(json.loads(out.read_text())) >= {"invoke_us", "per_bar_us", "adopt", "output_max_abs_diff"}
