"""What every broker feed dialect produces and offers, whatever its wire format.

A dialect (alpaca.py, alltick.py) is a sans-I/O session object: frames in through
`receive`, events out; frames to send out of its builders. The gateway's upstream connection
drives any of them through :class:`FeedSession`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

from tradeops.protocol.modes import Mode

#: One websocket message to or from a broker: TEXT frames as str, BINARY as bytes.
BrokerFrame = bytes | str


@dataclass(frozen=True)
class Connected:
    """The broker greeted the connection."""


@dataclass(frozen=True)
class Authenticated:
    pass


@dataclass(frozen=True)
class Failure:
    """An error from the broker: `code` as the broker numbers it."""

    code: int
    message: str


@dataclass(frozen=True)
class Subscribed:
    """The broker accepted a subscription request (with its full current set, if it says)."""

    channels: dict[str, tuple[str, ...]]


class MarketData(NamedTuple):
    """One trade, quote or bar, normalised (prices as floats, times as ns since the epoch)."""

    kind: Literal["trade", "quote", "bar"]
    symbol: str
    ts_ns: int
    price: float = 0.0
    size: float = 0.0
    bid: float = 0.0
    bid_size: float = 0.0
    ask: float = 0.0
    ask_size: float = 0.0
    open: float = 0.0
    high: float = 0.0
    low: float = 0.0
    close: float = 0.0
    volume: float = 0.0
    vwap: float = 0.0
    trades: int = 0


Event = Connected | Authenticated | Failure | Subscribed | MarketData


class Move(Protocol):
    """One symbol's subscription change (the pool's Transition)."""

    @property
    def symbol(self) -> str: ...
    @property
    def before(self) -> Mode | None: ...
    @property
    def after(self) -> Mode | None: ...


class FeedSession(Protocol):
    """One upstream connection's protocol state, as the upstream thread uses it."""

    #: The broker sends a greeting (Connected) before anything else.
    greeting: bool
    #: Seconds between application heartbeats (None: websocket pings suffice).
    heartbeat_interval: float | None
    #: Seconds the broker wants between two subscription requests on one connection.
    min_request_interval: float
    #: Error codes that will not clear by reconnecting at once, by cause.
    fatal_codes: Mapping[int, str]
    #: Codes of a refusal worth retrying with backoff (a rate limit, a busy broker); any
    #: other refusal of a subscription is final.
    transient_codes: AbstractSet[int]

    def url(self, base: str) -> str: ...
    def headers(self) -> dict[str, str]: ...
    def auth(self) -> BrokerFrame | None: ...
    def heartbeat(self) -> BrokerFrame | None: ...
    def receive(self, frame: BrokerFrame) -> list[Event]: ...
    def change_frames(
        self, confirmed: Mapping[str, Mode], moves: Iterable[Move]
    ) -> list[BrokerFrame]:
        """Frames carrying out one pool change; each is answered by one ack or refusal."""
        ...
