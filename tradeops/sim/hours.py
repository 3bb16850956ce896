"""Trading hours: when the simulated market produces ticks and fills orders.

Two forms: `24/7`, or `HH:MM-HH:MM Area/City` meaning that window on Monday to Friday in that
time zone (no holidays). Pure: every question takes `now` (epoch seconds) from the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tradeops.sim.options import SimConfigError

_WINDOW = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s+(\S+)\s*")


@dataclass(frozen=True)
class TradingHours:
    """A weekly trading window; `always` means 24/7."""

    always: bool
    open_at: time = time(0, 0)
    close_at: time = time(0, 0)
    zone: str = "UTC"

    @classmethod
    def parse(cls, text: str) -> TradingHours:
        """Parse `24/7` or `09:30-16:00 America/New_York`; raise SimConfigError otherwise."""
        if text.strip().lower() in ("24/7", "always", ""):
            return cls(always=True)
        match = _WINDOW.fullmatch(text)
        if match is None:
            raise SimConfigError(
                f"hours {text!r}: write 24/7 or HH:MM-HH:MM Area/City, "
                "e.g. 09:30-16:00 America/New_York")
        h1, m1, h2, m2 = (int(match.group(i)) for i in range(1, 5))
        try:
            open_at, close_at = time(h1, m1), time(h2, m2)
        except ValueError:
            raise SimConfigError(f"hours {text!r}: not a valid time of day") from None
        if open_at >= close_at:
            raise SimConfigError(f"hours {text!r}: the window must open before it closes")
        try:
            ZoneInfo(match.group(5))
        except (ZoneInfoNotFoundError, ValueError):
            raise SimConfigError(f"hours {text!r}: unknown time zone {match.group(5)!r}") from None
        return cls(always=False, open_at=open_at, close_at=close_at, zone=match.group(5))

    def _local(self, now: float) -> datetime:
        return datetime.fromtimestamp(now, ZoneInfo(self.zone))

    def is_open(self, now: float) -> bool:
        if self.always:
            return True
        local = self._local(now)
        return local.weekday() < 5 and self.open_at <= local.time() < self.close_at

    def next_open(self, now: float) -> datetime:
        """The next moment (strictly after now unless closed now) the market opens, tz-aware."""
        if self.always:
            return datetime.fromtimestamp(now, UTC)
        return self._next_edge(now, self.open_at)

    def next_close(self, now: float) -> datetime:
        """The next moment the market closes, tz-aware; far in the future for 24/7."""
        if self.always:
            return datetime.fromtimestamp(now, UTC) + timedelta(days=365)
        return self._next_edge(now, self.close_at)

    def _next_edge(self, now: float, edge: time) -> datetime:
        zone = ZoneInfo(self.zone)
        local = self._local(now)
        for days in range(8):
            day = (local + timedelta(days=days)).date()
            candidate = datetime.combine(day, edge, tzinfo=zone)
            if candidate.weekday() < 5 and candidate > local:
                return candidate
        raise AssertionError("unreachable: a weekday edge exists within 8 days")
