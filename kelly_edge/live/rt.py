"""Real-time hygiene for the live process: GC, interpreter switching, scheduling priority, CPUs.

* The garbage collector: everything built at start-up (models, tables, arrays) is collected once
  and frozen into the permanent generation, so a later full collection never walks it (a full
  collection over a big heap stalls for milliseconds). Young-generation collections stay on:
  they are short, and the steady state allocates little.
* ``sys.setswitchinterval``: an audio or MIDI callback thread that needs the GIL waits at most
  one switch interval while the processing thread computes; 0.5 ms instead of Python's 5 ms.
* ``realtime.priority`` > 0: SCHED_FIFO for the processing and MIDI sender threads (Linux
  applies it per thread). Without permission (no CAP_SYS_NICE / rtprio limit) one warning is
  logged and the box runs at normal priority.
* ``realtime.cpu_affinity``: pin the process (set before the threads start, which inherit it).
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading

from kelly_edge.errors import ConfigError

log = logging.getLogger(__name__)

SWITCH_INTERVAL_S = 0.0005
_warned = threading.Event()


def parse_cpus(text: str) -> set[int]:
    """``"2,3"`` or ``"0-1,3"`` -> ``{2, 3}`` / ``{0, 1, 3}``; ``""`` -> empty (no pinning)."""
    cpus: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                cpus.update(range(lo, hi + 1))
            else:
                cpus.add(int(part))
        except ValueError as err:
            raise ConfigError(f"realtime.cpu_affinity must be like '2,3' or '0-1', got {text!r}") from err
    return cpus


def set_cpu_affinity(text: str) -> set[int]:
    """Pin the process to the CPUs ``text`` names (before starting threads); returns them."""
    cpus = parse_cpus(text)
    if not cpus:
        return cpus
    available = os.sched_getaffinity(0)
    if not cpus <= available:
        raise ConfigError(f"realtime.cpu_affinity {text!r} names CPUs this machine lacks (has {sorted(available)})")
    os.sched_setaffinity(0, cpus)
    return cpus


def realtime_thread(priority: int) -> bool:
    """Give the *calling* thread SCHED_FIFO ``priority`` (1-99); 0 does nothing. False when refused."""
    if priority <= 0:
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        return True
    except (PermissionError, OSError, AttributeError) as err:
        if not _warned.is_set():
            _warned.set()
            log.warning("realtime.priority %d refused (%s); running at normal priority", priority,
                        getattr(err, "strerror", None) or err)
        return False


def settle_after_startup() -> None:
    """Collect and freeze start-up garbage; shorten the GIL switch interval."""
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
