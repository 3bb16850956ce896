"""Whether the broker's market is in session, so a quiet feed off-hours is not an outage.

Outside the session the safety gate is closed with the reason "market closed until ...",
the silence detector leaves the connection alone (pings keep it alive), and `status` says
so. Where the answer comes from:

- `brokers.NAME.hours` (a weekly calendar: time zone, sessions, days, holidays), or `24/7`;
- otherwise, for Alpaca and the sim, the broker's own clock: `GET /v2/clock` (is_open,
  next_open, next_close), read at start, every `REFRESH` seconds and just after each edge;
- a crypto feed trades around the clock, and an AllTick broker without `hours` is judged by
  its data alone.

Until the broker's clock has answered, the market counts as open: the data decides.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from loguru import logger

from tradeops.gateway.trading import RestTransport
from tradeops.protocol.alpaca_trading import HttpRequest
from tradeops.protocol.hours import WeeklyHours

REFRESH = 60.0  # seconds between readings of the broker's clock


@dataclass(frozen=True)
class ClockReading:
    """What the broker's clock said (times as Unix seconds, and as the broker wrote them)."""

    is_open: bool
    next_open: float
    next_close: float
    next_open_text: str


def parse_clock(body: object) -> ClockReading:
    """An Alpaca `/v2/clock` answer; ValueError when it is not one."""
    if not isinstance(body, dict):
        raise ValueError("the clock answer is not an object")
    try:
        opens = datetime.fromisoformat(str(body["next_open"]))
        closes = datetime.fromisoformat(str(body["next_close"]))
        return ClockReading(bool(body["is_open"]), opens.timestamp(), closes.timestamp(),
                            opens.isoformat(timespec="minutes"))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"the clock answer lacks a field or a time: {exc}") from None


class MarketSession:
    """In session or not, from a weekly calendar or from the broker's clock readings."""

    def __init__(self, hours: WeeklyHours | None = None) -> None:
        self.hours = hours
        self.reading: ClockReading | None = None
        self.source = "hours" if hours is not None else "broker clock"

    def is_open(self, now: float) -> bool:
        if self.hours is not None:
            return self.hours.is_open(now)
        r = self.reading
        if r is None:
            return True  # no answer yet: the data decides
        if r.is_open:
            return now < r.next_close
        return now >= r.next_open

    def closed_reason(self, now: float) -> str:
        if self.hours is not None:
            when = self.hours.next_open(now).strftime("%Y-%m-%d %H:%M")
            return f"market closed until {when} {self.hours.zone}"
        assert self.reading is not None
        return f"market closed until {self.reading.next_open_text}"

    def describe(self, now: float) -> str:
        return "open" if self.is_open(now) else self.closed_reason(now)


class BrokerClock:
    """A thread that reads the broker's `/v2/clock` and hands each reading to `on_reading`
    (the gateway posts it to its loop)."""

    def __init__(self, transport: RestTransport, on_reading: Callable[[ClockReading], None],
                 clock: Callable[[], float]) -> None:
        self._transport, self._on_reading, self._clock = transport, on_reading, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="broker-clock", daemon=True)
        self._warned = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._transport.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            reading = self._read()
            wait = REFRESH
            if reading is not None:
                self._on_reading(reading)
                edge = reading.next_close if reading.is_open else reading.next_open
                wait = min(REFRESH, max(1.0, edge - self._clock() + 1.0))
            self._stop.wait(wait)

    def _read(self) -> ClockReading | None:
        try:
            status, _, data = self._transport.call(HttpRequest("GET", "/v2/clock"))
            if status != 200:
                raise ValueError(f"HTTP {status}")
            return parse_clock(json.loads(data))
        except (OSError, ValueError, KeyError, TypeError, http.client.HTTPException) as exc:
            if not self._warned:
                logger.warning("cannot read the broker's clock ({}); the feed's data alone "
                               "decides whether it is live", exc)
                self._warned = True
            return None
