"""Each fault, from options and from the admin endpoint, seen by plain clients."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import pytest

from tests.waiting import wait_for
from tradeops.sim import SimThread

from .helpers import Closed, Http, WsClient

pytestmark = pytest.mark.e2e


def subscribed(sim: SimThread, connect: Callable[..., WsClient]) -> WsClient:
    client = connect(sim.url + "/v2/iex")
    client.handshake()
    client.send({"action": "subscribe", "trades": ["AAPL"]})
    client.recv_until(lambda m: m["T"] == "subscription")
    client.recv_until(lambda m: m["T"] == "t")
    return client


def closed_code(client: WsClient) -> int:
    with pytest.raises(Closed) as closed:
        while True:
            client.recv(timeout=5)
    return closed.value.code


def test_drop_now_closes_every_connection_with_the_drop_code(
        sim: SimThread, http: Http, connect: Callable[..., WsClient]) -> None:
    data = subscribed(sim, connect)
    stream = connect(sim.url + "/stream")
    assert http.post("/admin/drop", {}, auth=False)[1] == {"dropped": 2}
    assert closed_code(data) == 1012
    assert closed_code(stream) == 1012
    reasons = wait_for(lambda: [c["reason"] for c in http.admin("connections")["closed"]
                                  if len(http.admin("connections")["closed"]) == 2])
    assert reasons == ["dropped by the sim"] * 2
    again = subscribed(sim, connect)  # the sim itself keeps serving
    assert http.post("/admin/drop", {"code": 4000}, auth=False)[1] == {"dropped": 1}
    assert closed_code(again) == 4000


def test_abrupt_drop_closes_without_a_close_frame(sim: SimThread, http: Http,
                                                  connect: Callable[..., WsClient]) -> None:
    client = subscribed(sim, connect)
    http.post("/admin/drop", {"abrupt": True}, auth=False)
    assert closed_code(client) == 1006


def test_drop_every_n_seconds_from_options(start_sim: Callable[..., SimThread],
                                          connect: Callable[..., WsClient]) -> None:
    sim = start_sim(rate=100.0, drop_every=0.3)
    http = Http(sim.http_url)
    for _ in range(2):  # nobody asks: the sim drops each connection on its own, again and again
        client = subscribed(sim, connect)
        assert closed_code(client) == 1012
    assert http.admin("faults")["drops"] >= 2


def test_abrupt_drops_every_n_seconds_from_options(start_sim: Callable[..., SimThread],
                                                  connect: Callable[..., WsClient]) -> None:
    sim = start_sim(rate=100.0, drop_every=0.3, abrupt=True)
    assert closed_code(subscribed(sim, connect)) == 1006


def test_silence_on_demand_keeps_the_connection_open(sim: SimThread, http: Http,
                                                     connect: Callable[..., WsClient]) -> None:
    client = subscribed(sim, connect)
    http.post("/admin/silence", {"seconds": 0.6}, auth=False)
    silent_from = time.monotonic()
    # Frames already queued may still arrive; after them, nothing until the silence ends.
    last_data = silent_from
    first_after = None
    while first_after is None:
        frame = client.recv(timeout=3)
        now = time.monotonic()
        if now - last_data > 0.3:
            first_after = now
        last_data = now
        assert frame[0]["T"] == "t"
    assert first_after - silent_from >= 0.5
    assert http.admin("faults")["silent"] is False


def test_silent_every_from_options_makes_gaps(start_sim: Callable[..., SimThread],
                                             connect: Callable[..., WsClient]) -> None:
    sim = start_sim(rate=100.0, silent_every=0.5, silent_for=0.3)
    client = subscribed(sim, connect)
    times = [time.monotonic()]
    while time.monotonic() - times[0] < 1.5:
        client.recv(timeout=3)
        times.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) >= 0.2
    assert sum(1 for g in gaps if g >= 0.2) >= 2


def test_reject_auth_on_every_interface_then_recover(sim: SimThread, http: Http,
                                                    connect: Callable[..., WsClient]) -> None:
    http.post("/admin/faults", {"reject_auth": True}, auth=False)
    data = connect(sim.url + "/v2/iex")
    data.recv()
    data.send({"action": "auth", "key": "key", "secret": "secret"})
    assert data.recv() == [{"T": "error", "code": 402, "msg": "auth failed"}]
    stream = connect(sim.url + "/stream")
    stream.send({"action": "authenticate", "data": {"key_id": "key", "secret_key": "secret"}})
    assert stream.recv()["data"]["status"] == "unauthorized"
    assert http.get("/v2/account")[0] == 401
    http.post("/admin/faults", {"reject_auth": False}, auth=False)
    data.send({"action": "auth", "key": "key", "secret": "secret"})
    assert data.recv() == [{"T": "success", "msg": "authenticated"}]
    assert http.get("/v2/account")[0] == 200
    (conn,) = [c for c in http.admin("connections")["open"] if c["kind"] == "data"]
    assert [a["ok"] for a in conn["auth_attempts"]] == [False, True]


def test_delay_slows_every_reply(sim: SimThread, http: Http,
                                 connect: Callable[..., WsClient]) -> None:
    http.post("/admin/faults", {"delay": 0.3}, auth=False)
    started = time.monotonic()
    client = connect(sim.url + "/v2/iex")
    assert client.recv() == [{"T": "success", "msg": "connected"}]
    greeted = time.monotonic()
    client.send({"action": "auth", "key": "key", "secret": "secret"})
    client.recv()
    authed = time.monotonic()
    assert http.get("/v2/clock")[0] == 200
    answered = time.monotonic()
    assert greeted - started >= 0.3 and authed - greeted >= 0.3 and answered - authed >= 0.3
    assert http.admin("faults")["delay"] == 0.3  # the admin endpoint itself is not delayed


def test_bad_admin_requests_are_refused(sim: SimThread, http: Http) -> None:
    for path, body in (("/admin/faults", {"bogus": 1}), ("/admin/silence", {"seconds": -1}),
                       ("/admin/drop", {"code": 5}), ("/admin/price", {"symbol": "AAPL"}),
                       ("/admin/price", {"symbol": "aapl", "price": 1.0})):
        status, error, _ = http.post(path, body, auth=False)
        assert status == 400 and error["error"], path
