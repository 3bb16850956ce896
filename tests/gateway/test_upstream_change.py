"""An upstream change that needs no request of the broker is acknowledged at once."""

from __future__ import annotations

from tradeops.gateway.pool import Transition
from tradeops.gateway.upstream import Upstream, UpstreamConfig, UpstreamEvent
from tradeops.protocol.alltick import AllTickSession
from tradeops.protocol.alpaca import MarketDataSession


def live(session: object) -> tuple[Upstream, list[UpstreamEvent]]:
    events: list[UpstreamEvent] = []
    upstream = Upstream(3, UpstreamConfig(url="ws://unused", session=lambda: session),  # type: ignore[arg-type,return-value]
                        events.append, lambda *args: None)
    upstream._session = session  # type: ignore[assignment]
    upstream.state = "live"
    return upstream, events


def test_bars_on_a_broker_without_bars_need_no_request_and_are_acknowledged() -> None:
    upstream, events = live(AllTickSession("t"))
    # AllTick streams no bars: trade -> trade+bars asks nothing; without the ack the change
    # would stay in flight for ever and the connection take no other change.
    assert upstream.send_change({"HK:700": "trade"},
                                [Transition("HK:700", "trade", "trade+bars")]) == 0
    assert events == [UpstreamEvent(3, "ack")]


def test_a_change_with_requests_waits_for_the_broker() -> None:
    upstream, events = live(MarketDataSession("k", "s", "json"))
    assert upstream.send_change({}, [Transition("AAPL", None, "trade+bars")]) == 1
    assert events == []  # the broker's own answer will count
