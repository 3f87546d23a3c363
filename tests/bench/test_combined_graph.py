"""The combined-graph trial: a real five-net INT8 graph, equal to the five, timed against them."""

from __future__ import annotations

import json
from pathlib import Path
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


def test_the_trial_times_both_and_decides_by_the_cost_of_a_bar(graphs: tuple[dict[str, bytes], bytes], tmp_path: Path) -> None:
    singles_data, combined_data = graphs
    r = cg.trial(singles_data, combined_data, hops=200)
    i, b, per = r["invoke_us"], r["per_bar_us"], r["net_invoke_us"]
    assert i["five_separate"] > 0 and i["combined"] > 0 and set(per) == set(spec.MODEL_NAMES)
    assert b["separate_at_default_rates"] == pytest.approx(
        sum(cg.DEFAULT_RATES[n] * per[n] for n in per), abs=0.2)
    assert b["combined_every_step"] == pytest.approx(spec.N_STEPS * i["combined"], abs=0.2)
    assert r["adopt"] == (b["combined_every_step"] < b["separate_at_default_rates"])
    out = tmp_path / "cg.json"
    assert cg.main(["--json", str(out), "--hops", "50"]) == 0
    assert set(json.loads(out.read_text())) >= {"invoke_us", "per_bar_us", "adopt", "output_max_abs_diff"}
