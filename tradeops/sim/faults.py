"""Faults on demand: the sim breaking on purpose so recovery paths can be tested. Pure.

The state starts from `SimOptions` and is changed at run time through the admin endpoint.
The server asks it questions with the current time (`drop_due`, `silent`) and obeys:

- drop: close every websocket connection now (`request_drop`) or every `drop_every` s, with
  close code `drop_code`, or abruptly (TCP abort, clients see 1006) when `abrupt` is set;
- silence: connections stay open but no market data is sent until `silent_until`, once
  (`silence`) or for `silent_for` s every `silent_every` s;
- `reject_auth`: every authentication fails (402 / unauthorized / HTTP 401);
- `delay`: seconds the sim waits before every control reply and REST response;
- `reject_orders`: the exchange accepts each order, then rejects it (`rejected` event);
- `refuse_changes`: the next N subscribe/unsubscribe requests are answered with the error
  `refuse_code` (500 "internal error" by default, which clients may retry) and change nothing
  (AllTick connections answer 429, AllTick's retryable refusal);
- `alltick_heartbeat_timeout`, `alltick_request_interval`: the AllTick dialect's limits, here
  so a test can shorten the heartbeat window at run time (every AllTick connection that has
  not sent a heartbeat within it is closed: a missed heartbeat, on demand).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tradeops.protocol.alpaca_stream import ERRORS
from tradeops.sim.options import SimConfigError, SimOptions


@dataclass
class FaultState:
    drop_every: float | None
    drop_code: int
    abrupt: bool
    silent_every: float | None
    silent_for: float
    reject_auth: bool
    delay: float
    reject_orders: bool
    refuse_changes: int = 0  # the next N subscribe/unsubscribe requests are refused ...
    refuse_code: int = 500  # ... with this error code (500 "internal error": worth a retry)
    alltick_heartbeat_timeout: float = 30.0
    alltick_request_interval: float = 1.0
    next_drop: float | None = None
    next_silence: float | None = None
    silent_until: float = 0.0
    drops: int = 0
    pending_drop: bool = False

    @classmethod
    def from_options(cls, options: SimOptions, now: float) -> FaultState:
        state = cls(options.drop_every, options.drop_code, options.abrupt, options.silent_every,
                    options.silent_for, options.reject_auth, options.delay,
                    options.reject_orders,
                    alltick_heartbeat_timeout=options.alltick_heartbeat_timeout,
                    alltick_request_interval=options.alltick_request_interval)
        state._schedule(now)
        return state

    def _schedule(self, now: float) -> None:
        self.next_drop = now + self.drop_every if self.drop_every else None
        self.next_silence = now + self.silent_every if self.silent_every else None

    def request_drop(self) -> None:
        """Drop every connection at the next `drop_due` check."""
        self.pending_drop = True

    def drop_due(self, now: float) -> bool:
        """True once per requested or scheduled drop; the caller then drops everyone."""
        due = self.pending_drop
        if self.next_drop is not None and self.drop_every and now >= self.next_drop:
            due = True
            self.next_drop = max(self.next_drop + self.drop_every, now)
        if due:
            self.pending_drop = False
            self.drops += 1
        return due

    def silence(self, seconds: float, now: float) -> None:
        """No market data for `seconds` from now (0 ends a silence)."""
        self.silent_until = now + seconds

    def silent(self, now: float) -> bool:
        if self.next_silence is not None and self.silent_every and now >= self.next_silence:
            self.silent_until = max(self.silent_until, self.next_silence + self.silent_for)
            self.next_silence += self.silent_every
        return now < self.silent_until

    def update(self, patch: dict[str, Any], now: float) -> None:
        """Apply an admin patch; SimConfigError names a bad field. Schedules restart from now."""
        kinds: dict[str, tuple[type, ...]] = {
            "drop_every": (int, float, type(None)), "drop_code": (int,), "abrupt": (bool,),
            "silent_every": (int, float, type(None)), "silent_for": (int, float),
            "reject_auth": (bool,), "delay": (int, float), "reject_orders": (bool,),
            "refuse_changes": (int,), "refuse_code": (int,),
            "alltick_heartbeat_timeout": (int, float), "alltick_request_interval": (int, float),
        }
        for name, value in patch.items():
            if name not in kinds:
                raise SimConfigError(f"unknown fault {name!r}; known: {sorted(kinds)}")
            if isinstance(value, bool) and bool not in kinds[name]:
                raise SimConfigError(f"fault {name} takes a number, got {value!r}")
            if not isinstance(value, kinds[name]):
                raise SimConfigError(f"fault {name} has the wrong type: {value!r}")
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                raise SimConfigError(f"fault {name} must not be negative")
            if name == "alltick_heartbeat_timeout" and value == 0:
                raise SimConfigError("alltick_heartbeat_timeout must be a positive number of "
                                     "seconds (AllTick's is 30)")
            if name == "drop_code" and isinstance(value, int) and not 1000 <= value <= 4999:
                raise SimConfigError(f"drop_code must be a websocket close code: {value}")
            if name == "refuse_code" and value not in ERRORS:
                raise SimConfigError(f"refuse_code must be one of {sorted(ERRORS)}: {value}")
        for name, value in patch.items():
            if name in ("drop_every", "silent_every") and value == 0:
                value = None
            setattr(self, name, value)
        self._schedule(now)

    def to_json(self, now: float) -> dict[str, object]:
        return {
            "drop_every": self.drop_every, "drop_code": self.drop_code, "abrupt": self.abrupt,
            "silent_every": self.silent_every, "silent_for": self.silent_for,
            "silent": now < self.silent_until,
            "silent_remaining": max(0.0, round(self.silent_until - now, 3)),
            "reject_auth": self.reject_auth, "delay": self.delay,
            "reject_orders": self.reject_orders, "drops": self.drops,
            "refuse_changes": self.refuse_changes, "refuse_code": self.refuse_code,
            "alltick_heartbeat_timeout": self.alltick_heartbeat_timeout,
            "alltick_request_interval": self.alltick_request_interval,
        }
