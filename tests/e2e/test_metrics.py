"""Prometheus metrics of a running desk, scraped over HTTP: the series are there, and they
move with known events (a kill -9 counts a restart; a silent exchange turns `live` to 0)."""

from __future__ import annotations

import json
import os
import re
import signal
import urllib.error
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO
from tests.e2e.desk import Desk
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

BODY = """
brokers:
  sim:
    adapter: sim
    market: {rate: 20}
strategies:
  watcher:
    class: tests.e2e.strategies:SeqRecorder
    broker: sim
    symbols: [AAPL, MSFT]
    params: {out: OUT}
"""
TOKEN = "s3cret-scrape"
# Families that have no sample until something happens (no halt, no mismatch, no order yet).
FAMILIES_WITHOUT_SAMPLES = ("tradeops_halted", "tradeops_account_positions_mismatch",
                            "tradeops_orders_working", "tradeops_orders_rejected_total",
                            "tradeops_strategy_position", "tradeops_alert_sink_up")


def scrape(url: str, token: str | None = TOKEN) -> dict[tuple[str, tuple[tuple[str, str], ...]],
                                                          float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        text = r.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_metrics_follow_the_desk(make_desk: Any, tmp_path: Any) -> None:
    desk: Desk = make_desk("metrics", BODY.replace("OUT", str(tmp_path / "w.jsonl")))
    desk.edit('  proxy: {listen: "127.0.0.1:0"}\n',
              '  proxy: {listen: "127.0.0.1:0"}\n  stale_after: 1s\n'
              f'  metrics: {{listen: "127.0.0.1:0", token: {TOKEN}}}\n')
    desk.up()
    url = desk.status()["metrics"]["url"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        scrape(url, token=None)
    assert refused.value.code == 401

    def live() -> dict[Any, float] | None:
        samples = scrape(url)
        ok = value(samples, "tradeops_broker_live", broker="sim") == 1.0 and (
            value(samples, "tradeops_reader_ticks_total", process="watcher") or 0) > 0 and (
            value(samples, "tradeops_broker_symbols", broker="sim") == 2.0)
        return samples if ok else None

    samples = wait_for(live, timeout=30, what="a live feed and ticks read in the metrics")
    assert value(samples, "tradeops_process_up", process="gateway-sim", role="gateway") == 1.0
    assert value(samples, "tradeops_process_restarts_total", process="watcher") == 0.0
    assert value(samples, "tradeops_broker_connections", broker="sim") == 1.0
    assert value(samples, "tradeops_broker_malformed_messages_total", broker="sim") == 0.0
    assert (value(samples, "tradeops_process_resident_memory_bytes", process="watcher")
            or 0) > 1e6
    assert value(samples, "tradeops_strategy_running", strategy="watcher",
                 process="watcher") == 1.0
    # The shipped Grafana dashboard asks only for series the desk serves.
    dashboard = (REPO / "examples" / "grafana" / "tradeops-dashboard.json").read_text()
    served = {name for name, _ in scrape(url)} | set(FAMILIES_WITHOUT_SAMPLES)
    asked = set(re.findall(r"tradeops_[a-z_]+", dashboard)) - {"tradeops_desk"}
    assert asked <= served, asked - served

    os.kill(desk.proc("watcher")["pid"], signal.SIGKILL)
    wait_for(lambda: value(scrape(url), "tradeops_process_restarts_total",
                           process="watcher") == 1.0, timeout=30, what="the restart counted")

    http = desk.proc("sim-sim")["detail"]["http"]
    urllib.request.urlopen(urllib.request.Request(
        f"{http}/admin/silence", data=json.dumps({"seconds": 30}).encode(), method="POST",
        headers={"Content-Type": "application/json"}), timeout=5).close()
    wait_for(lambda: value(scrape(url), "tradeops_broker_live", broker="sim") == 0.0,
             timeout=30, what="live 0 once the exchange went silent")
    text = json.dumps(desk.status_cli())
    assert TOKEN not in text  # the token is a secret: never in status
