"""What every broker feed dialect produces and offers, whatever its wire format.

A dialect (alpaca.py, alltick.py) is a sans-I/O session object: frames in through
`receive`, events out; frames to send out of its builders. The gateway's upstream connection
drives any of them through :class:`FeedSession`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from typing import Any, Literal, NamedTuple, Protocol

from tradeops.protocol.modes import Mode
from tradeops.protocol.tick import KIND_CODES, RecordRow, encode_symbol

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


@dataclass(frozen=True)
class BookUpdate:
    """A symbol's order book changed: its top levels now (best first, as
    :class:`~tradeops.protocol.book.BookKeeper` answers), stamped by the broker and on
    receipt (``receive_ns``)."""

    symbol: str
    exchange_ns: int
    receive_ns: int
    bids: tuple[tuple[float, float], ...]
    asks: tuple[tuple[float, float], ...]


Event = Connected | Authenticated | Failure | Subscribed | MarketData | BookUpdate


#: What reading a broker's message raises when a field is missing or of another type: such
#: a message is dropped and counted, never raised out of the upstream reader.
MALFORMED: tuple[type[Exception], ...] = (KeyError, TypeError, ValueError, AttributeError,
                                          IndexError, OverflowError)


def rows_of_one(session: Any, frame: BrokerFrame, receive_ns: int
                ) -> tuple[list[RecordRow], list[Event]]:
    """``receive_rows`` of a dialect whose frames hold one message: its ``receive`` converted
    by :func:`market_rows`; a message it cannot read (:data:`MALFORMED`) is counted in the
    session's ``malformed`` and gives nothing."""
    try:
        return market_rows(session.receive(frame), receive_ns)
    except MALFORMED:
        session.malformed += 1
        return [], []


def market_rows(events: Iterable[Event], receive_ns: int) -> tuple[list[RecordRow], list[Event]]:
    """Split decoded events into the bus's record rows (every MarketData, stamped
    ``receive_ns``) and the other events, in order (a BookUpdate stamped ``receive_ns`` too).
    The generic ``receive_rows`` of a dialect that has no decoder of its own straight into
    rows. SymbolError for a symbol the bus cannot hold, as the ring would raise."""
    rows: list[RecordRow] = []
    others: list[Event] = []
    for event in events:
        if isinstance(event, MarketData):
            e = event
            rows.append((KIND_CODES[e.kind], 0, e.trades, e.ts_ns, receive_ns,
                         encode_symbol(e.symbol), e.price, e.size, e.bid, e.bid_size, e.ask,
                         e.ask_size, e.open, e.high, e.low, e.close, e.volume, e.vwap))  # fmt: skip
        elif isinstance(event, BookUpdate):
            others.append(replace(event, receive_ns=receive_ns))
        else:
            others.append(event)
    return rows, others


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
    #: Market messages dropped so far for a field missing or of another type (MALFORMED).
    malformed: int

    def url(self, base: str) -> str: ...
    def headers(self) -> dict[str, str]: ...
    def auth(self) -> BrokerFrame | None: ...
    def heartbeat(self) -> BrokerFrame | None: ...
    def receive(self, frame: BrokerFrame) -> list[Event]: ...
    def receive_rows(
        self, frame: BrokerFrame, receive_ns: int
    ) -> tuple[list[RecordRow], list[Event]]:
        """``receive``, with market data decoded straight into the bus's record rows
        (stamped ``receive_ns``: when the frame arrived) instead of MarketData events."""
        ...
    def change_frames(
        self, confirmed: Mapping[str, Mode], moves: Iterable[Move]
    ) -> list[BrokerFrame]:
        """Frames carrying out one pool change; each is answered by one ack or refusal."""
        ...
