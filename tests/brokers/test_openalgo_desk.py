"""A desk on an OpenAlgo server (the sim's OpenAlgo dialect): one gateway connection for
every strategy, ticks on the bus, and the unmodified openalgo client through the proxy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.desk import Desk
from tests.waiting import wait_for
from tradeops.sim.options import SimOptions
from tradeops.sim.server import SimThread

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.fixture
def server() -> Iterator[SimThread]:
    with SimThread(SimOptions(keys={"oa-key": ""}, rate=20.0, seed=11)) as running:
        yield running


def body(server: SimThread, tmp: Path) -> str:
    return f"""
brokers:
  india:
    adapter: openalgo
    url: {server.url}/openalgo
    credentials: {{api_key: oa-key}}
strategies:
  nifty:
    class: tests.e2e.strategies:TickTrail
    broker: india
    symbols: [NSE:RELIANCE, NSE:INFY]
    mode: quote
    params: {{out: "{tmp / 'nifty.txt'}"}}
  banks:
    class: tests.e2e.strategies:TickTrail
    broker: india
    symbols: [NSE:HDFCBANK, NSE:RELIANCE]
    params: {{out: "{tmp / 'banks.txt'}"}}
"""


def lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def test_strategies_trade_on_an_openalgo_feed(make_desk: Any, tmp_path: Path,
                                              server: SimThread) -> None:
    desk: Desk = make_desk("oadesk", body(server, tmp_path))
    desk.edit('  proxy: {listen: "127.0.0.1:0"}\n',
              '  proxy: {listen: "127.0.0.1:0", exchanges: {NSE: india}}\n')
    desk.up()

    def seen() -> set[tuple[str, str]] | None:
        kinds = {(w[0], w[1]) for w in lines(tmp_path / "nifty.txt")}
        want = {("NSE:RELIANCE", "trade"), ("NSE:RELIANCE", "quote"), ("NSE:INFY", "quote")}
        return kinds if want <= kinds else None

    wait_for(seen, timeout=40, what="trades and quotes of NSE symbols at the strategy")
    quote = next(w for w in lines(tmp_path / "nifty.txt") if w[1] == "quote")
    assert float(quote[4]) < float(quote[5])  # bid below ask: the depth's best levels
    banks = wait_for(lambda: {w[0] for w in lines(tmp_path / "banks.txt")} or None,
                     timeout=30, what="ticks at the second strategy")
    assert banks <= {"NSE:HDFCBANK", "NSE:RELIANCE"}
    # One upstream connection for both strategies, one subscription per symbol and mode.
    stats = wait_for(lambda: (s := desk.proc("gateway-india")["stats"]).get("symbols") == 3
                     and s, timeout=20, what="the gateway's figures")
    assert len(stats["connections"]) == 1

    # The unmodified openalgo client, through the proxy, gets NSE:RELIANCE as OpenAlgo data.
    from openalgo import api

    port = desk.proc("proxy")["detail"]["port"]
    client = api(api_key="any", host="http://127.0.0.1:5000", ws_port=port)
    assert client.connect()
    got: list[dict[str, Any]] = []
    try:
        client.subscribe_ltp([{"exchange": "NSE", "symbol": "RELIANCE"}],
                             on_data_received=got.append)
        wait_for(lambda: len(got) >= 3, timeout=30, what="LTP data through the proxy")
        # Depth: the OpenAlgo server's five levels a side, into the gateway's book table and
        # out through the proxy's OpenAlgo dialect, best first.
        books: list[dict[str, Any]] = []
        client.subscribe_depth([{"exchange": "NSE", "symbol": "INFY"}],
                               on_data_received=books.append)
        book = wait_for(lambda: next((b for b in books if b.get("mode") == 3
                                      and len(b["data"]["depth"]["buy"]) == 5), None),
                        timeout=30, what="a five-level book through the proxy")
    finally:
        client.disconnect()
    ltps = [g for g in got if g.get("mode") == 1]
    assert {(g["exchange"], g["symbol"]) for g in ltps} == {("NSE", "RELIANCE")}
    assert all(g["data"]["ltp"] > 0 for g in ltps)
    buy, sell = book["data"]["depth"]["buy"], book["data"]["depth"]["sell"]
    assert (book["exchange"], book["symbol"], len(sell)) == ("NSE", "INFY", 5)
    bids = [level["price"] for level in buy]
    asks = [level["price"] for level in sell]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]
