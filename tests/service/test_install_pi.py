"""tools/install-pi.sh into a fake root: everything lands where the unit expects it, twice changes nothing."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tools" / "install-pi.sh"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("useradd") is None,
    reason="creating users (even in a fake root) needs root and the shadow tools",
)


def fake_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    etc = root / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\naudio:x:29:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\naudio:*::\n")
    os.chmod(etc / "shadow", 0o600)
    os.chmod(etc / "gshadow", 0o600)
    return root


def dummy_wheel(tmp_path: Path) -> Path:
    """A tiny wheel standing in for the package (no build, no network)."""
    path = tmp_path / "kelly_edge_standin-1.0-py3-none-any.whl"
    files = {
        "kelly_edge_standin/__init__.py": "VERSION = '1.0'\n",
        "kelly_edge_standin-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: kelly-edge-standin\nVersion: 1.0\n",
        "kelly_edge_standin-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
        zf.writestr("kelly_edge_standin-1.0.dist-info/RECORD",
                    "".join(f"{name},,\n" for name in files) + "kelly_edge_standin-1.0.dist-info/RECORD,,\n")
    return path


def install(root: Path, *args: str) -> str:
    env = {**os.environ, "PIP_NO_CACHE_DIR": "1", "PIP_ARGS": "--no-deps --no-index"}
    env.pop("ROOT", None)
    done = subprocess.run([str(SCRIPT), "--root", str(root), "--python", sys.executable, *args],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every path under ``root`` with its type, mode, owner and content hash (or link target)."""
    out: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        rel = str(path.relative_to(root))
        if stat.S_ISLNK(st.st_mode):
            out[rel] = ("link", os.readlink(path))
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = ("dir", st.st_mode, st.st_uid, st.st_gid)
        else:
            out[rel] = ("file", st.st_mode, st.st_uid, st.st_gid, hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def group_members(root: Path, group: str) -> list[str]:
    for line in (root / "etc" / "group").read_text().splitlines():
        name, _, gid, members = line.split(":")
        if name == group:
            return [m for m in members.split(",") if m]
    raise AssertionError(f"no group {group}")


def test_install_twice_changes_nothing_the_second_time(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    wheel = dummy_wheel(tmp_path)
    first = install(root, "--performance-governor", "--package-from", str(wheel))
    assert "changed: install the package" in first and not first.rstrip().endswith(" 0 changes")
    before = snapshot(root)
    second = install(root, "--performance-governor", "--package-from", str(wheel))
    assert second.rstrip().splitlines()[-1] == "0 changes", second
    assert "changed:" not in second
    assert snapshot(root) == before

    unit = root / "etc/systemd/system/kelly-edge.service"
    assert unit.read_bytes() == (REPO / "systemd" / "kelly-edge.service").read_bytes()
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    wants = root / "etc/systemd/system/multi-user.target.wants"
    assert os.readlink(wants / "kelly-edge.service") == "/etc/systemd/system/kelly-edge.service"
    assert os.readlink(wants / "kelly-edge-cpufreq.service") == "/etc/systemd/system/kelly-edge-cpufreq.service"
    config = root / "etc/kelly-edge/config.yaml"
    assert config.read_bytes() == (REPO / "config" / "default.yaml").read_bytes()
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    passwd = (root / "etc/passwd").read_text()
    assert "kelly-edge:" in passwd and "/usr/sbin/nologin" in passwd
    assert group_members(root, "audio") == ["kelly-edge"] and group_members(root, "gpio") == ["kelly-edge"]
    python = root / "opt/kelly-edge/venv/bin/python"
    done = subprocess.run([str(python), "-c", "import kelly_edge_standin as m; print(m.VERSION)"],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "1.0", done.stderr


def test_an_edited_config_is_kept_and_a_changed_unit_is_put_back(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    install(root, "--no-package")
    config = root / "etc/kelly-edge/config.yaml"
    config.write_text("tempo:\n  bpm: 90\n")
    unit = root / "etc/systemd/system/kelly-edge.service"
    unit.write_text(unit.read_text().replace("WatchdogSec=5", "WatchdogSec=50"))
    out = install(root, "--no-package")
    assert config.read_text() == "tempo:\n  bpm: 90\n"
    assert unit.read_bytes() == (REPO / "systemd" / "kelly-edge.service").read_bytes()
    assert out.rstrip().splitlines()[-1] == "1 changes"


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    before = snapshot(root)
    out = install(root, "--dry-run", "--no-package", "--performance-governor")
    assert snapshot(root) == before
    assert "would: create user kelly-edge" in out and "would: install /etc/systemd/system/kelly-edge.service" in out
    last = out.rstrip().splitlines()[-1]
    assert last.endswith(" changes would be made") and int(last.split()[0]) >= 5
