"""Every knob of the simulated exchange, as one frozen value.

`SimOptions` is plain data: the CLI builds it from flags, the topology builds it from a broker
with `adapter: sim`, tests build it directly. Nothing here does I/O. `SimOptions.check()` raises
`SimConfigError` with a message a user can act on; `start()` calls it before binding.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

#: The market-data feeds the sim serves, by the path suffix after the version.
ALL_FEEDS: tuple[str, ...] = ("iex", "sip", "test", "crypto/us")

_RATE_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "min": 60.0, "minute": 60.0, "h": 3600.0,
               "hour": 3600.0}


class SimConfigError(ValueError):
    """An option value the sim cannot run with; the message says which and why."""


def _frozen(keys: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(keys))


@dataclass(frozen=True)
class SimOptions:
    """Options of one simulated exchange. Defaults give a 24/7 random-walk market on loopback.

    Market: `seed`, `rate` (ticks per second per symbol; a tick is one quote or one trade
    message, and each step of the walk emits one of each), `max_rate` (cap on ticks per second
    over all symbols), `spread_bps`, `volatility`
    (standard deviation of one step's log return), `hours`, `bar_seconds`, `symbols` (the listed
    universe; empty = every well-formed symbol), `replay` + `speed` (replay a CSV/Parquet file,
    or a recording directory within `replay_from`..`replay_to` for `replay_symbols`, instead of
    the walk).

    Limits: `symbols_per_connection` (405), `max_connections` per key (406), `keys` (accepted
    key -> secret; empty accepts any), `feeds` (feeds the keys may use, else 409),
    `order_rate_limit` ((count, seconds) of order requests per key, else 429),
    `slow_client_bytes` (queued bytes before 407), `auth_timeout` (404), `cash`.

    AllTick dialect: `alltick_heartbeat_timeout` (seconds without a heartbeat before the server
    closes the connection; AllTick's 30), `alltick_request_interval` (least seconds between two
    requests on a connection, else 429; AllTick's 1). Its tokens are the `keys`.

    Faults: `drop_every` (close every connection every N s), `drop_code`, `abrupt`
    (drops abort the TCP connection: clients see 1006), `silent_every` + `silent_for`
    (no market data for `silent_for` s every `silent_every` s), `reject_auth`, `delay`
    (seconds before every control reply and REST response), `reject_orders` (the exchange
    rejects every order after accepting it).
    """

    host: str = "127.0.0.1"
    port: int = 0
    # market
    seed: int = 1
    rate: float = 5.0
    max_rate: float = 50_000.0
    spread_bps: float = 5.0
    volatility: float = 0.0002
    hours: str = "24/7"
    bar_seconds: float = 60.0
    symbols: tuple[str, ...] = ()
    replay: Path | None = None
    speed: float = 1.0
    # a recording directory's replay: exchange-time window (ns), symbols, which broker's part
    replay_from: int | None = None
    replay_to: int | None = None
    replay_symbols: tuple[str, ...] = ()
    replay_broker: str | None = None
    # limits
    symbols_per_connection: int = 1000
    max_connections: int = 3
    keys: Mapping[str, str] = field(default_factory=lambda: _frozen({}), hash=False)
    feeds: tuple[str, ...] = ALL_FEEDS
    order_rate_limit: tuple[int, float] | None = None
    slow_client_bytes: int = 8 * 1024 * 1024
    auth_timeout: float = 10.0
    cash: float = 100_000.0
    alltick_heartbeat_timeout: float = 30.0
    alltick_request_interval: float = 1.0
    # faults
    drop_every: float | None = None
    drop_code: int = 1012
    abrupt: bool = False
    silent_every: float | None = None
    silent_for: float = 0.0
    reject_auth: bool = False
    delay: float = 0.0
    reject_orders: bool = False

    def __post_init__(self) -> None:
        # A caller may hand in a dict; freeze it so the options stay one immutable value.
        if not isinstance(self.keys, MappingProxyType):
            object.__setattr__(self, "keys", _frozen(self.keys))
        if self.replay is not None and not isinstance(self.replay, Path):
            object.__setattr__(self, "replay", Path(self.replay))
        object.__setattr__(self, "symbols", tuple(self.symbols))
        object.__setattr__(self, "replay_symbols", tuple(self.replay_symbols))
        object.__setattr__(self, "feeds", tuple(self.feeds))

    def check(self) -> None:
        """Raise SimConfigError naming the first option that cannot work."""
        positive = {
            "rate": self.rate, "max_rate": self.max_rate, "speed": self.speed,
            "bar_seconds": self.bar_seconds, "auth_timeout": self.auth_timeout,
            "alltick_heartbeat_timeout": self.alltick_heartbeat_timeout,
        }
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise SimConfigError(f"{name} must be a positive number, got {value!r}")
        non_negative = {
            "spread_bps": self.spread_bps, "volatility": self.volatility,
            "delay": self.delay, "silent_for": self.silent_for, "cash": self.cash,
            "alltick_request_interval": self.alltick_request_interval,
        }
        for name, value in non_negative.items():
            if not (math.isfinite(value) and value >= 0):
                raise SimConfigError(f"{name} must be zero or more, got {value!r}")
        for name, count in (("symbols_per_connection", self.symbols_per_connection),
                            ("max_connections", self.max_connections),
                            ("slow_client_bytes", self.slow_client_bytes)):
            if count < 1:
                raise SimConfigError(f"{name} must be at least 1, got {count!r}")
        if not 0 <= self.port <= 65535:
            raise SimConfigError(f"port must be 0..65535, got {self.port}")
        for every_name, every in (("drop_every", self.drop_every),
                                  ("silent_every", self.silent_every)):
            if every is not None and not every > 0:
                raise SimConfigError(f"{every_name} must be a positive number of seconds")
        if self.silent_every is not None and self.silent_for <= 0:
            raise SimConfigError("silent_every needs silent_for > 0")
        if not 1000 <= self.drop_code <= 4999:
            raise SimConfigError(f"drop_code must be a websocket close code, got {self.drop_code}")
        unknown = sorted(set(self.feeds) - set(ALL_FEEDS))
        if unknown:
            raise SimConfigError(f"unknown feeds {unknown}; known: {list(ALL_FEEDS)}")
        if self.order_rate_limit is not None:
            count, seconds = self.order_rate_limit
            if count < 1 or not seconds > 0:
                raise SimConfigError("order_rate_limit needs a count >= 1 and seconds > 0")
        if self.replay is not None and not self.replay.exists():
            raise SimConfigError(f"replay file or recording directory not found: {self.replay}")
        # Parsed here so a bad value fails at start, not at the first tick.
        from tradeops.sim.hours import TradingHours

        TradingHours.parse(self.hours)


def parse_rate_limit(text: str) -> tuple[int, float]:
    """Parse `200/min`, `200/60` or `10/1.5` into (count, seconds)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*([0-9.]+|[a-z]+)\s*", text)
    if match is None:
        raise SimConfigError(f"rate limit {text!r}: write COUNT/SECONDS or COUNT/min")
    count, per = int(match.group(1)), match.group(2)
    if per in _RATE_UNITS:
        return count, _RATE_UNITS[per]
    try:
        seconds = float(per)
    except ValueError:
        raise SimConfigError(f"rate limit {text!r}: unknown unit {per!r}") from None
    return count, seconds


def parse_keys(pairs: list[str]) -> dict[str, str]:
    """Parse `KEY:SECRET` strings (the CLI's repeated --key) into a mapping."""
    keys: dict[str, str] = {}
    for pair in pairs:
        key, sep, secret = pair.partition(":")
        if not sep or not key:
            raise SimConfigError(f"--key {pair!r}: write KEY:SECRET")
        keys[key] = secret
    return keys
