"""The gateway's loop in one process, with fake upstream connections and a real unix socket.

Each test drives the loop a turn at a time (`run_once`), so nothing depends on timing: a
client's request goes in, the fake broker's events are posted, and the test reads what the
client was sent.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tradeops.gateway.answers import ChangeAnswers, Verdict
from tradeops.gateway.health import liveness
from tradeops.gateway.pool import Pool
from tradeops.gateway.server import GatewayServer
from tradeops.gateway.upstream import UpstreamConfig, UpstreamEvent
from tradeops.protocol.tick import RecordRow


class FakeUpstream:
    """An upstream connection that records what the gateway asks of it."""

    def __init__(self, conn: int, config: UpstreamConfig,
                 on_event: Callable[[UpstreamEvent], None],
                 on_ticks: Callable[[int, list[RecordRow]], None]) -> None:
        self.connection, self.on_event = conn, on_event
        self.state, self.last_error = "connecting", ""
        self.last_tick = self.last_frame = 0.0
        self.reconnects = self.attempts = self.malformed = 0
        self.subscribed = False
        self.started = self.stopped = False
        self.changes: list[list[Any]] = []
        self.answers_per_change = 1

    def start(self) -> None:
        self.started = True

    def stop(self, timeout: float = 5.0) -> None:
        self.stopped = True

    def send_change(self, confirmed: Any, transitions: Any) -> int:
        if self.state != "live":
            return 0
        self.changes.append(list(transitions))
        return self.answers_per_change

    def event(self, kind: Any, **fields: Any) -> None:
        if kind == "ready":
            self.state = "live"
        self.on_event(UpstreamEvent(self.connection, kind, **fields))


def _no_session() -> Any:
    raise AssertionError("a fake upstream opens no session")


class Sink:
    def write(self, connection: int, ticks: list[RecordRow]) -> None:
        pass


class Harness:
    def __init__(self, path: Path) -> None:
        self.fakes: dict[int, FakeUpstream] = {}

        def factory(conn: int, config: UpstreamConfig, on_event: Any, on_ticks: Any
                    ) -> FakeUpstream:
            fake = self.fakes[conn] = FakeUpstream(conn, config, on_event, on_ticks)
            return fake

        config = UpstreamConfig(url="ws://unused", session=_no_session)
        self.server = GatewayServer(
            "sim", Pool("sim", 5, 3), lambda conn: config, Sink(), str(path),
            upstream_factory=factory,
        )
        self.server.bind()

    def client(self, name: str = "host") -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.server.socket_path)
        sock.settimeout(5)
        self.send(sock, {"op": "hello", "client": name, "pid": 1})
        assert self.read(sock, "hello")["ok"] is True
        return sock

    def send(self, sock: socket.socket, message: dict[str, Any]) -> None:
        sock.sendall(json.dumps(message).encode() + b"\n")

    def read(self, sock: socket.socket, op: str) -> dict[str, Any]:
        """Turn the loop until the client has a message with `op` (skipping others)."""
        buf = b""
        for _ in range(200):
            self.server.run_once(0.01)
            sock.setblocking(False)
            try:
                buf += sock.recv(65536)
            except BlockingIOError:
                pass
            finally:
                sock.setblocking(True)
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                message: dict[str, Any] = json.loads(line)
                if message.get("op") == op:
                    return message
        raise AssertionError(f"no {op!r} message reached the client")


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path / "gw.sock")
    yield harness
    harness.server.close()


def test_a_subscription_is_answered_once_the_broker_acknowledges(gw: Harness) -> None:
    host = gw.client()
    gw.send(host, {"op": "subscribe", "id": 1, "symbols": ["AAPL"], "mode": "quote"})
    gw.server.run_once(0.05)
    fake = gw.fakes[0]
    assert fake.started and fake.changes == []  # nothing goes out before authentication
    fake.event("ready")
    gw.server.run_once(0.01)
    assert len(fake.changes) == 1 and fake.subscribed
    fake.event("ack")
    reply = gw.read(host, "reply")
    assert reply["id"] == 1 and reply["results"] == {"AAPL": {"ok": True}}


def test_the_first_refusal_among_several_answers_decides(gw: Harness) -> None:
    host = gw.client()
    gw.send(host, {"op": "subscribe", "id": 7, "symbols": ["AAPL"], "mode": "quote"})
    gw.server.run_once(0.05)
    fake = gw.fakes[0]
    fake.answers_per_change = 2
    fake.event("ready")
    gw.server.run_once(0.01)
    fake.event("refused", code=405, message="symbol limit exceeded")
    fake.event("ack")
    reply = gw.read(host, "reply")
    assert reply["results"]["AAPL"]["ok"] is False
    assert "405" in reply["results"]["AAPL"]["reason"]
    assert gw.server.health()["symbols"] == 0


def test_a_client_that_leaves_releases_its_symbols(gw: Harness) -> None:
    host = gw.client()
    gw.send(host, {"op": "subscribe", "id": 1, "symbols": ["AAPL", "MSFT"], "mode": "trade"})
    gw.server.run_once(0.05)
    fake = gw.fakes[0]
    fake.event("ready")
    gw.server.run_once(0.01)
    fake.event("ack")
    gw.read(host, "reply")
    host.close()
    for _ in range(50):
        gw.server.run_once(0.01)
        if gw.server.health()["clients"] == 0:
            break
    assert gw.server.health()["clients"] == 0
    assert len(fake.changes) == 2  # the release went to the broker
    assert {(t.symbol, t.after) for t in fake.changes[1]} == {("AAPL", None), ("MSFT", None)}


def test_malformed_and_unknown_requests_get_errors_and_keep_the_client(gw: Harness) -> None:
    host = gw.client()
    host.sendall(b"{not json\n")
    assert "malformed request" in gw.read(host, "error")["error"]
    gw.send(host, {"op": "subscribe", "id": 2, "symbols": ["AAPL"], "mode": "bars"})
    assert "is not a mode: a base of trade, quote, depth" in gw.read(host, "reply")["error"]
    gw.send(host, {"op": "frobnicate", "id": 3})
    assert gw.read(host, "reply")["error"] == "unknown op 'frobnicate'"
    assert gw.server.health()["clients"] == 1


def test_health_goes_to_every_client_when_the_feed_goes_down(gw: Harness) -> None:
    host = gw.client()
    gw.send(host, {"op": "subscribe", "id": 1, "symbols": ["AAPL"], "mode": "trade"})
    gw.server.run_once(0.05)
    fake = gw.fakes[0]
    fake.event("ready")
    fake.event("ack")
    gw.read(host, "reply")
    fake.state, fake.last_error = "backoff", "closed: 1006"
    health = gw.read(host, "health")
    assert health == {"op": "health", "live": False, "last_tick": None,
                      "reason": "connection 0 is backoff: closed: 1006"}


def test_posted_replies_reach_their_client_on_the_loop(gw: Harness) -> None:
    host = gw.client()
    (client,) = list(gw.server.clients)
    gw.server.post_replies(lambda: [(client.sock, {"op": "order_update", "id": "x"})])
    assert gw.read(host, "order_update")["id"] == "x"


# -- the pure parts ---------------------------------------------------------------------------


def test_change_answers_wait_for_every_answer_and_keep_the_first_refusal() -> None:
    answers = ChangeAnswers()
    answers.expect(3, 3)
    assert answers.answer(3) is None
    assert answers.answer(3, (405, "too many")) is None
    assert answers.answer(3, (406, "later")) == Verdict(3, (405, "too many"))
    assert answers.answer(3) == Verdict(3)  # nothing due: an answer is its own verdict
    answers.expect(4, 2)
    answers.reset(4)  # re-authenticated: the old change is forgotten
    assert answers.answer(4) == Verdict(4)


class View:
    def __init__(self, state: str, last_tick: float = 0.0, last_frame: float = 0.0) -> None:
        self.state, self.last_tick, self.last_frame = state, last_tick, last_frame
        self.reconnects = self.attempts = self.malformed = 0
        self.last_error = ""


def test_liveness_ignores_idle_connections_and_names_a_stale_one() -> None:
    views = {0: View("live", last_tick=100.0), 1: View("backoff")}
    assert liveness(views, lambda c: 1 if c == 0 else 0, 30.0, now=120.0) == (True, "")
    assert liveness(views, lambda c: 1 if c == 0 else 0, 30.0, now=131.0) == (
        False, "connection 0: no tick for over 30s")


def test_only_market_data_opens_the_gate() -> None:
    # A connection that authenticates and acknowledges (frames, no ticks) is not live data.
    fresh = {0: View("live", last_tick=0.0, last_frame=119.0)}
    assert liveness(fresh, lambda c: 1, 30.0, now=120.0) == (
        False, "connection 0: no market data yet")
    # A reconnect refreshes the last frame, never the last tick.
    stale = {0: View("live", last_tick=10.0, last_frame=119.0)}
    assert liveness(stale, lambda c: 1, 30.0, now=120.0) == (
        False, "connection 0: no tick for over 30s")


def test_a_request_that_raises_is_answered_with_an_error_and_the_gateway_serves_on(
    gw: Harness,
) -> None:
    host = gw.client()
    gw.send(host, {"op": "hello", "client": "odd", "pid": "not a number"})
    assert gw.read(host, "hello")["ok"]  # a pid of another type is left out, not fatal
    real = gw.server.core.subscribe

    def broken(*args: Any) -> Any:  # the fault: a bug a request runs into
        raise KeyError("a bug")

    gw.server.core.subscribe = broken  # type: ignore[method-assign]
    gw.send(host, {"op": "subscribe", "id": 7, "symbols": ["AAPL"], "mode": "trade"})
    answer = gw.read(host, "reply")
    assert answer["id"] == 7 and answer["error"] == "internal error: KeyError: 'a bug'"
    gw.server.core.subscribe = real  # type: ignore[method-assign]
    gw.send(host, {"op": "status", "id": 8})
    assert gw.read(host, "reply")["ok"] and gw.server.health()["clients"] == 1


def test_an_event_that_raises_on_the_loop_is_lost_loudly_not_the_gateway(gw: Harness) -> None:
    host = gw.client()

    def broken() -> None:  # the fault: a broker answer a handler did not foresee
        raise ValueError("could not convert string to float: 'z'")

    gw.server.post(broken)
    gw.server.run_once(0.05)  # before: the exception ended the loop, and the gateway
    gw.send(host, {"op": "status", "id": 9})
    assert gw.read(host, "reply")["ok"]
