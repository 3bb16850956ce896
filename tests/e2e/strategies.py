"""Strategies the end-to-end tests run inside real host processes."""

from __future__ import annotations

import os
from typing import Any

from loguru import logger

from tradeops import Strategy


class SeqRecorder(Strategy):
    """Appends the bus sequence number of every tick it receives to params.out."""

    def on_start(self) -> None:
        self._out = open(self.params["out"], "a", buffering=1)  # noqa: SIM115
        logger.info("recording to {}", self.params["out"])  # not self.log: the host names it

    def on_tick(self, tick: Any) -> None:
        self._out.write(f"{tick.seq}\n")

    def on_stop(self) -> None:
        self._out.close()


class Raiser(Strategy):
    """Raises on its params.after-th tick."""

    def on_start(self) -> None:
        self.seen = 0

    def on_tick(self, tick: Any) -> None:
        self.seen += 1
        if self.seen == int(self.params.get("after", 3)):
            raise RuntimeError("boom from Raiser")


class Crasher(Strategy):
    """Takes its whole process down at start, as a broken dependency would."""

    def on_start(self) -> None:
        os._exit(3)


class Blocker(Strategy):
    """Blocks forever in its params.after-th on_tick, as a strategy waiting on a dead
    resource would."""

    def on_start(self) -> None:
        self.seen = 0

    def on_tick(self, tick: Any) -> None:
        self.seen += 1
        if self.seen == int(self.params.get("after", 3)):
            import threading

            threading.Event().wait()  # never set


class FlagRecorder(Strategy):
    """Writes `seq flags` per tick, and `restart BROKER` when its broker's bus restarts, to
    params.out (line-buffered, so a kill -9 loses nothing written)."""

    def on_start(self) -> None:
        self._out = open(self.params["out"], "a", buffering=1)  # noqa: SIM115

    def on_tick(self, tick: Any) -> None:
        self._out.write(f"{tick.seq} {tick.flags}\n")

    def on_feed_restart(self, broker: str) -> None:
        self._out.write(f"restart {broker}\n")

    def on_stop(self) -> None:
        self._out.close()


class TickTrail(Strategy):
    """Writes `symbol kind price size bid ask` per tick to params.out: what a strategy saw,
    to compare with a recording and its replay."""

    def on_start(self) -> None:
        self._out = open(self.params["out"], "a", buffering=1)  # noqa: SIM115

    def on_tick(self, tick: Any) -> None:
        self._out.write(f"{tick.symbol} {tick.kind} {tick.price!r} {tick.size!r} "
                        f"{tick.bid!r} {tick.ask!r}\n")

    def on_stop(self) -> None:
        self._out.close()


class FlagTrail(Strategy):
    """Writes `flags symbol kind exchange_ns price size` per tick to params.out."""

    def on_start(self) -> None:
        self._out = open(self.params["out"], "a", buffering=1)  # noqa: SIM115

    def on_tick(self, tick: Any) -> None:
        self._out.write(f"{tick.flags} {tick.symbol} {tick.kind} {tick.exchange_ns} "
                        f"{tick.price!r} {tick.size!r}\n")

    def on_stop(self) -> None:
        self._out.close()


class TickRecorder(Strategy):
    """Appends `kind symbol price bid ask` of every tick it receives to params.out."""

    def on_start(self) -> None:
        self._out = open(self.params["out"], "a", buffering=1)  # noqa: SIM115

    def on_tick(self, tick: Any) -> None:
        self._out.write(f"{tick.kind} {tick.symbol} {tick.price} {tick.bid} {tick.ask}\n")

    def on_stop(self) -> None:
        self._out.close()


class BarRecorder(Strategy):
    """Writes every bar (to params.out) and every trade (to params.trades) it receives, one
    line each, and names any bar that reached on_tick (it must not)."""

    def on_start(self) -> None:
        self._bars = open(self.params["out"], "a", buffering=1)  # noqa: SIM115
        self._trades = open(self.params["trades"], "a", buffering=1)  # noqa: SIM115

    def on_tick(self, tick: Any) -> None:
        if tick.kind == "trade":
            self._trades.write(f"{tick.symbol} {tick.exchange_ns} {tick.price!r} {tick.size!r}\n")
        elif tick.kind == "bar":
            self._trades.write(f"BAR-IN-ON-TICK {tick.symbol}\n")

    def on_bar(self, bar: Any) -> None:
        self._bars.write(
            f"{bar.symbol} {bar.exchange_ns} {bar.open!r} {bar.high!r} {bar.low!r} "
            f"{bar.close!r} {bar.volume!r} {bar.trade_count}\n"
        )

    def on_stop(self) -> None:
        self._bars.close()
        self._trades.close()


class KindRecorder(Strategy):
    """Appends the kind of every tick it receives to params.out."""

    def on_start(self) -> None:
        self._out = open(self.params["out"], "a", buffering=1)  # noqa: SIM115

    def on_tick(self, tick: Any) -> None:
        self._out.write(f"{tick.kind}\n")

    def on_bar(self, bar: Any) -> None:
        self._out.write("on_bar\n")

    def on_stop(self) -> None:
        self._out.close()


class BookRecorder(Strategy):
    """Writes every quote (to params.quotes) and every book it receives (to params.out), and
    checks self.book() agrees with what on_book was handed."""

    def on_start(self) -> None:
        self._books = open(self.params["out"], "a", buffering=1)  # noqa: SIM115
        self._quotes = open(self.params["quotes"], "a", buffering=1)  # noqa: SIM115

    def on_tick(self, tick: Any) -> None:
        if tick.kind == "quote":
            self._quotes.write(f"{tick.symbol} {tick.exchange_ns} {tick.bid!r} "
                               f"{tick.bid_size!r} {tick.ask!r} {tick.ask_size!r}\n")

    def on_book(self, book: Any) -> None:
        newest = self.book(book.symbol)
        assert newest is not None and newest.version >= book.version
        bids = " ".join(f"{p!r}:{s!r}" for p, s in book.bids)
        asks = " ".join(f"{p!r}:{s!r}" for p, s in book.asks)
        self._books.write(f"{book.symbol} {book.exchange_ns} {book.version} {len(book.bids)} "
                          f"{len(book.asks)} | {bids} | {asks}\n")

    def on_stop(self) -> None:
        self._books.close()
        self._quotes.close()
