"""A broker that allows one connection per login (AllTick's basic plan; Alpaca answers a
second connection with 406) must accept the gateway's reconnect after it closed the first:
the gateway really closes its socket, on every path, so the login's slot is free at once."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.desk import Desk
from tests.e2e.test_desk import recorder
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


TCP_STATES = {"01": "ESTABLISHED", "06": "TIME_WAIT", "08": "CLOSE_WAIT", "0A": "LISTEN"}


def tcp_states(pid: int, port: int) -> list[str]:
    """The TCP states of the sockets process `pid` holds to `port` (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink()
        except OSError:
            continue
        if str(target).startswith("socket:["):
            inodes.add(str(target)[8:-1])
    states = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].split(":")[1], 16)
            if fields[9] in inodes and remote_port == port:
                states.append(TCP_STATES.get(fields[3], fields[3]))
    return states


def gateway_connection(desk: Desk) -> dict[str, Any]:
    """The gateway's one upstream connection, as its status shows it ({} before it has one)."""
    conns = (desk.proc("gateway-sim")["stats"] or {}).get("connections") or [{}]
    return conns[0]  # type: ignore[no-any-return]


def test_the_reconnect_after_a_broker_close_is_accepted_first_time(
    make_desk: object, tmp_path: Path
) -> None:
    body = """
brokers:
  sim:
    adapter: sim
    pool: {symbols_per_connection: 5, max_connections: 1}
    market: {seed: 3, rate: 40}
strategies:
""" + recorder("rec", tmp_path)
    desk: Desk = make_desk("gwonelogin", body)  # type: ignore[operator]
    desk.up()
    wait_for(lambda: len(desk.lines("rec")) > 5, what="first ticks")
    wait_for(lambda: gateway_connection(desk).get("attempts") == 1, what="the gateway's status")
    http = desk.proc("sim-sim")["detail"]["http"]
    request = urllib.request.Request(
        f"{http}/admin/drop", data=json.dumps({"code": 1012}).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert json.load(reply)["dropped"] >= 1
    wait_for(lambda: gateway_connection(desk).get("reconnects") == 1
             and gateway_connection(desk).get("state") == "live", timeout=60,
             what="the gateway to reconnect")
    count = len(desk.lines("rec"))
    wait_for(lambda: len(desk.lines("rec")) > count + 5, what="ticks after the reconnect")
    conn = gateway_connection(desk)
    # One attempt for the first session, one for the reconnect: no 406 in between.
    assert conn["attempts"] == 2, conn
    # And the closed connection's socket is gone from the gateway, not left half-closed.
    port = int(http.rsplit(":", 1)[1])
    states = tcp_states(desk.proc("gateway-sim")["pid"], port)
    assert states.count("ESTABLISHED") >= 1 and "CLOSE_WAIT" not in states, states
