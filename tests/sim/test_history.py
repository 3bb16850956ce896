"""The sim's historical trades API, sans-I/O: the window, the pages, Alpaca's shape."""

from __future__ import annotations

from tradeops.sim.history import TradeHistory, answer, parse_time, rfc3339
from tradeops.sim.market import Trade


def history() -> TradeHistory:
    h = TradeHistory()
    for i in range(10):
        h.record(Trade("AAPL", 100.0 + i, 1.0, 1_000 + i, i + 1))
        h.record(Trade("MSFT", 200.0 + i, 2.0, 1_000 + i, i + 1))
    return h


def test_times_round_trip_with_nanoseconds() -> None:
    t = 1_777_000_000_123_456_789
    assert rfc3339(t) == "2026-04-24T03:06:40.123456789Z"
    assert parse_time(rfc3339(t)) == t
    assert parse_time("2026-04-24T03:06:40Z") == 1_777_000_000 * 10**9


def test_a_window_is_start_inclusive_end_exclusive_and_pages_cover_it_once() -> None:
    h = history()
    query = {"start": rfc3339(1_002), "end": rfc3339(1_008), "limit": "5"}
    pages, token = [], None
    while True:
        status, body = answer(h, ["MSFT", "AAPL"], {**query, **({"page_token": token}
                                                             if token else {})}, None)
        assert status == 200
        pages.append(body["trades"])
        token = body["next_page_token"]
        if not token:
            break
    got = [(s, t["p"]) for page in pages for s, trades in page.items() for t in trades]
    assert len(pages) == 3 and len(got) == 12
    assert got == [("AAPL", 100.0 + i) for i in range(2, 8)] + [
        ("MSFT", 200.0 + i) for i in range(2, 8)]


def test_one_symbols_route_and_bad_queries() -> None:
    status, body = answer(history(), ["AAPL"], {"limit": "2"}, "AAPL")
    assert status == 200 and body["symbol"] == "AAPL" and len(body["trades"]) == 2
    assert body["trades"][0] == {"t": rfc3339(1_000), "x": "V", "p": 100.0, "s": 1.0,
                                 "c": ["@"], "i": 1, "z": "C"}
    assert answer(history(), ["AAPL"], {"start": "yesterday"}, None)[0] == 422
    assert answer(history(), [], {}, None)[0] == 422
