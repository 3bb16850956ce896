"""CPU and memory of a process, read from /proc (Linux)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The command name may contain spaces; fields resume after its closing paren.
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class CpuMeter:
    """CPU % of each pid between two readings (the first reading of a pid gives None)."""

    _last: dict[int, tuple[float, float]] = field(default_factory=dict)

    def percent(self, pid: int, uptime: float | None = None) -> float | None:
        """CPU % since the previous reading of `pid`; on the first, the average over its
        `uptime` (so a one-shot `tradeops status` shows a figure too)."""
        used, now = cpu_seconds(pid), time.monotonic()
        if used is None:
            return None
        previous = self._last.get(pid)
        self._last[pid] = (used, now)
        if previous is None or now - previous[1] < 0.5:
            return round(100.0 * used / uptime, 1) if uptime else None
        return round(100.0 * (used - previous[0]) / (now - previous[1]), 1)
