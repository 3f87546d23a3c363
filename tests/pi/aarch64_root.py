"""A Debian arm64 userland with aarch64 wheels, to run kelly-edge under qemu-user.

What a 64-bit Raspberry Pi OS box runs: Debian's python for arm64 (bookworm: 3.11, the image the
installer targets; trixie: 3.13, the newer one) and the aarch64 wheels pip picks there. Built without binfmt or chroot: ``debootstrap --foreign`` downloads the
packages (and unpacks the essential ones), the rest are unpacked with tar so the merged-/usr
symlinks (``/bin -> usr/bin``) survive (plain ``dpkg-deb -x`` replaces them with folders). The
wheels come from ``pip install --target --platform manylinux_2_NN_aarch64 --only-binary=:all:``.

Two traps of qemu-user: the guest sees the host's /proc/cpuinfo (x86), on which TFLite's cpuinfo
library crashes, so the root gets an ARM ``proc/cpuinfo`` (qemu's ``-L ROOT`` serves a file that
exists under ROOT in place of the host's); and ``-cpu max`` has features whose INT8 kernels round
differently, so the CPU is a Pi 4's Cortex-A72.

The root and the wheels are cached in ``~/.cache/kelly-edge-pi/<hash of the recipe>`` (or
``$KELLY_EDGE_PI_CACHE``); a fresh machine builds them in a few minutes. Run as a script to build
(and time) the cache: ``python -m tests.pi.aarch64_root [SUITE]``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

PYTHONS = {"bookworm": "3.11", "trixie": "3.13"}  # Debian suite -> its python3
MIRROR = "http://deb.debian.org/debian"
# What `kelly-edge run --input` imports, at the versions the x86 run uses (same bytes expected).
WHEELS = ("numpy", "pyyaml", "ai-edge-litert")
PLATFORMS = tuple(f"manylinux_2_{n}_aarch64" for n in range(17, 37))  # bookworm's glibc is 2.36
QEMU = "qemu-aarch64-static"
CPU = "cortex-a72"  # Raspberry Pi 4; bit-exact INT8 (``-cpu max`` is not)

# A Pi 4's /proc/cpuinfo, one block per host CPU (the guest sees the host's /sys cpu list).
CPU_BLOCK = """processor\t: {n}
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3

"""
CPU_TAIL = "Hardware\t: BCM2835\nRevision\t: c03114\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n"


def pinned_wheels() -> list[str]:
    """The wheels as ``name==version`` of this interpreter's installs (the x86 reference run)."""
    return [f"{name}=={metadata.version(name)}" for name in WHEELS]


def cache_home() -> Path:
    return Path(os.environ.get("KELLY_EDGE_PI_CACHE", Path.home() / ".cache" / "kelly-edge-pi"))


def debs(suite: str) -> tuple[str, ...]:
    return (f"python{PYTHONS[suite]}", f"libpython{PYTHONS[suite]}-stdlib")


def recipe(suite: str) -> dict[str, object]:
    return {"suite": suite, "debs": debs(suite), "wheels": pinned_wheels(), "platforms": PLATFORMS,
            "cpus": os.cpu_count(), "format": 1}


def cache_dir(suite: str) -> Path:
    key = hashlib.sha256(json.dumps(recipe(suite), sort_keys=True).encode()).hexdigest()[:16]
    return cache_home() / f"{suite}-{key}"


def missing_tools() -> list[str]:
    return [tool for tool in (QEMU, "debootstrap", "dpkg-deb") if shutil.which(tool) is None]


def _run(cmd: list[str], **kw: object) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}... failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")


def build_root(root: Path, suite: str) -> None:
    """Debian ``suite`` arm64 with its python3 in ``root`` (an empty folder)."""
    _run(["debootstrap", "--foreign", "--arch=arm64", "--variant=minbase", f"--include={','.join(debs(suite))}",
          suite, str(root), MIRROR], timeout=900)
    for deb in sorted((root / "var/cache/apt/archives").glob("*.deb")):
        with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as unpack:
            _run(["tar", "-x", "--keep-directory-symlink", "-C", str(root)], stdin=unpack.stdout)
        if unpack.returncode != 0:
            raise RuntimeError(f"dpkg-deb --fsys-tarfile {deb.name} failed")
        deb.unlink()  # the cache stays small
    proc = root / "proc"
    if proc.is_symlink():  # debootstrap --foreign links proc -> /proc: never write through it
        proc.unlink()
    proc.mkdir(exist_ok=True)
    cpus = os.cpu_count() or 1
    (root / "proc/cpuinfo").write_text("".join(CPU_BLOCK.format(n=n) for n in range(cpus)) + CPU_TAIL)


def install_wheels(target: Path, specs: list[str], *, python: str = "3.11", deps: bool = True) -> None:
    """aarch64 wheels for CPython ``python`` of ``specs`` (and their dependencies) into ``target``."""
    abi = "cp" + python.replace(".", "")
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(target),
           "--only-binary=:all:", "--python-version", python, "--implementation", "cp", "--abi", abi]
    for platform in PLATFORMS:
        cmd += ["--platform", platform]
    if not deps:
        cmd.append("--no-deps")
    _run(cmd + specs, timeout=900)


def ensure(suite: str = "bookworm") -> tuple[Path, Path, float]:
    """``(root, wheels, seconds spent building)``: the cached userland, built when missing."""
    final = cache_dir(suite)
    if (final / "done").is_file():
        return final / "root", final / "wheels", 0.0
    started = time.perf_counter()
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=final.name + ".", dir=final.parent))
    try:
        build_root(work / "root", suite)
        install_wheels(work / "wheels", pinned_wheels(), python=PYTHONS[suite])
        (work / "done").write_text(json.dumps(recipe(suite), indent=1))
        if final.exists():  # a half-built one from a crash: replace it
            shutil.rmtree(final)
        work.rename(final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return final / "root", final / "wheels", time.perf_counter() - started


def guest_python(root: Path, suite: str = "bookworm") -> list[str]:
    """The command prefix running the root's python under qemu (no binfmt, no chroot)."""
    return [QEMU, "-cpu", CPU, "-L", str(root), str(root / f"usr/bin/python{PYTHONS[suite]}")]


if __name__ == "__main__":
    root, wheels, spent = ensure(*sys.argv[1:2])
    print(f"{root} and {wheels} ready (built in {spent:.0f} s)" if spent else f"{root} cached")
