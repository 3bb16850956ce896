"""Alerts: what went wrong on the desk, sent where someone will see it (`settings.alerts`).

Two halves, neither on the supervisor's loop:

- `Detector` (pure) compares successive snapshots of the desk (the loop's process table and
  the state files the children write) and names what changed: a feed gone stale or back,
  the safety gate closed or reopened, a process crashed or crash-looped, an auto-cancel
  fired, a burst of rejected orders, ticks the recorder lost, a disk nearly full.
- `SinkWorker` delivers to one sink on its own thread: a bounded queue (a full queue drops
  and counts), a rate limit per event kind (more are counted and mentioned in the next one),
  bounded retries with backoff. A failing sink is visible in `status` and the metrics; it
  never slows anything else.

`AlertService` ties them: one thread polls the snapshot four times a second.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradeops.process.child import read_state
from tradeops.topology.model import AlertSink

POLL_EVERY = 0.25
DISK_EVERY = 10.0
DISK_FREE_FRACTION = 0.05  # below 5 % free ...
DISK_FREE_BYTES = 512 * 1024 * 1024  # ... or 512 MiB, the disk is nearly full
REJECT_BURST = 5  # this many rejections ...
REJECT_WINDOW = 60.0  # ... within this many seconds is a burst
STALE_WORDS = ("no tick", "no market data", "silent")


@dataclass(frozen=True)
class Alert:
    event: str
    subject: str  # the process, broker or path it concerns
    message: str
    time: float = field(default_factory=time.time)
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self, desk: str) -> dict[str, Any]:
        return {"desk": desk, "event": self.event, "subject": self.subject,
                "message": self.message,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.time)),
                "details": self.details}


class Detector:
    """Successive snapshots in, alerts out. Pure: the caller reads the files and the clock."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, Any]] = {}
        self._stats: dict[str, dict[str, Any]] = {}
        self._stale: set[str] = set()  # brokers whose gate closed for want of data
        self._rejections: dict[str, deque[tuple[float, int]]] = {}
        self._burst_until: dict[str, float] = {}
        self._disk_low: set[str] = set()

    def step(self, rows: list[dict[str, Any]], stats: dict[str, dict[str, Any]],
             now: float) -> list[Alert]:
        alerts: list[Alert] = []
        for row in rows:
            name, before = row["name"], self._rows.get(row["name"])
            if before is not None:
                alerts += self._process(row, before)
            s, was = stats.get(name) or {}, self._stats.get(name)
            if s and was is not None:
                if row["role"] == "gateway":
                    alerts += self._gateway(name.removeprefix("gateway-"), s, was, now)
                elif row["role"] == "recorder":
                    alerts += _recorder_losses(name, s, was)
            if s:
                self._stats[name] = s
            self._rows[name] = row
        return alerts

    def _process(self, row: dict[str, Any], before: dict[str, Any]) -> list[Alert]:
        name, alerts = row["name"], []
        if row["restarts"] > before["restarts"] and row["state"] != "fatal":
            why = row.get("reason") or "it exited"
            alerts.append(Alert("process_crash", name,
                                f"{name} crashed ({why}); restart {row['restarts']}",
                                details={"restarts": row["restarts"], "reason": why}))
        if row["state"] == "fatal" and before["state"] != "fatal":
            why = row.get("reason") or "crash loop"
            alerts.append(Alert("crash_loop", name, f"{name} is fatal: {why}",
                                details={"reason": why}))
        return alerts

    def _gateway(self, broker: str, s: dict[str, Any], was: dict[str, Any], now: float
                 ) -> list[Alert]:
        alerts: list[Alert] = []
        market_open = s.get("market", "open") == "open"
        if was.get("live") and not s.get("live") and market_open:
            reason = str(s.get("reason", ""))
            alerts.append(Alert("gate_closed", broker,
                                f"broker {broker}: not safe to trade: {reason}",
                                details={"reason": reason}))
            if any(w in reason for w in STALE_WORDS):
                self._stale.add(broker)
                alerts.append(Alert("feed_stale", broker, f"broker {broker}: feed stale: "
                                    f"{reason}", details={"reason": reason}))
        elif not was.get("live") and s.get("live"):
            alerts.append(Alert("gate_reopened", broker, f"broker {broker}: safe to trade"))
            if broker in self._stale:
                self._stale.discard(broker)
                alerts.append(Alert("feed_recovered", broker, f"broker {broker}: feed live"))
        orders, before = s.get("orders") or {}, was.get("orders") or {}
        fired = int(orders.get("auto_cancels", 0)) - int(before.get("auto_cancels", 0))
        if fired > 0:
            alerts.append(Alert("auto_cancel", broker,
                                f"broker {broker}: auto-cancel fired {fired} time(s); "
                                f"{orders.get('working', 0)} order(s) still working",
                                details={"fired": fired}))
        history = self._rejections.setdefault(broker, deque())
        history.append((now, int(orders.get("rejected", 0))))
        while history and history[0][0] < now - REJECT_WINDOW:
            history.popleft()
        burst = history[-1][1] - history[0][1]
        if burst >= REJECT_BURST and now >= self._burst_until.get(broker, 0.0):
            self._burst_until[broker] = now + REJECT_WINDOW
            alerts.append(Alert("orders_rejected", broker,
                                f"broker {broker}: {burst} orders rejected in the last "
                                f"{REJECT_WINDOW:g}s; `tradeops orders` shows why",
                                details={"rejected": burst}))
        return alerts

    def disk(self, path: str, free: int, total: int) -> list[Alert]:
        low = total > 0 and (free < total * DISK_FREE_FRACTION or free < DISK_FREE_BYTES)
        if low and path not in self._disk_low:
            self._disk_low.add(path)
            return [Alert("disk_full", path, f"disk nearly full at {path}: "
                          f"{free / 2**20:.0f} MiB free of {total / 2**30:.1f} GiB",
                          details={"free_bytes": free, "total_bytes": total})]
        if not low:
            self._disk_low.discard(path)
        return []


def _recorder_losses(name: str, s: dict[str, Any], was: dict[str, Any]) -> list[Alert]:
    alerts = []
    before = was.get("brokers") or {}
    for broker, figures in (s.get("brokers") or {}).items():
        lost = int(figures.get("lost", 0)) - int((before.get(broker) or {}).get("lost", 0))
        if lost > 0:
            alerts.append(Alert("recorder_lost", name, f"{name} lost {lost} tick(s) of broker "
                                f"{broker} (lapped by the writer)",
                                details={"broker": broker, "lost": lost,
                                         "total": figures["lost"]}))
    return alerts


def sink_label(index: int, sink: AlertSink) -> str:
    """How a sink is named in status and metrics: never its URL (which holds secrets)."""
    kind = f"webhook ({sink.format})" if sink.webhook is not None else "command"
    return f"#{index + 1} {kind}"


def render(alert: Alert, sink: AlertSink, desk: str, suppressed: int) -> bytes:
    text = f"[tradeops {desk}] {alert.event}: {alert.message}"
    if suppressed:
        text += f" (and {suppressed} more {alert.event} alert(s) held back by the rate limit)"
    if sink.format == "slack":
        return json.dumps({"text": text}).encode()
    if sink.format == "discord":
        return json.dumps({"content": text}).encode()
    if sink.format == "telegram":
        return json.dumps({"chat_id": sink.chat_id, "text": text}).encode()
    return json.dumps(alert.to_json(desk) | {"suppressed": suppressed, "text": text}).encode()


class SinkWorker:
    """One sink's delivery thread."""

    def __init__(self, index: int, sink: AlertSink, desk: str,
                 console: Callable[[str], None], queue_size: int = 100) -> None:
        self.sink, self.desk, self.label = sink, desk, sink_label(index, sink)
        self.console = console
        self._queue: queue.Queue[tuple[Alert, int] | None] = queue.Queue(queue_size)
        self._sent_at: dict[str, deque[float]] = {}
        self._held: dict[str, int] = {}
        self.sent = self.failed = self.dropped = self.suppressed = 0
        self.last_error = ""
        self._thread = threading.Thread(target=self._run, name=f"alerts{index}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wants(self, alert: Alert) -> bool:
        return self.sink.events is None or alert.event in self.sink.events

    def offer(self, alert: Alert, now: float) -> None:
        """Queue `alert` unless the sink does not want it, its kind is over the rate limit
        (counted, and mentioned in the next one that goes), or the queue is full."""
        if not self.wants(alert):
            return
        rate = self.sink.rate_limit
        times = self._sent_at.setdefault(alert.event, deque())
        while times and times[0] <= now - rate.seconds:
            times.popleft()
        if len(times) >= rate.requests:
            self._held[alert.event] = self._held.get(alert.event, 0) + 1
            self.suppressed += 1
            return
        times.append(now)
        try:
            self._queue.put_nowait((alert, self._held.pop(alert.event, 0)))
        except queue.Full:
            self.dropped += 1

    def stop(self) -> None:
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(self.sink.timeout + 1)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            alert, held = item
            body = render(alert, self.sink, self.desk, held)
            for attempt in range(self.sink.retries + 1):
                error = self._deliver(alert, body)
                if not error:
                    self.sent += 1
                    self.last_error = ""
                    break
                self.last_error = error
                if attempt < self.sink.retries:
                    time.sleep(min(0.5 * 2**attempt, 5.0))
            else:
                self.failed += 1
                self.console(f"supervisor | WARNING | alert sink {self.label}: could not "
                             f"deliver {alert.event}: {self.last_error}")

    def _deliver(self, alert: Alert, body: bytes) -> str:
        """'' when delivered, else why not (never naming the URL)."""
        sink = self.sink
        try:
            if sink.webhook is not None:
                url = sink.webhook.get_secret_value()
                request = urllib.request.Request(url, data=body, method="POST",
                                                 headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=sink.timeout) as response:
                    response.read()
                return ""
            assert sink.command is not None
            env = {**os.environ, "TRADEOPS_ALERT_EVENT": alert.event,
                   "TRADEOPS_ALERT_SUBJECT": alert.subject,
                   "TRADEOPS_ALERT_MESSAGE": alert.message}
            done = subprocess.run(sink.command, input=body, capture_output=True,
                                  timeout=sink.timeout, env=env, check=False)
            if done.returncode != 0:
                tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
                return f"command exited with status {done.returncode}: {tail[0][:200]}"
            return ""
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code} {exc.reason}"
        except urllib.error.URLError as exc:
            return f"unreachable: {exc.reason}"
        except subprocess.TimeoutExpired:
            return f"no answer within {sink.timeout:g}s"
        except (OSError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}".replace(
                sink.webhook.get_secret_value() if sink.webhook else "\0", "<webhook>")

    def status(self) -> dict[str, Any]:
        return {"sink": self.label, "ok": not self.last_error, "sent": self.sent,
                "failed": self.failed, "dropped": self.dropped, "suppressed": self.suppressed,
                "error": self.last_error}


class AlertService:
    """Polls the desk's snapshot and feeds every sink, on a thread of its own."""

    def __init__(self, desk: str, run_dir: Path, sinks: list[AlertSink],
                 table: Callable[[], list[dict[str, Any]]], disks: Callable[[], list[Path]],
                 console: Callable[[str], None]) -> None:
        self.desk, self.run_dir, self.table, self.disks = desk, run_dir, table, disks
        self.console = console
        self.workers = [SinkWorker(i, s, desk, console) for i, s in enumerate(sinks)]
        self.detector = Detector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
        self._disk_checked = 0.0

    def start(self) -> None:
        for w in self.workers:
            w.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for w in self.workers:
            w.stop()

    def _run(self) -> None:
        while not self._stop.wait(POLL_EVERY):
            try:
                self.poll(time.monotonic())
            except Exception as exc:  # alerts must never stop the supervisor
                self.console(f"supervisor | ERROR   | alerts: polling the desk failed: {exc!r}")

    def poll(self, now: float) -> None:
        rows = self.table()
        stats = {r["name"]: read_state(self.run_dir, r["name"]) for r in rows if r["pid"]}
        alerts = self.detector.step(rows, stats, now)
        if now - self._disk_checked >= DISK_EVERY:
            self._disk_checked = now
            for path in self.disks():
                try:
                    usage = shutil.disk_usage(path)
                except OSError:
                    continue
                alerts += self.detector.disk(str(path), usage.free, usage.total)
        for alert in alerts:
            self.console(f"supervisor | ALERT   | {alert.event}: {alert.message}")
            for w in self.workers:
                w.offer(alert, now)

    def status(self) -> list[dict[str, Any]]:
        return [w.status() for w in self.workers]
