"""One broker as a host sees it: its gateway connection (the lease) and its bus.

Wraps the ring reader, the latest-value table and the book table of a broker, and the
gateway client through which the host subscribes.
"""

from __future__ import annotations

from typing import Literal

from tradeops.bus.books import BookReader
from tradeops.bus.reader import RingReader
from tradeops.bus.table import TableReader
from tradeops.gateway.client import GatewayClient
from tradeops.protocol.book import Book
from tradeops.protocol.tick import Tick

BATCH = 1024


class BrokerFeed:
    def __init__(
        self,
        broker: str,
        topology: str,
        client: GatewayClient,
        reader: RingReader,
        table: TableReader | None,
        books: BookReader | None = None,
    ) -> None:
        self.broker = broker
        self.topology = topology
        self.client = client
        self.reader = reader
        self.table = table
        self.books = books
        # symbol -> the book version last handed to on_book: a host behind the writer reads
        # the newest book at its first DEPTH record and skips the records of older versions.
        self.book_delivered: dict[str, int] = {}
        self.cursor = reader.next_seq - 1  # the newest seq handed to strategies
        self.epoch = reader.epoch
        self._lost_seen = 0

    @classmethod
    def open(
        cls,
        topology: str,
        broker: str,
        client: GatewayClient,
        *,
        start_after: tuple[int, int] | None = None,
        busy_poll: bool = False,
    ) -> BrokerFeed:
        """Attach to the broker's bus: from the newest tick, or (resume: replay) right after
        `start_after` = (epoch, seq) when the ring is of that epoch and still holds it; a ring
        of another epoch (its gateway restarted since) is read from the oldest it holds."""
        start: int | Literal["newest"] = "newest"
        epoch = None
        if start_after is not None:
            epoch, start = start_after[0], start_after[1] + 1
        reader = RingReader(topology, broker, start=start, busy_poll=busy_poll,
                            resync="newest", epoch=epoch)
        try:
            table: TableReader | None = TableReader(topology, broker)
        except FileNotFoundError:
            table = None
        try:
            books: BookReader | None = BookReader(topology, broker)
        except FileNotFoundError:
            books = None
        return cls(broker, topology, client, reader, table, books)

    def read(self) -> list[Tick]:
        # A replaced ring (the gateway restarted) also closes the gateway connection; the host
        # reconnects both when the client reports it.
        ticks = self.reader.read(BATCH, 0.0)
        if ticks:
            self.cursor = ticks[-1].seq
        return ticks

    def take_lost(self) -> int:
        """Ticks lost to laps since the last call."""
        lost = self.reader.lost - self._lost_seen
        self._lost_seen = self.reader.lost
        return lost

    def wait(self, timeout: float, also: list[int] | None = None) -> bool:
        """Sleep until a tick arrives, `timeout` passes, or a socket in `also` is readable."""
        return self.reader.wait(timeout, also or [])

    @staticmethod
    def wait_any(feeds: list[BrokerFeed], timeout: float, also: list[int] | None = None
                 ) -> bool:
        """Wait for any of several brokers: each gets a share of the timeout in turn, and
        any gateway message (or a file descriptor in `also` readable) ends the wait."""
        share = timeout / max(1, len(feeds))
        sockets = [f.client.fileno() for f in feeds] + (also or [])
        return any(feed.reader.available or feed.wait(share, sockets) for feed in feeds)

    def last(self, symbol: str) -> Tick | None:
        """The newest trade or quote of `symbol` from the latest-value table."""
        if self.table is None:
            return None
        trade, quote = self.table.last_trade(symbol), self.table.last_quote(symbol)
        if trade is None or quote is None:
            return trade or quote
        return trade if trade.seq > quote.seq else quote

    def book(self, symbol: str) -> Book | None:
        """The newest order book of `symbol` from the book table (None: none yet)."""
        return None if self.books is None else self.books.book(symbol)

    def close(self) -> None:
        self.reader.close()
        if self.table is not None:
            self.table.close()
        if self.books is not None:
            self.books.close()
        self.client.close()

    def __repr__(self) -> str:
        return f"BrokerFeed({self.broker!r}, cursor={self.cursor})"
