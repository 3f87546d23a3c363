"""The demo on aarch64: Debian arm64 (what 64-bit Raspberry Pi OS is built on; bookworm with
python 3.11, and trixie with python 3.13) under qemu-user as a Pi 4's Cortex-A72, with the aarch64
wheels pip installs there and the wheel built from this tree. Its .mid must be byte-identical to
this machine's run (default config): the INT8 nets, numpy and the engine give the same notes on
the Pi as in CI.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from kelly_edge.models import spec
from tests.pi import aarch64_root
from tests.pi.conftest import demo_cmd, run

pytestmark = [
    pytest.mark.pi,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="debootstrap needs root to build the arm64 userland"),
]


@pytest.mark.parametrize("suite", ["bookworm", "trixie"])
def test_the_demo_on_aarch64_gives_the_same_bytes_as_here(
        tmp_path: Path, kelly_wheel: Path, x86_demo: bytes, pi_timings: dict[str, float], suite: str) -> None:
    missing = aarch64_root.missing_tools()
    assert not missing, f"missing {' '.join(missing)}: apt-get install qemu-user-static debootstrap (make test does)"
    root, wheels, built_s = aarch64_root.ensure(suite)
    if built_s:
        pi_timings[f"{suite} arm64 userland + aarch64 wheels, built from scratch (s)"] = built_s
    kelly = tmp_path / "kelly"
    aarch64_root.install_wheels(kelly, [str(kelly_wheel)], python=aarch64_root.PYTHONS[suite], deps=False)
    guest = aarch64_root.guest_python(root, suite)
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": f"{wheels}:{kelly}", "PYTHONNOUSERSITE": "1",
           "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(tmp_path)}
    probe = run([*guest, "-c",
                 "import platform, struct, kelly_edge; print(platform.machine(), struct.calcsize('P') * 8, kelly_edge.__file__)"],
                env=env, cwd=tmp_path)
    machine, bits, where = probe.stdout.split()
    assert (machine, bits) == ("aarch64", "64") and where.startswith(str(kelly))
    out, report = tmp_path / "arm.mid", tmp_path / "arm.json"
    started = time.perf_counter()
    run([*guest, "-m", "kelly_edge", *demo_cmd(out, report)], env=env, cwd=tmp_path)
    pi_timings[f"demo under qemu-aarch64, {suite} (s)"] = time.perf_counter() - started
    assert json.loads(report.read_text())["models"] == dict.fromkeys(spec.MODEL_NAMES, "trained")
    assert out.read_bytes() == x86_demo
