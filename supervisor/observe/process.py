"""The service process's own figures for its metrics: resident memory and CPU time."""

from __future__ import annotations

import os
from typing import Final

_PAGE_BYTES: Final = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident memory now, from /proc/self/statm (0 where there is no /proc)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return 0


def cpu_seconds() -> float:
    """User plus system CPU time of the process (its threads included)."""
    times = os.times()
    return times.user + times.system
