"""Alerts: what the detector names from successive snapshots, and how a sink delivers
(to a real local HTTP receiver): formats, the rate limit, retries, a failing sink."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.supervisor.receiver import Receiver
from tests.waiting import wait_for
from tradeops.supervisor.alerts import Alert, Detector, SinkWorker
from tradeops.topology.model import AlertSink


def row(name: str, role: str, state: str = "running", restarts: int = 0,
        reason: str = "") -> dict[str, Any]:
    return {"name": name, "role": role, "state": state, "pid": 1, "restarts": restarts,
            "started_at": 0.0, "reason": reason}


def gateway(live: bool, reason: str = "", rejected: int = 0, auto_cancels: int = 0
            ) -> dict[str, Any]:
    return {"live": live, "reason": reason, "market": "open",
            "orders": {"rejected": rejected, "auto_cancels": auto_cancels, "working": 0}}


def events(alerts: list[Alert]) -> list[str]:
    return [a.event for a in alerts]


def test_a_stale_feed_closes_the_gate_and_its_return_reopens_it() -> None:
    d = Detector()
    gw = [row("gateway-sim", "gateway")]
    assert d.step(gw, {"gateway-sim": gateway(True)}, 0.0) == []
    closed = d.step(gw, {"gateway-sim": gateway(False, "connection 0: no tick for over 1s")},
                    1.0)
    assert events(closed) == ["gate_closed", "feed_stale"]
    assert "no tick for over 1s" in closed[1].message and closed[1].subject == "sim"
    assert d.step(gw, {"gateway-sim": gateway(False, "still")}, 2.0) == []  # once
    assert events(d.step(gw, {"gateway-sim": gateway(True)}, 3.0)) == [
        "gate_reopened", "feed_recovered"]
    # A gate closed for another reason reopens without a feed_recovered.
    d.step(gw, {"gateway-sim": gateway(False, "connection 0 is backoff: auth")}, 4.0)
    assert events(d.step(gw, {"gateway-sim": gateway(True)}, 5.0)) == ["gate_reopened"]


def test_crashes_and_a_crash_loop() -> None:
    d = Detector()
    d.step([row("g", "host")], {}, 0.0)
    crash = d.step([row("g", "host", "backoff", 1, "killed by signal 9")], {}, 1.0)
    assert events(crash) == ["process_crash"] and "killed by signal 9" in crash[0].message
    loop = d.step([row("g", "host", "fatal", 1, "crash loop: 6 exits in 60s")], {}, 2.0)
    assert events(loop) == ["crash_loop"]


def test_auto_cancel_and_a_burst_of_rejections_once_per_window() -> None:
    d = Detector()
    gw = [row("gateway-sim", "gateway")]
    d.step(gw, {"gateway-sim": gateway(True)}, 0.0)
    assert events(d.step(gw, {"gateway-sim": gateway(True, auto_cancels=1)}, 1.0)) == [
        "auto_cancel"]
    assert d.step(gw, {"gateway-sim": gateway(True, rejected=4, auto_cancels=1)}, 2.0) == []
    burst = d.step(gw, {"gateway-sim": gateway(True, rejected=6, auto_cancels=1)}, 3.0)
    assert events(burst) == ["orders_rejected"] and "6 orders rejected" in burst[0].message
    assert d.step(gw, {"gateway-sim": gateway(True, rejected=20, auto_cancels=1)}, 4.0) == []


def test_a_disk_nearly_full_is_said_once_until_it_recovers() -> None:
    d = Detector()
    assert events(d.disk("/run", 100 * 2**20, 100 * 2**30)) == ["disk_full"]
    assert d.disk("/run", 90 * 2**20, 100 * 2**30) == []
    assert d.disk("/run", 50 * 2**30, 100 * 2**30) == []
    assert events(d.disk("/run", 1, 100 * 2**30)) == ["disk_full"]


def sink(url: str, **kw: Any) -> AlertSink:
    return AlertSink.model_validate({"webhook": url, **kw})


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_slack_format_and_the_rate_limit_counts_what_it_holds_back() -> None:
    lines: list[str] = []
    with Receiver() as receiver:
        worker = SinkWorker(0, sink(receiver.url, format="slack", rate_limit="2/min"), "desk",
                            lines.append)
        worker.start()
        for i in range(4):
            worker.offer(Alert("feed_stale", "sim", f"stale {i}"), now=float(i))
        worker.offer(Alert("feed_stale", "sim", "later"), now=61.0)  # a new window
        wait_for(lambda: len(receiver.bodies) == 3, timeout=10, what="three deliveries")
        worker.stop()
    texts = [b["text"] for b in receiver.bodies]
    assert texts[0] == "[tradeops desk] feed_stale: stale 0"
    assert "held back" not in texts[1]
    assert "later (and 2 more feed_stale alert(s) held back by the rate limit)" in texts[2]
    assert worker.status() | {"error": ""} == {"sink": "#1 webhook (slack)", "ok": True,
                                                "sent": 3, "failed": 0, "dropped": 0,
                                                "suppressed": 2, "error": ""}


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_a_failing_sink_retries_then_says_so_without_its_url() -> None:
    lines: list[str] = []
    with Receiver(status=500) as receiver:
        worker = SinkWorker(0, sink(receiver.url, retries=2), "desk", lines.append)
        worker.start()
        worker.offer(Alert("crash_loop", "g", "g is fatal"), now=0.0)
        wait_for(lambda: worker.failed == 1, timeout=20, what="the delivery given up")
        worker.stop()
    assert receiver.attempts == 3  # one try and two retries
    status = worker.status()
    assert status["ok"] is False and status["error"] == "HTTP 500 Internal Server Error"
    assert all("sekrit" not in line and "/hook" not in line for line in lines), lines
    assert "sekrit" not in json.dumps(status)


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_events_filter_and_a_full_queue_drops_instead_of_waiting() -> None:
    with Receiver() as receiver:
        worker = SinkWorker(0, sink(receiver.url, events=["crash_loop"]), "d", print,
                            queue_size=2)  # not started: nothing drains the queue
        worker.offer(Alert("feed_stale", "sim", "not wanted"), now=0.0)
        for i in range(4):
            worker.offer(Alert("crash_loop", f"g{i}", "fatal"), now=0.0)
    assert worker.dropped == 2 and worker._queue.qsize() == 2


@pytest.mark.e2e
def test_a_command_sink_gets_the_alert_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "alert.json"
    script = f"import sys, os; open({str(out)!r}, 'w').write(sys.stdin.read() + os.environ" \
             "['TRADEOPS_ALERT_EVENT'])"
    worker = SinkWorker(0, AlertSink(command=[sys.executable, "-c", script]), "d", print)
    worker.start()
    worker.offer(Alert("disk_full", "/run", "disk nearly full"), now=0.0)
    wait_for(lambda: worker.sent == 1, timeout=20, what="the command run")
    worker.stop()
    text = out.read_text()
    assert text.endswith("disk_full") and json.loads(text[:-len("disk_full")])["subject"] == "/run"
