"""Off-hours on a real desk: the sim's market is closed, so the gateway's clock (the sim's
/v2/clock) says so; the gate says "market closed until ...", and the quiet connection is
kept rather than reconnected every silence_after."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.desk import Desk
from tests.e2e.test_desk import recorder
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def closed_window() -> str:
    """A one-minute weekday window twelve hours away: closed now, whatever the day."""
    start = datetime.now(UTC) + timedelta(hours=12)
    return f"{start:%H}:00-{start:%H}:01 UTC"


def test_off_hours_the_gate_says_closed_and_the_connection_is_kept(
    make_desk: object, tmp_path: Path
) -> None:
    body = f"""
brokers:
  sim:
    adapter: sim
    silence_after: 1s
    market: {{seed: 3, rate: 40, hours: "{closed_window()}"}}
strategies:
""" + recorder("rec", tmp_path)
    desk: Desk = make_desk("e2ehours", body)  # type: ignore[operator]
    desk.file.write_text(
        desk.file.read_text().replace("settings:\n", "settings:\n  stale_after: 1s\n", 1))
    desk.up()

    def gateway() -> dict[str, object]:
        return desk.proc("gateway-sim")["stats"] or {}

    wait_for(lambda: str(gateway().get("market", "")).startswith("market closed until"),
             timeout=30, what="the gateway to learn the market is closed")
    assert gateway()["live"] is False
    assert str(gateway()["reason"]).startswith("market closed until")
    end = time.monotonic() + 3 * 1.0  # three times silence_after: no reconnect off-hours
    while time.monotonic() < end:
        conns = gateway().get("connections") or []
        assert all(c["reconnects"] == 0 for c in conns), conns  # type: ignore[index]
        time.sleep(0.2)
    status = desk.cli("status", "-f", str(desk.file))
    assert "market closed until" in status.stdout
    assert status.returncode == 0, status.stdout  # off-hours is not an outage
