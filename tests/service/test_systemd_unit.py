"""systemd/kelly-edge.service: systemd-analyze accepts it, and it has what the issue asks for."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "kelly-edge.service"
EXEC = "/opt/kelly-edge/venv/bin/kelly-edge"


def parse(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> every value given (systemd keys may repeat)."""
    out: dict[str, dict[str, list[str]]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            out.setdefault(section, {})
            continue
        key, _, value = line.partition("=")
        out[section].setdefault(key.strip(), []).append(value.strip())
    return out


UNIT_KEYS = parse(UNIT.read_text())


def one(section: str, key: str) -> str:
    values = UNIT_KEYS[section][key]
    assert len(values) == 1, f"{key} given {len(values)} times"
    return values[0]


def test_systemd_analyze_verify_is_silent(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point it at a real executable in a copy of the unit
    text = UNIT.read_text()
    assert EXEC in text
    copy = tmp_path / "kelly-edge.service"
    copy.write_text(text.replace(EXEC, shutil.which("true") or "/bin/true"))
    done = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60)
    output = (done.stdout + done.stderr).strip()
    lines = [line for line in output.splitlines() if str(copy) in line or "kelly-edge" in line]
    assert done.returncode == 0, output
    assert lines == [], output  # no unknown key, bad value or missing-file complaint about our unit


def test_verify_would_catch_an_unknown_directive(tmp_path: Path) -> None:
    copy = tmp_path / "kelly-edge.service"
    copy.write_text(UNIT.read_text().replace(EXEC, "/bin/true").replace("[Service]\n", "[Service]\nWatchDogSecs=5\n"))
    done = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert re.search(r"Unknown key .?WatchDogSecs", done.stdout + done.stderr)


def test_the_unit_has_what_the_box_needs() -> None:
    assert one("Service", "Type") == "notify"
    assert int(one("Service", "WatchdogSec").rstrip("s")) > 0
    assert one("Service", "Restart") == "on-failure"
    assert one("Service", "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one("Service", "ExecStart").startswith(EXEC + " run --config /etc/kelly-edge/config.yaml")
    assert one("Service", "User") == "kelly-edge"
    assert set(one("Service", "SupplementaryGroups").split()) == {"audio", "gpio"}
    assert int(one("Service", "LimitRTPRIO")) >= 50
    assert one("Service", "LimitMEMLOCK") == "infinity"
    assert "sound.target" in one("Unit", "After").split()
    assert one("Install", "WantedBy") == "multi-user.target"
    assert one("Service", "StateDirectory") == "kelly-edge"  # state.path / calibration default there
    assert one("Service", "RuntimeDirectory") == "kelly-edge"  # the status socket's folder


def test_hardening_that_would_break_audio_or_gpio_is_absent() -> None:
    service = UNIT_KEYS["Service"]
    for key in ("PrivateDevices", "RestrictRealtime", "DevicePolicy", "DeviceAllow", "ProtectClock",
                "PrivateUsers", "MemoryDenyWriteExecute"):
        assert key not in service, key
    assert one("Service", "NoNewPrivileges") == "yes"
    assert one("Service", "ProtectSystem") == "strict"


def test_the_default_state_files_are_where_the_unit_lets_the_box_write() -> None:
    from kelly_edge.config.schema import default_config

    state = default_config().state
    assert Path(state.path).parent == Path("/var/lib") / one("Service", "StateDirectory")


def test_configparser_reads_it_too() -> None:  # no stray syntax
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(UNIT.read_text())
    assert set(parser.sections()) == {"Unit", "Service", "Install"}


def _security(tmp_path: Path, text: str) -> float:
    """``systemd-analyze security --offline=yes`` of a copy of ``text``: the overall exposure score."""
    copy = tmp_path / "kelly-edge.service"
    copy.write_text(text.replace(EXEC, shutil.which("true") or "/bin/true"))
    done = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(copy)],
                          capture_output=True, text=True, timeout=60)
    found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", done.stdout + done.stderr)
    assert found, done.stdout[-2000:] + done.stderr[-2000:]
    return float(found.group(1))


def test_systemd_security_exposure_is_at_most_2_5(tmp_path: Path) -> None:  # issue 15 item 11
    assert _security(tmp_path, UNIT.read_text()) <= 2.5


def test_the_score_check_would_catch_a_loosened_unit(tmp_path: Path) -> None:
    loose = "\n".join(line for line in UNIT.read_text().splitlines()
                      if not line.startswith(("CapabilityBoundingSet", "SystemCallFilter", "IPAddress")))
    assert _security(tmp_path, loose) > 2.5


def test_the_syscall_filter_keeps_what_audio_midi_and_gpio_use() -> None:
    # SCHED_FIFO + affinity (realtime.priority/cpu_affinity), mlockall (LimitMEMLOCK), ioctl (ALSA,
    # /dev/gpiochip*), mmap (/dev/gpiomem, JACK's shm), sockets (JACK, status, pigpiod on localhost)
    assert one("Service", "SystemCallFilter") == "@system-service"
    assert one("Service", "SystemCallErrorNumber") == "EPERM"  # a missed call fails, it does not kill the box
    done = subprocess.run(["systemd-analyze", "syscall-filter", "@system-service"], capture_output=True, text=True,
                          timeout=60)
    allowed = {line.strip() for line in done.stdout.splitlines()}
    expanded = set(allowed)
    for group in [a for a in allowed if a.startswith("@")]:
        sub = subprocess.run(["systemd-analyze", "syscall-filter", group], capture_output=True, text=True, timeout=60)
        expanded |= {line.strip() for line in sub.stdout.splitlines()}
    for call in ("sched_setscheduler", "sched_setaffinity", "setpriority", "mlockall", "ioctl", "mmap", "socket",
                 "connect", "futex", "eventfd2", "memfd_create"):
        assert call in expanded, call
    assert one("Service", "CapabilityBoundingSet") == ""  # rtprio and memlock come from the rlimits
    assert "AF_UNIX" in one("Service", "RestrictAddressFamilies").split()  # JACK, the status socket
    assert "AF_INET" in one("Service", "RestrictAddressFamilies").split()  # pigpiod on localhost:8888
    assert one("Service", "IPAddressAllow") == "localhost"
    assert "RestrictRealtime" not in UNIT_KEYS["Service"] and "PrivateDevices" not in UNIT_KEYS["Service"]
