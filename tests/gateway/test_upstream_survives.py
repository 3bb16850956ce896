"""An unexpected exception on the upstream reader (a decoder's bug, the sink's) drops the
connection and makes it again, like any other failure: the feed never goes silent for good.
Market messages a dialect drops as malformed are counted where a user sees them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from tests.waiting import wait_for
from tradeops.gateway.backoff import BackoffPolicy
from tradeops.gateway.health import connection_rows
from tradeops.gateway.pool import Transition
from tradeops.gateway.upstream import Upstream, UpstreamConfig, UpstreamEvent
from tradeops.protocol.alpaca import MarketDataSession
from tradeops.protocol.feed import BrokerFrame, Event
from tradeops.protocol.tick import RecordRow
from tradeops.sim.options import SimOptions
from tradeops.sim.server import SimThread
from tradeops.supervisor.status import extra

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


@pytest.fixture
def sim() -> Iterator[SimThread]:
    with SimThread(SimOptions(rate=20.0, seed=4)) as running:
        yield running


class Broken(MarketDataSession):
    """A session whose first decode raises, as a bug would."""

    raised = threading.Event()

    def receive(self, frame: BrokerFrame) -> list[Event]:
        if not Broken.raised.is_set():
            Broken.raised.set()
            raise RuntimeError("a decoder bug")
        return super().receive(frame)


def test_an_exception_in_the_reader_reconnects_instead_of_ending_the_feed(
    sim: SimThread,
) -> None:
    events: list[UpstreamEvent] = []
    config = UpstreamConfig(url=sim.url + "/v2/iex",
                            session=lambda: Broken("tradeops", "tradeops"),
                            backoff=BackoffPolicy(base=0.05))  # fmt: skip
    upstream = Upstream(0, config, events.append, lambda *args: None)
    upstream.start()
    try:
        wait_for(lambda: any(e.kind == "ready" for e in events), what="a session after the bug")
        down = [e for e in events if e.kind == "down"]
        assert down and down[0].cause == "protocol", events
        assert "RuntimeError: a decoder bug" in down[0].message
        assert upstream.reconnects == 1 and upstream.state == "live"
    finally:
        upstream.stop()


class Sloppy(MarketDataSession):
    """A broker whose every frame of market data has one message the dialect drops."""

    def receive_rows(self, frame: BrokerFrame, receive_ns: int
                     ) -> tuple[list[RecordRow], list[Event]]:
        rows, events = super().receive_rows(frame, receive_ns)
        if rows:
            self.malformed += 1
        return rows, events


def test_dropped_malformed_messages_are_counted_in_status(sim: SimThread) -> None:
    events: list[UpstreamEvent] = []
    ticks: list[RecordRow] = []
    config = UpstreamConfig(url=sim.url + "/v2/iex", session=lambda: Sloppy("k", "s"))
    upstream = Upstream(0, config, events.append, lambda conn, rows, *books: ticks.extend(rows))
    upstream.start()
    try:
        wait_for(lambda: upstream.state == "live", what="the session")
        assert upstream.send_change({}, [Transition("AAPL", None, "trade")]) == 1
        wait_for(lambda: upstream.malformed >= 2, what="market data with a dropped message")
        assert ticks  # the rest of each frame arrived
        (row,) = connection_rows({0: upstream}, lambda conn: 1, time.monotonic())
        assert row["malformed"] >= 2
        line = extra({"role": "gateway", "stats": {"connections": [row], "live": True}})
        assert f"malformed dropped {row['malformed']}" in line
    finally:
        upstream.stop()


class BadBeat(MarketDataSession):
    """A dialect whose first keep-alive raises, as a bug would."""

    heartbeat_interval = 0.05
    beats = 0

    def heartbeat(self) -> BrokerFrame | None:
        BadBeat.beats += 1
        if BadBeat.beats == 1:
            raise RuntimeError("a keep-alive bug")
        return None  # websocket pings


def test_an_exception_in_the_writer_loses_one_frame_not_the_writer(sim: SimThread) -> None:
    ticks: list[RecordRow] = []
    config = UpstreamConfig(url=sim.url + "/v2/iex", session=lambda: BadBeat("k", "s"))
    upstream = Upstream(0, config, lambda event: None,
                        lambda conn, rows, *books: ticks.extend(rows))  # fmt: skip
    upstream.start()
    try:
        wait_for(lambda: upstream.state == "live" and BadBeat.beats >= 2,
                 what="the writer beating after the bug")  # fmt: skip
        assert upstream.send_change({}, [Transition("AAPL", None, "trade")]) == 1
        wait_for(lambda: len(ticks) > 0, what="ticks of a subscription sent by the writer")
    finally:
        upstream.stop()
