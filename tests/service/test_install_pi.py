"""tools/install-pi.sh into a fake root: everything lands where the unit expects it, twice changes nothing.

The ``pi``-marked test installs the real package (with its dependencies from PyPI) and runs the
installed ``kelly-edge`` on the demo; the others use a stand-in wheel and are offline. Debian's
archive is faked (apt-get, apt-cache, dpkg on PATH) only where a test checks what would be installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kelly_edge.models import spec

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tools" / "install-pi.sh"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("useradd") is None,
    reason="creating users (even in a fake root) needs root and the shadow tools",
)


def fake_root(tmp_path: Path) -> Path:
    """/etc of a fresh Raspberry Pi OS: root and the login user pi (who runs sudo)."""
    root = tmp_path / "root"
    etc = root / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000:,,,:/home/pi:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\naudio:x:29:pi\npi:x:1000:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\npi:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\naudio:*::pi\npi:!::\n")
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


def run_script(root: Path, *args: str, env: dict[str, str] | None = None, sudo_user: str | None = None,
               offline: bool = True) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **(env or {})}
    if offline:  # the stand-in wheel, no network, no Debian packages, no gpio backend
        full.update(PIP_NO_CACHE_DIR="1", PIP_ARGS="--no-deps --no-index")
        args = ("--no-apt", "--no-gpio", *args)
    full.pop("ROOT", None)
    full.pop("SUDO_USER", None)
    if sudo_user:
        full["SUDO_USER"] = sudo_user
    return subprocess.run([str(SCRIPT), "--root", str(root), "--python", sys.executable, *args],
                          capture_output=True, text=True, env=full, timeout=900)


def install(root: Path, *args: str, **kw: object) -> str:
    done = run_script(root, *args, **kw)  # type: ignore[arg-type]
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
    assert group_members(root, "audio") == ["pi", "kelly-edge"] and group_members(root, "gpio") == ["kelly-edge"]
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


def fake_bin(tmp_path: Path, **scripts: str) -> dict[str, str]:
    """Commands on PATH in front of the real ones (each a shell script body); returns the env."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in scripts.items():
        path = bin_dir / name.replace("_", "-")
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


@pytest.mark.parametrize("how", ["dpkg says armhf", "python is 32-bit"])
def test_a_32_bit_userland_is_refused_in_one_line_naming_the_image(tmp_path: Path, how: str) -> None:
    """32-bit Raspberry Pi OS on a Pi 4/5 boots a 64-bit kernel: `uname -m` is aarch64 there, so
    the userland is what is asked (dpkg's architecture, the python's pointer size)."""
    root = fake_root(tmp_path)
    before = snapshot(root)
    if how == "dpkg says armhf":
        env = fake_bin(tmp_path, dpkg='[ "$1" = --print-architecture ] && echo armhf && exit 0; exit 1')
        python = sys.executable
    else:
        env = fake_bin(tmp_path, dpkg="exit 1")  # no dpkg answer: the python decides
        python = str(tmp_path / "bin" / "python32")
        Path(python).write_text(f'#!/bin/sh\ncase "$*" in *calcsize*) echo 32 ;; *) exec {sys.executable} "$@" ;; esac\n')
        Path(python).chmod(0o755)
    done = subprocess.run([str(SCRIPT), "--root", str(root), "--python", python, "--no-package"],
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "32-bit" in lines[0] and "64-bit Raspberry Pi OS" in lines[0], done.stderr
    assert snapshot(root) == before and done.stdout == ""


@pytest.mark.parametrize("archive_has_lgpio", [True, False])
def test_missing_debian_packages_are_installed_and_lgpio_comes_from_apt_when_it_can(
        tmp_path: Path, archive_has_lgpio: bool) -> None:
    root = fake_root(tmp_path)
    log = tmp_path / "apt.log"
    candidate = "2.2-1" if archive_has_lgpio else "(none)"
    env = fake_bin(
        tmp_path,
        # installed: everything but portaudio19-dev and gcc (and python3-lgpio)
        dpkg_query='case "$*" in *portaudio19-dev*|*gcc*|*lgpio*) exit 1 ;; esac; printf "install ok installed"',
        apt_cache=f'echo "$1:"; echo "  Installed: (none)"; echo "  Candidate: {candidate}"',
        apt_get=f'echo "apt-get $*" >> {log}',
    )
    out = install(root, "--no-package", env=env, offline=False)
    calls = log.read_text().splitlines()
    want = "gcc portaudio19-dev python3-lgpio" if archive_has_lgpio else "gcc portaudio19-dev"
    assert calls == ["apt-get update -qq", f"apt-get install -y -qq --no-install-recommends {want}"], calls
    assert f"changed: apt-get install {want}" in out
    dry = install(root, "--no-package", "--dry-run", env=env, offline=False)
    assert len(log.read_text().splitlines()) == 2 and f"would: apt-get install {want}" in dry
    skipped = install(root, "--no-package", "--no-apt", env=env, offline=False)
    assert len(log.read_text().splitlines()) == 2 and "skipped: Debian packages (--no-apt); missing here: " in skipped


def test_the_sudo_user_joins_the_status_group_once(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    first = install(root, "--no-package", sudo_user="pi")
    assert "changed: add pi to kelly-edge" in first
    assert group_members(root, "kelly-edge") == ["pi"]
    assert group_members(root, "audio") == ["pi", "kelly-edge"]  # pi's own groups are kept
    second = install(root, "--no-package", sudo_user="pi")
    assert "ok: pi in kelly-edge" in second and second.rstrip().splitlines()[-1] == "0 changes"
    nobody = install(root, "--no-package", sudo_user="ghost")
    assert "skipped: ghost is not a user" in nobody


def test_a_run_that_failed_partway_is_finished_by_running_it_again(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    wheel = dummy_wheel(tmp_path)
    broken = run_script(root, "--package-from", str(tmp_path / "missing.whl"))
    assert broken.returncode != 0
    assert not (root / "opt/kelly-edge/venv/.kelly-edge-source").exists()
    out = install(root, "--package-from", str(wheel))
    assert "changed: install the package" in out
    assert os.readlink(root / "usr/local/bin/kelly-edge") == "/opt/kelly-edge/venv/bin/kelly-edge"
    assert install(root, "--package-from", str(wheel)).rstrip().splitlines()[-1] == "0 changes"


@pytest.mark.pi
@pytest.mark.slow
def test_the_real_package_installs_into_a_staging_root_and_plays_with_five_trained_models(tmp_path: Path) -> None:
    """The README's way, for real: Debian packages checked (this machine), the repo's package
    with its dependencies from PyPI, the gpio backend, PATH, the sudo user's group."""
    root = fake_root(tmp_path)
    first = install(root, offline=False, sudo_user="pi")
    assert "changed: install the package" in first and "changed: add pi to kelly-edge" in first
    link = root / "usr/local/bin/kelly-edge"
    target = os.readlink(link)
    assert target == "/opt/kelly-edge/venv/bin/kelly-edge"
    kelly = root / target.lstrip("/")
    venv_python = root / "opt/kelly-edge/venv/bin/python"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    check = subprocess.run([str(venv_python), "-c", "import lgpio, kelly_edge; print(kelly_edge.__file__)"],
                           cwd=elsewhere, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and str(root / "opt/kelly-edge/venv/lib") in check.stdout, check.stdout + check.stderr
    done = subprocess.run([str(kelly), "run", "--input", str(REPO / "kelly_edge/data/demo.wav"),
                           "--midi-out", "demo.mid", "--report", "report.json"],
                          cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads((elsewhere / "report.json").read_text())
    assert report["models"] == dict.fromkeys(spec.MODEL_NAMES, "trained"), report["models"]
    assert "fallback" not in done.stderr
    assert group_members(root, "kelly-edge") == ["pi"]
    assert not list(Path.cwd().glob(".lgd-nfy*")), "the installer's lgpio check left a FIFO in the working folder"
    again = install(root, offline=False, sudo_user="pi")
    assert again.rstrip().splitlines()[-1] == "0 changes", again
