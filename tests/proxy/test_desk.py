"""The proxy in a whole desk run through the CLI: `up` starts it, `status` and `tradeops proxy
clients` show it, and it survives a restart of its gateway and of itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.desk import Desk
from tests.waiting import wait_for
from tradeops.supervisor.status import render_status

from .helpers import NativeClient

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

BODY = """
brokers:
  sim:
    adapter: sim
    market: {seed: 5, rate: 40}
"""


def proxy_row(desk: Desk) -> dict[str, Any]:
    return desk.proc("proxy")


def test_up_starts_the_proxy_and_it_rejoins_a_restarted_gateway(
    make_desk: Callable[[str, str], Desk],
) -> None:
    desk = make_desk("pxdesk", BODY)
    desk.up()
    row = proxy_row(desk)
    assert row["state"] == "running" and row["role"] == "proxy"
    url = row["detail"]["url"]
    assert url.startswith("ws://127.0.0.1:") and not url.endswith(":0")

    client = NativeClient(url + "/")
    try:
        assert client.hello("desk-test")["op"] == "hello"  # no token configured: none needed
        assert client.subscribe(["AAPL", "MSFT"], "quote")["ok"]
        client.wait_ticks(lambda t: len(t) > 10)
        wait_for(  # the proxy publishes its figures once a second
            lambda: "1 clients" in render_status(desk.status()), what="the proxy's figures"
        )
        text = desk.cli("status", "--file", str(desk.file)).stdout  # as `tradeops status` shows it
        line = next(x for x in text.splitlines() if x.startswith("proxy "))
        assert url in line and "2 subscriptions" in line and "slow dropped 0" in line
        listing = desk.cli("proxy", "clients", "--file", str(desk.file))
        assert listing.returncode == 0, listing.stderr
        assert "desk-test" in listing.stdout and "native/json" in listing.stdout

        assert desk.cli("restart", "gateway-sim", "--file", str(desk.file)).returncode == 0
        client.until(lambda m: m.get("op") == "status" and m["live"] is False, timeout=15)
        client.ticks.clear()
        ticks = client.wait_ticks(lambda t: {x["symbol"] for x in t} == {"AAPL", "MSFT"}, 20)
        assert ticks[0]["seq"] < 1000  # a new gateway's ring: the proxy re-attached to it
        assert proxy_row(desk)["restarts"] == 0
    finally:
        client.close()

    assert desk.cli("restart", "proxy", "--file", str(desk.file)).returncode == 0
    again = wait_for(
        lambda: (r := proxy_row(desk))["state"] == "running" and r["restarts"] == 1 and r,
        what="the proxy back",
    )
    assert again["detail"]["url"] == url  # a restarted proxy keeps its address
    back = NativeClient(url + "/")
    try:
        back.hello("again")
        assert back.subscribe(["AAPL"])["ok"]
        back.wait_ticks(lambda t: len(t) > 3)
    finally:
        back.close()
