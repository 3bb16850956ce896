"""Dialects read no clock, pid or random source of their own: given fixed ones, fixed output.

Each takes what varies as an argument (with the real source as its default, for the roles),
so these tests compare whole messages rather than their shapes.
"""

from __future__ import annotations

import json

from tradeops.protocol.alltick import AllTickSession
from tradeops.protocol.alpaca_trading import owner_of, routing_id
from tradeops.protocol.downstream import SessionConfig
from tradeops.protocol.native import NativeSession
from tradeops.protocol.openalgo import OpenAlgoSession

CONFIG = SessionConfig(brokers=("sim",))
NOW_NS = 1_714_570_200_123_456_789


def test_native_pong_reports_the_clock_it_was_given() -> None:
    session = NativeSession(CONFIG, 0.0, clock_ns=lambda: NOW_NS)
    session.receive('{"op": "hello", "v": 1}', 0.0)
    session.take()
    session.receive('{"op": "ping", "id": 3}', 0.0)
    ((payload, text),) = session.take()
    assert text and json.loads(payload) == {"op": "pong", "id": 3, "time_ns": NOW_NS}


def test_openalgo_pong_reports_the_clock_it_was_given_in_ms() -> None:
    session = OpenAlgoSession(CONFIG, 0.0, clock_ns=lambda: NOW_NS)
    session.receive('{"action": "authenticate", "api_key": "x"}', 0.0)
    session.take()
    session.receive('{"action": "ping", "request_id": "r1"}', 0.0)
    ((payload, _),) = session.take()
    assert json.loads(payload) == {"type": "pong", "status": "success",
                                   "server_timestamp": NOW_NS // 1_000_000, "request_id": "r1"}


def test_routing_ids_from_fixed_time_pid_and_serial_are_fixed() -> None:
    cid = routing_id("momentum", now_ns=36**3 * 1000, pid=35, serial=1)
    assert cid == "t1.momentum.1000z1"
    assert routing_id("momentum", now_ns=36**3 * 1000, pid=35, serial=1) == cid
    assert owner_of(cid) == "momentum"


def test_alltick_requests_carry_the_trace_ids_given() -> None:
    traces = iter(["trace-1", "trace-2"])
    session = AllTickSession("t", trace=lambda: next(traces))
    first, second = (json.loads(session.heartbeat() or "") for _ in range(2))
    assert (first["trace"], first["seq_id"]) == ("trace-1", 1)
    assert (second["trace"], second["seq_id"]) == ("trace-2", 2)
