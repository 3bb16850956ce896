"""What happened at the sim, kept for tests to read through the admin endpoint. Pure.

Four bounded logs, each entry numbered by one sequence shared across them (so entries of
different logs can be ordered) and stamped with the sim's clock:

- `subscriptions`: every subscribe/unsubscribe message a market-data connection sent, with
  its result, the symbols it added and removed per channel, and the set after it;
- `connections`: every connection closed so far (open ones are reported live), with its
  authentication attempts and why it closed;
- `requests`: every order request that reached the REST API (submit, cancel, cancel-all),
  with its HTTP status and the order id or refusal reason;
- `updates`: every trade-update event the exchange produced.

This is what lets later tests prove "exactly one broker subscription per symbol" and "a
rejected order never reached the sim".
"""

from __future__ import annotations

from collections import deque
from typing import Any

from tradeops.sim.orders import iso

#: Entries kept per log; the oldest are forgotten first.
MAX_ENTRIES = 100_000


class Journal:
    def __init__(self) -> None:
        self.subscriptions: deque[dict[str, Any]] = deque(maxlen=MAX_ENTRIES)
        self.connections: deque[dict[str, Any]] = deque(maxlen=MAX_ENTRIES)
        self.requests: deque[dict[str, Any]] = deque(maxlen=MAX_ENTRIES)
        self.updates: deque[dict[str, Any]] = deque(maxlen=MAX_ENTRIES)
        self._seq = 0

    def _stamp(self, entry: dict[str, Any], now: float) -> dict[str, Any]:
        self._seq += 1
        return {"seq": self._seq, "time": iso(int(now * 1e9)), **entry}

    def subscription(self, entry: dict[str, Any], now: float) -> None:
        self.subscriptions.append(self._stamp(entry, now))

    def connection(self, entry: dict[str, Any], now: float) -> None:
        self.connections.append(self._stamp(entry, now))

    def request(self, entry: dict[str, Any], now: float) -> None:
        self.requests.append(self._stamp(entry, now))

    def update(self, entry: dict[str, Any], now: float) -> None:
        self.updates.append(self._stamp(entry, now))

    def clear(self) -> None:
        """Forget every entry (the sequence keeps counting, so numbers stay unique)."""
        for log in (self.subscriptions, self.connections, self.requests, self.updates):
            log.clear()
