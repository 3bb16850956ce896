"""When a market trades: weekly sessions in a time zone, with holidays. Pure.

Every question takes `now` (Unix seconds) from the caller. `WeeklyHours.always()` is a
market that never closes (crypto, or a broker whose hours are unknown: only its data then
tells whether it is live).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Session = tuple[time, time]


@dataclass(frozen=True)
class WeeklyHours:
    zone: str = "UTC"
    sessions: tuple[Session, ...] = ()  # each (open, close), open before close, local time
    days: frozenset[int] = frozenset(range(5))  # Monday = 0
    holidays: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def always_open(cls) -> WeeklyHours:
        return cls(sessions=())

    @property
    def always(self) -> bool:
        return not self.sessions

    def _local(self, now: float) -> datetime:
        return datetime.fromtimestamp(now, ZoneInfo(self.zone))

    def _trades_on(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.holidays

    def is_open(self, now: float) -> bool:
        if self.always:
            return True
        local = self._local(now)
        if not self._trades_on(local.date()):
            return False
        return any(start <= local.time() < end for start, end in self.sessions)

    def next_open(self, now: float) -> datetime:
        """The next moment a session opens (now, for a market that never closes)."""
        if self.always:
            return datetime.fromtimestamp(now, UTC)
        return self._next_edge(now, [start for start, _ in self.sessions])

    def next_close(self, now: float) -> datetime:
        """The next moment a session closes (a year ahead for a market that never closes)."""
        if self.always:
            return datetime.fromtimestamp(now, UTC) + timedelta(days=365)
        return self._next_edge(now, [end for _, end in self.sessions])

    def _next_edge(self, now: float, edges: list[time]) -> datetime:
        zone = ZoneInfo(self.zone)
        local = self._local(now)
        for days in range(370):  # a year of holidays at the most
            day = (local + timedelta(days=days)).date()
            if not self._trades_on(day):
                continue
            for edge in sorted(edges):
                candidate = datetime.combine(day, edge, tzinfo=zone)
                if candidate > local:
                    return candidate
        raise ValueError("no trading day within a year: check days and holidays")

    def sessions_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """The sessions of one local calendar day (none on a weekend day or holiday)."""
        if self.always or not self._trades_on(day):
            return []
        zone = ZoneInfo(self.zone)
        return [(datetime.combine(day, s, tzinfo=zone), datetime.combine(day, e, tzinfo=zone))
                for s, e in self.sessions]


def parse_session(text: str) -> Session:
    """`09:30-16:00` -> (09:30, 16:00); ValueError with the reason otherwise."""
    try:
        start_text, end_text = (part.strip() for part in text.split("-"))
        start, end = time.fromisoformat(start_text), time.fromisoformat(end_text)
    except ValueError:
        raise ValueError(f"session {text!r}: write HH:MM-HH:MM, e.g. 09:30-16:00") from None
    if start >= end:
        raise ValueError(f"session {text!r}: it must open before it closes")
    return start, end
