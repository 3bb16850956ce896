"""Prometheus metrics of a running desk, served by the supervisor (`settings.metrics`).

A scrape never touches the supervisor's loop: the loop publishes a small table of its
processes (name, role, state, pid, restarts, start time; `Supervisor.table`, replaced whole,
never mutated), and the scrape, on the HTTP server's own thread, reads that table and what
each process already publishes in its state file (the figures `tradeops status` shows).

Names follow Prometheus conventions: `tradeops_` prefix, base units (seconds, bytes),
counters end in `_total`, no label of high cardinality (no order ids; symbols only for
positions, which a strategy holds few of).
"""

from __future__ import annotations

import hmac
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tradeops.process.child import read_state
from tradeops.supervisor.procstats import cpu_seconds, rss_bytes

STATES = ("starting", "running", "backoff", "stopping", "stopped", "fatal", "exited")

Table = list[dict[str, Any]]


class DeskCollector(Collector):
    def __init__(self, desk: str, run_dir: Path, table: Callable[[], Table],
                 alerts: Callable[[], Table] = list) -> None:
        self.desk, self.run_dir, self.table, self.alerts = desk, run_dir, table, alerts

    def collect(self) -> Iterator[Metric]:
        rows = self.table()
        stats = {r["name"]: read_state(self.run_dir, r["name"]) if r["pid"] else {}
                 for r in rows}
        yield from _processes(rows)
        yield from _brokers(rows, stats)
        yield from _readers(rows, stats)
        yield from _orders(rows, stats)
        yield from _proxy(rows, stats)
        yield from _recorders(rows, stats)
        yield from _alert_sinks(self.alerts())


def _alert_sinks(sinks: Table) -> Iterator[Metric]:
    up = GaugeMetricFamily("tradeops_alert_sink_up", "0 while the sink's last delivery failed",
                           labels=["sink"])
    sent = CounterMetricFamily("tradeops_alerts_sent", "alerts delivered", labels=["sink"])
    failed = CounterMetricFamily("tradeops_alerts_failed", "alerts given up after retries",
                                 labels=["sink"])
    held = CounterMetricFamily("tradeops_alerts_suppressed", "alerts held back by the rate "
                               "limit", labels=["sink"])
    for s in sinks:
        up.add_metric([s["sink"]], 1.0 if s["ok"] else 0.0)
        sent.add_metric([s["sink"]], float(s["sent"]))
        failed.add_metric([s["sink"]], float(s["failed"]))
        held.add_metric([s["sink"]], float(s["suppressed"]))
    yield from (up, sent, failed, held)


def _processes(rows: Table) -> Iterator[Metric]:
    up = GaugeMetricFamily("tradeops_process_up", "1 when the process is running",
                           labels=["process", "role"])
    state = GaugeMetricFamily("tradeops_process_state", "1 for the process's current state",
                              labels=["process", "state"])
    restarts = CounterMetricFamily("tradeops_process_restarts", "restarts by the supervisor",
                                   labels=["process"])
    cpu = CounterMetricFamily("tradeops_process_cpu_seconds", "CPU time of the process",
                              labels=["process"])
    rss = GaugeMetricFamily("tradeops_process_resident_memory_bytes", "resident memory",
                            labels=["process"])
    uptime = GaugeMetricFamily("tradeops_process_uptime_seconds", "since the process started",
                               labels=["process"])
    now = time.monotonic()
    for r in rows:
        name = r["name"]
        up.add_metric([name, r["role"]], 1.0 if r["state"] == "running" else 0.0)
        for s in STATES:
            state.add_metric([name, s], 1.0 if r["state"] == s else 0.0)
        restarts.add_metric([name], float(r["restarts"]))
        if r["pid"]:
            used, memory = cpu_seconds(r["pid"]), rss_bytes(r["pid"])
            if used is not None:
                cpu.add_metric([name], used)
            if memory is not None:
                rss.add_metric([name], float(memory))
            if r.get("started_at"):
                uptime.add_metric([name], max(0.0, now - r["started_at"]))
    yield from (up, state, restarts, cpu, rss, uptime)


def _of_role(rows: Table, stats: dict[str, dict[str, Any]], role: str
             ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for r in rows:
        if r["role"] == role and stats.get(r["name"]):
            yield r, stats[r["name"]]


def _brokers(rows: Table, stats: dict[str, dict[str, Any]]) -> Iterator[Metric]:
    labels = ["broker"]
    live = GaugeMetricFamily("tradeops_broker_live", "1 when the feed is live (safe to trade)",
                             labels=labels)
    conns = GaugeMetricFamily("tradeops_broker_connections", "upstream websockets",
                              labels=labels)
    symbols = GaugeMetricFamily("tradeops_broker_symbols", "symbols subscribed upstream",
                                labels=labels)
    ticks = CounterMetricFamily("tradeops_broker_ticks", "ticks written to the bus",
                                labels=labels)
    rate = GaugeMetricFamily("tradeops_broker_ticks_per_second", "recent tick rate",
                             labels=labels)
    age = GaugeMetricFamily("tradeops_broker_last_tick_age_seconds",
                            "since the newest tick on any connection", labels=labels)
    reconnects = CounterMetricFamily("tradeops_broker_reconnects", "upstream reconnects",
                                     labels=labels)
    malformed = CounterMetricFamily("tradeops_broker_malformed_messages",
                                    "market messages dropped for a missing or mistyped field",
                                    labels=labels)  # fmt: skip
    backfill = CounterMetricFamily("tradeops_broker_backfilled_ticks",
                                   "ticks fetched after an outage", labels=labels)
    for r, s in _of_role(rows, stats, "gateway"):
        b = [r["name"].removeprefix("gateway-")]
        connections = s.get("connections") or []
        live.add_metric(b, 1.0 if s.get("live") else 0.0)
        conns.add_metric(b, float(len(connections)))
        symbols.add_metric(b, float(s.get("symbols", 0)))
        ticks.add_metric(b, float(s.get("ticks", 0)))
        rate.add_metric(b, float(s.get("ticks_per_s", 0)))
        ages = [c["last_tick_age"] for c in connections if c.get("last_tick_age") is not None]
        if ages:
            age.add_metric(b, float(min(ages)))
        reconnects.add_metric(b, float(sum(c.get("reconnects", 0) for c in connections)))
        malformed.add_metric(b, float(sum(c.get("malformed", 0) for c in connections)))
        backfill.add_metric(b, float((s.get("backfill") or {}).get("trades", 0)))
    yield from (live, conns, symbols, ticks, rate, age, reconnects, malformed, backfill)


def _readers(rows: Table, stats: dict[str, dict[str, Any]]) -> Iterator[Metric]:
    labels = ["process"]
    lag = GaugeMetricFamily("tradeops_reader_lag_seconds", "tick age at dispatch",
                            labels=labels)
    lost = CounterMetricFamily("tradeops_reader_lost_ticks", "ticks lapped by the writer",
                               labels=labels)
    ticks = CounterMetricFamily("tradeops_reader_ticks", "ticks read", labels=labels)
    rate = GaugeMetricFamily("tradeops_reader_ticks_per_second", "recent read rate",
                             labels=labels)
    errors = CounterMetricFamily("tradeops_strategy_errors", "callbacks that raised",
                                 labels=["process"])
    running = GaugeMetricFamily("tradeops_strategy_running", "1 while the strategy runs",
                                labels=["strategy", "process"])
    for r, s in _of_role(rows, stats, "host"):
        p = [r["name"]]
        lag.add_metric(p, float(s.get("lag_ms", 0)) / 1000.0)
        lost.add_metric(p, float(s.get("lost", 0)))
        ticks.add_metric(p, float(s.get("ticks", 0)))
        rate.add_metric(p, float(s.get("ticks_per_s", 0)))
        errors.add_metric(p, float(s.get("errors", 0)))
        for strategy, state in (s.get("strategies") or {}).items():
            ok = state.get("running", True) and not state.get("stuck")
            running.add_metric([strategy, r["name"]], 1.0 if ok else 0.0)
    yield from (lag, lost, ticks, rate, errors, running)


def _orders(rows: Table, stats: dict[str, dict[str, Any]]) -> Iterator[Metric]:
    working = GaugeMetricFamily("tradeops_orders_working", "working orders",
                                labels=["broker", "strategy"])
    rejected = CounterMetricFamily("tradeops_orders_rejected", "orders rejected, by cause",
                                   labels=["broker", "strategy", "cause"])
    queued = GaugeMetricFamily("tradeops_orders_queued", "requests waiting for the rate limit",
                               labels=["broker"])
    throttled = CounterMetricFamily("tradeops_orders_throttled", "429 answers from the broker",
                                    labels=["broker"])
    position = GaugeMetricFamily("tradeops_strategy_position", "signed position",
                                 labels=["broker", "strategy", "symbol"])
    mismatch = GaugeMetricFamily("tradeops_account_positions_mismatch",
                                 "1 while an account's positions differ from the broker's",
                                 labels=["broker", "account"])
    halted = GaugeMetricFamily("tradeops_halted", "1 while a halt is in force",
                               labels=["broker", "scope", "target"])
    for r, s in _of_role(rows, stats, "gateway"):
        broker = r["name"].removeprefix("gateway-")
        orders = s.get("orders") or {}
        if not orders:
            continue
        for strategy, n in (orders.get("working_by_strategy") or {}).items():
            working.add_metric([broker, strategy], float(n))
        for key, n in (orders.get("rejected_by") or {}).items():
            strategy, cause = str(key).split(":", 1)
            rejected.add_metric([broker, strategy, cause], float(n))
        queued.add_metric([broker], float(orders.get("queued", 0)))
        throttled.add_metric([broker], float(orders.get("throttled", 0)))
        for key, qty in (orders.get("positions") or {}).items():
            strategy, symbol = str(key).split(":", 1)
            position.add_metric([broker, strategy, symbol], float(qty))
        for account in orders.get("positions_mismatch") or []:
            mismatch.add_metric([broker, account], 1.0)
        for scope in orders.get("halted") or {}:
            kind, target = str(scope).split(":", 1)
            halted.add_metric([broker, kind, target], 1.0)
    yield from (working, rejected, queued, throttled, position, mismatch, halted)


def _proxy(rows: Table, stats: dict[str, dict[str, Any]]) -> Iterator[Metric]:
    clients = GaugeMetricFamily("tradeops_proxy_clients", "websocket clients connected")
    out = GaugeMetricFamily("tradeops_proxy_messages_per_second", "messages sent per second")
    sent = CounterMetricFamily("tradeops_proxy_messages_sent", "messages sent to clients")
    dropped = CounterMetricFamily("tradeops_proxy_slow_drops", "clients cut off as too slow")
    for _, s in _of_role(rows, stats, "proxy"):
        clients.add_metric([], float(s.get("clients", 0)))
        out.add_metric([], float(s.get("messages_per_s", 0)))
        sent.add_metric([], float(s.get("messages_out", 0)))
        dropped.add_metric([], float(s.get("dropped_slow", 0)))
    yield from (clients, out, sent, dropped)


def _recorders(rows: Table, stats: dict[str, dict[str, Any]]) -> Iterator[Metric]:
    labels = ["process", "broker"]
    written = CounterMetricFamily("tradeops_recorder_rows", "ticks written", labels=labels)
    size = CounterMetricFamily("tradeops_recorder_bytes", "bytes in closed files",
                               labels=labels)
    lost = CounterMetricFamily("tradeops_recorder_lost_ticks", "ticks lost (lapped)",
                               labels=labels)
    for r, s in _of_role(rows, stats, "recorder"):
        for broker, b in (s.get("brokers") or {}).items():
            key = [r["name"], broker]
            written.add_metric(key, float(b.get("rows", 0)))
            size.add_metric(key, float(b.get("bytes", 0)))
            lost.add_metric(key, float(b.get("lost", 0)))
    yield from (written, size, lost)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class MetricsServer:
    """The `/metrics` endpoint on its own thread: `listen` (HOST, PORT); with a token,
    requests without `Authorization: Bearer TOKEN` get 401."""

    def __init__(self, host: str, port: int, token: str | None, collector: Collector) -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)
        app = make_wsgi_app(registry)
        expected = f"Bearer {token}".encode() if token else None

        def guarded(environ: dict[str, Any], start_response: Any) -> Any:
            given = str(environ.get("HTTP_AUTHORIZATION", "")).encode()
            if expected is not None and not hmac.compare_digest(given, expected):
                start_response("401 Unauthorized", [("Content-Type", "text/plain"),
                                                    ("WWW-Authenticate", "Bearer")])
                return [b"a bearer token is required (settings.metrics.token)\n"]
            return app(environ, start_response)

        from prometheus_client.exposition import ThreadingWSGIServer

        class Server(ThreadingWSGIServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        self._server = make_server(host, port, guarded, Server,
                                   handler_class=_QuietHandler)
        self.port = self._server.server_port
        self.url = f"http://{host if ':' not in host else f'[{host}]'}:{self.port}/metrics"
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
