"""The order path's threads outlive what they did not foresee: a job that raises fails on its
own and the next one goes out; a 429 whose Retry-After is an HTTP-date pauses and retries; a
trade update the gateway chokes on reconnects the stream instead of ending it. Each checked
at the broker's side (the sim's order book) where there is one."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from tests.waiting import wait_for
from tradeops.gateway.ratelimit import SlidingWindow
from tradeops.gateway.trading import (
    Job,
    JobResult,
    OrderSender,
    RestTransport,
    TradeStream,
    retry_after,
)
from tradeops.protocol import alpaca_trading as at
from tradeops.sim.options import SimOptions
from tradeops.sim.server import SimThread

FAR = 1.0  # a buy limit far below the market: it rests


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC).timestamp()
    assert retry_after("2") == 2.0
    assert retry_after("0.5") == 0.5
    assert retry_after(None) == retry_after("") == 1.0
    in_30s = format_datetime(datetime(2026, 12, 3, 12, 0, 30, tzinfo=UTC), usegmt=True)
    assert retry_after(in_30s, now=now) == 30.0
    assert retry_after("Wed, 02 Dec 2026 12:00:00 GMT", now=now) == 0.0  # already past
    assert retry_after("soon, maybe", now=now) == 1.0
    assert retry_after("-5") == 0.0 and retry_after("1e9") == 3600.0
    assert retry_after("nan") == 1.0


class Scripted:
    """A transport that answers from a script (an exception is raised), then relays to the
    real sim; records what it was asked."""

    def __init__(self, script: list[object], real: RestTransport) -> None:
        self.script, self.real, self.asked = script, real, 0

    def call(self, request: at.HttpRequest) -> tuple[int, dict[str, str], bytes]:
        self.asked += 1
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, Exception):
                raise step
            return step  # type: ignore[return-value]
        return self.real.call(request)

    def close(self) -> None:
        self.real.close()


@pytest.fixture
def sim() -> Iterator[SimThread]:
    with SimThread(SimOptions(keys={"k": "s"}, rate=20.0, seed=5)) as running:
        yield running


def open_at_sim(sim: SimThread) -> list[str]:
    with urllib.request.urlopen(f"{sim.http_url}/admin/orders", timeout=5) as resp:
        orders = json.loads(resp.read())["orders"]
    return [o["client_order_id"] for o in orders
            if o["status"] in ("accepted", "new", "partially_filled")]  # fmt: skip


def submit(cid: str) -> Job:
    return Job("submit", at.submit("AAPL", "buy", 1, FAR, "day", cid), cid=cid)


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_a_job_that_raises_fails_alone_and_the_next_order_reaches_the_broker(
    sim: SimThread,
) -> None:
    transport = Scripted([RuntimeError("nobody foresaw this")],
                         RestTransport(sim.http_url, "k", "s"))  # fmt: skip
    sender = OrderSender(transport, None, 10)
    results: list[JobResult] = []
    sender.start(results.append)
    try:
        sender.put(submit("t1.bot.first"))
        sender.put(submit("t1.bot.second"))
        wait_for(lambda: len(results) == 2, what="both jobs' outcomes")
        first, second = results
        assert first.status == 0 and "internal error: RuntimeError" in first.error
        assert second.status == 200
        assert open_at_sim(sim) == ["t1.bot.second"]  # the broker has the one that went out
    finally:
        sender.stop()


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_a_429_with_an_http_date_pauses_then_the_order_reaches_the_broker(
    sim: SimThread,
) -> None:
    soon = format_datetime(datetime.now(UTC), usegmt=True)  # "now": retry at once
    transport = Scripted([(429, {"Retry-After": soon}, b"")],
                         RestTransport(sim.http_url, "k", "s"))  # fmt: skip
    sender = OrderSender(transport, SlidingWindow(100, 60.0), 10)
    results: list[JobResult] = []
    sender.start(results.append)
    try:
        sender.put(submit("t1.bot.paused"))
        wait_for(lambda: len(results) == 1, what="the order's outcome after the 429")
        assert results[0].status == 200 and sender.throttled == 1 and transport.asked == 2
        assert open_at_sim(sim) == ["t1.bot.paused"]
    finally:
        sender.stop()


def test_a_malformed_update_keeps_the_order_state() -> None:
    frame = json.dumps({"stream": "trade_updates", "data": {
        "event": "fill", "price": "n/a", "qty": [1], "order": {"id": "b1", "status": "filled"}}})
    (update,) = at.stream_events(frame)
    assert (update.event, update.order["status"], update.price, update.qty) == (
        "fill", "filled", None, None)
    assert at.stream_events(json.dumps({"stream": "trade_updates", "data": [1, 2]})) == []


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_an_update_the_gateway_chokes_on_reconnects_the_stream(sim: SimThread) -> None:
    updates: list[at.TradeUpdate] = []
    states: list[str] = []
    choked = threading.Event()

    def on_update(update: at.TradeUpdate) -> None:
        if not choked.is_set():
            choked.set()
            raise KeyError("a bug in the handler")
        updates.append(update)

    stream_url = "ws" + sim.http_url.removeprefix("http") + "/stream"
    stream = TradeStream(stream_url, "k", "s", on_update=on_update,
                         on_state=lambda state, cause: states.append(state), name="t")
    transport = RestTransport(sim.http_url, "k", "s")
    stream.start()
    try:
        wait_for(lambda: states == ["live"], what="the stream")
        transport.call(at.submit("AAPL", "buy", 1, FAR, "day", "t1.bot.one"))
        wait_for(lambda: states[-1:] == ["live"] and len(states) == 3,
                 what="the stream down and live again after the handler raised")
        assert states == ["live", "down", "live"] and stream.reconnects == 1
        transport.call(at.submit("AAPL", "buy", 1, FAR, "day", "t1.bot.two"))
        wait_for(lambda: any(u.order.get("client_order_id") == "t1.bot.two" for u in updates),
                 what="an update after the reconnect")
    finally:
        stream.stop()
        transport.close()
