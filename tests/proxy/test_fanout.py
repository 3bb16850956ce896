"""sim → gateway → proxy → many websocket clients, in real processes.

The broker's own subscription log (the sim's /admin/subscriptions) is the witness: however
many clients ask, the broker sees one subscription per symbol, and the last one leaving
releases it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.waiting import wait_for
from tradeops.bus import RingReader
from tradeops.gateway.client import GatewayClient
from tradeops.process.paths import RunPaths
from tradeops.protocol.tick import encode_symbol

from .helpers import NativeClient, ProxyDesk

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

Open = Callable[[ProxyDesk, str], NativeClient]


def changes(log: list[dict[str, Any]], what: str, channel: str = "trades") -> Counter[str]:
    """How often the broker added (or removed) each symbol on a channel."""
    return Counter(s for e in log if e["result"] == "ok" for s in e[what].get(channel, []))


def barrier(desk: ProxyDesk, clients: Open, symbol: str) -> None:
    """Everything the proxy asked before this reached the broker: the gateway handles the
    proxy's requests in order, and this subscribe is acknowledged only once the broker is."""
    client = clients(desk, "barrier")
    assert client.subscribe([symbol])["ok"]
    assert changes(desk.broker_log(), "added")[symbol] == 1
    client.close()


def test_twenty_clients_make_one_broker_subscription_per_symbol(
    desk: ProxyDesk, clients: Open
) -> None:
    desk.admin("/admin/clear", {})
    pool = [f"FAN{chr(65 + i)}" for i in range(22)]
    wanted = {i: pool[i : i + 3] for i in range(20)}  # overlapping: most symbols thrice
    group = [clients(desk, f"c{i}") for i in range(20)]
    with ThreadPoolExecutor(20) as ex:  # all at once: joins while requests are in flight
        acks = list(ex.map(lambda i: group[i].subscribe(wanted[i]), range(20)))
    assert all(a["ok"] for a in acks), [a for a in acks if not a["ok"]]

    added = changes(desk.broker_log(), "added")
    assert {s: added[s] for s in pool} == dict.fromkeys(pool, 1)  # one each, however many ask
    assert sum(e["action"] == "subscribe" for e in desk.broker_log()) < 20
    state = wait_for(lambda: (s := desk.state()) and s["clients"] >= 20 and s, what="status")
    assert state["subscriptions"]["sim:FANC:trade"] == 3

    for i in (0, 7, 19):  # every client gets its symbols, and only those
        ticks = group[i].wait_ticks(lambda t, i=i: {x["symbol"] for x in t} >= set(wanted[i]))
        assert {t["symbol"] for t in ticks} <= set(wanted[i])

    # FANC is held by clients 0, 1 and 2: two leaving release nothing.
    assert group[0].unsubscribe(wanted[0])["ok"] and group[1].unsubscribe(wanted[1])["ok"]
    barrier(desk, clients, "FANBARRIER")
    removed = changes(desk.broker_log(), "removed")
    assert removed["FANA"] == 1 and removed["FANB"] == 1  # held by 0 and 1 only
    assert removed["FANC"] == 0
    group[2].close()  # the last holder disconnects: its lease ends, FANC is released
    wait_for(lambda: changes(desk.broker_log(), "removed")["FANC"] == 1, what="FANC released")

    for client in group[3:]:
        client.close()
    wait_for(
        lambda: all(changes(desk.broker_log(), "removed")[s] == 1 for s in pool),
        what="every symbol released once",
    )
    assert changes(desk.broker_log(), "added") == changes(desk.broker_log(), "removed")


def test_a_weaker_mode_joins_free_and_the_strong_one_leaving_downgrades(
    desk: ProxyDesk, clients: Open
) -> None:
    desk.admin("/admin/clear", {})
    strong, weak = clients(desk, "strong"), clients(desk, "weak")
    assert strong.subscribe(["NESTA"], "quote")["ok"]
    assert weak.subscribe(["NESTA"], "trade")["ok"]
    barrier(desk, clients, "NESTBARRIER")
    log = [e for e in desk.broker_log() if "NESTA" in str(e["request"])]
    assert len(log) == 1 and log[0]["added"] == {"quotes": ["NESTA"], "trades": ["NESTA"]}

    strong.close()
    wait_for(lambda: changes(desk.broker_log(), "removed", "quotes")["NESTA"] == 1,
             what="quotes dropped")
    assert changes(desk.broker_log(), "removed")["NESTA"] == 0  # downgraded, not dropped
    weak.ticks.clear()
    ticks = weak.wait_ticks(lambda t: len(t) >= 3)
    assert {t["kind"] for t in ticks} == {"trade"}


def test_tokens_paths_and_status(desk: ProxyDesk, clients: Open) -> None:
    before = desk.state().get("refused_tokens", 0)
    intruder = NativeClient(desk.url + "/")
    reply = intruder.hello("intruder", token="guess")
    assert reply == {"op": "error", "code": "auth-failed", "message": "wrong or missing token"}
    wait_for(lambda: desk.state().get("refused_tokens", 0) == before + 1, what="the count")
    with pytest.raises(InvalidStatus) as refused:
        connect(desk.url + "/admin", open_timeout=5)
    assert refused.value.response.status_code == 404

    client = clients(desk, "dash")
    assert client.subscribe(["STATA"], "quote")["ok"]
    row = wait_for(
        lambda: next((c for c in desk.state().get("client_list", []) if c["name"] == "dash"), None),
        what="the client in status",
    )
    assert row["dialect"] == "native" and row["symbols"] == 1
    state = desk.state()
    assert state["gateways"]["sim"]["connected"] is True and state["url"] == desk.url


def test_the_proxy_reads_from_the_bus_only_the_symbols_its_clients_hold(
    private_desk: Callable[..., ProxyDesk], clients: Callable[[ProxyDesk, str], NativeClient]
) -> None:
    """A strategy host's symbols flow through the ring too; the proxy neither reads nor
    decodes them while none of its clients holds them (a proxy nobody uses costs nothing per
    tick)."""
    desk = private_desk(rate=50.0)
    paths = RunPaths(desk.run_dir.resolve(), desk.name)
    host = GatewayClient(str(paths.gateway_socket("sim")), "host:other")  # not the proxy's
    try:
        assert host.subscribe(["AAPL"], "trade")["ok"]
        with RingReader(desk.bus, "sim", start="oldest") as ring:
            wait_for(lambda: ring.cursor > 100, what="AAPL's ticks in the ring")
            seen = desk.state_file().stat().st_mtime_ns
            # The proxy's status after those ticks: it took none of them.
            state = wait_for(lambda: desk.state_file().stat().st_mtime_ns > seen
                             and desk.state(), what="the proxy's next status")  # fmt: skip
            assert state["ticks_in"] == 0 and state["gateways"]["sim"]["lost"] == 0
            client = clients(desk, "msft")
            assert client.subscribe(["MSFT"])["ok"]
            client.wait_ticks(lambda ticks: len(ticks) >= 20)
            assert {t["symbol"] for t in client.ticks} == {"MSFT"}
            state = wait_for(lambda: (s := desk.state()) and s["ticks_in"] >= 20 and s,
                             what="the proxy's status counting MSFT")  # fmt: skip
            # Everything the proxy read was MSFT: never more than the ring's MSFT ticks,
            # although AAPL went on at the same rate.
            msft = len(ring.read(1 << 20, symbols={encode_symbol("MSFT")}))
            assert 20 <= state["ticks_in"] <= msft
    finally:
        host.close()
