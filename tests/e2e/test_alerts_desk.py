"""Alerts from a running desk to a local HTTP receiver: the exchange goes silent, the
receiver hears `feed_stale` and then `feed_recovered`, while a second sink that cannot be
reached fails on its own thread, shows in `status`, and holds nothing up."""

from __future__ import annotations

import json
import socket
import urllib.request
from typing import Any

import pytest

from tests.e2e.desk import Desk
from tests.supervisor.receiver import Receiver
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_silent_exchange_alerts_and_a_dead_sink_only_hurts_itself(
    make_desk: Any, tmp_path: Any
) -> None:
    with Receiver() as receiver:
        dead = f"http://127.0.0.1:{closed_port()}/nobody?key=hush"
        body = f"""
brokers:
  sim:
    adapter: sim
    market: {{rate: 20}}
strategies:
  watcher:
    class: tests.e2e.strategies:SeqRecorder
    broker: sim
    symbols: [AAPL]
    params: {{out: "{tmp_path / 'seq.txt'}"}}
"""
        desk: Desk = make_desk("alerting", body)
        desk.edit('  proxy: {listen: "127.0.0.1:0"}\n',
                  '  proxy: {listen: "127.0.0.1:0"}\n  stale_after: 1s\n  alerts:\n'
                  f'    - {{webhook: "{receiver.url}", events: [feed_stale, feed_recovered]}}\n'
                  f'    - {{webhook: "{dead}", retries: 1, timeout: 1s}}\n')
        desk.up()
        wait_for(lambda: (tmp_path / "seq.txt").exists()
                 and len((tmp_path / "seq.txt").read_text().split()) > 20, timeout=30,
                 what="ticks flowing")
        http = desk.proc("sim-sim")["detail"]["http"]
        urllib.request.urlopen(urllib.request.Request(
            f"{http}/admin/silence", data=json.dumps({"seconds": 3}).encode(), method="POST",
            headers={"Content-Type": "application/json"}), timeout=5).close()
        wait_for(lambda: [b["event"] for b in receiver.bodies] == ["feed_stale",
                                                                   "feed_recovered"],
                 timeout=40, what="feed_stale then feed_recovered at the receiver")
        stale = receiver.bodies[0]
        assert stale["desk"] == "alerting" and stale["subject"] == "sim"
        assert "no tick" in stale["message"]
        status = wait_for(lambda: (lambda out: out if "alert sink #2 webhook (json) failing: "
                                   "unreachable" in out else None)(
            desk.cli("status", "-f", str(desk.file)).stdout), timeout=30,
            what="the dead sink in status")
        assert "hush" not in status + json.dumps(desk.status_cli())
        seen = len((tmp_path / "seq.txt").read_text().split())
        wait_for(lambda: len((tmp_path / "seq.txt").read_text().split()) > seen + 20,
                 timeout=30, what="ticks flowing again beside the dead sink")
