"""Trading hours: when the simulated market produces ticks and fills orders.

Two forms: `24/7`, or `HH:MM-HH:MM Area/City` meaning that window on Monday to Friday in that
time zone (no holidays). The calendar itself is `protocol.hours.WeeklyHours`, which the
gateway uses for brokers with an `hours:` key.
"""

from __future__ import annotations

import re
from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tradeops.protocol.hours import WeeklyHours
from tradeops.sim.options import SimConfigError

_WINDOW = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s+(\S+)\s*")


class TradingHours(WeeklyHours):
    """The sim's trading hours: one window, Monday to Friday, no holidays (or 24/7)."""

    @classmethod
    def parse(cls, text: str) -> TradingHours:
        """Parse `24/7` or `09:30-16:00 America/New_York`; raise SimConfigError otherwise."""
        if text.strip().lower() in ("24/7", "always", ""):
            return cls()
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
        return cls(zone=match.group(5), sessions=((open_at, close_at),))
