"""Backfill on a real desk: a reconnect forced by the sim's silence yields, marked as
backfill, exactly the trades the sim made in the outage and never sent."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.desk import Desk
from tests.waiting import wait_for
from tradeops.protocol.alpaca import to_ns
from tradeops.protocol.codec import rfc3339_ns
from tradeops.protocol.tick import FLAG_BACKFILL

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
KEYS = {"APCA-API-KEY-ID": "bk", "APCA-API-SECRET-KEY": "bs"}


def lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def test_a_reconnect_backfills_the_outage_exactly(make_desk: object, tmp_path: Path) -> None:
    out = tmp_path / "trail.txt"
    desk: Desk = make_desk("e2ebackfill", f"""
brokers:
  sim:
    adapter: sim
    credentials: {{key: bk, secret: bs}}
    silence_after: 1s
    backfill: on
    market: {{seed: 4, rate: 40}}
strategies:
  trail:
    class: tests.e2e.strategies:FlagTrail
    broker: sim
    symbols: [AAPL, MSFT]
    mode: quote
    params: {{out: "{out}"}}
""")  # type: ignore[operator]
    desk.up()
    wait_for(lambda: len(lines(out)) > 40, what="live ticks")
    http = desk.proc("sim-sim")["detail"]["http"]
    silence = urllib.request.Request(f"{http}/admin/silence", method="POST",
                                     data=json.dumps({"seconds": 2.5}).encode())
    urllib.request.urlopen(silence, timeout=10).close()
    stats = wait_for(lambda: (desk.proc("gateway-sim")["stats"].get("backfill") or {})
                     .get("outages"), timeout=30, what="the outage backfilled")
    assert stats == 1
    seen = lines(out)
    live = [r for r in seen if int(r[0]) == 0]
    filled = [r for r in seen if int(r[0]) & FLAG_BACKFILL]
    assert filled, "no backfilled trade reached the strategy"
    assert {r[2] for r in filled} == {"trade"}
    # The outage, as the strategy saw it: the one long pause between two live ticks.
    times = [int(r[3]) for r in live]
    gap = max(range(1, len(times)), key=lambda i: times[i] - times[i - 1])
    after, before = times[gap - 1], times[gap]
    assert before - after > 1e9
    query = urllib.parse.urlencode({"symbols": "AAPL,MSFT", "start": rfc3339_ns(after + 1),
                                    "end": rfc3339_ns(before), "limit": 10000})
    request = urllib.request.Request(f"{http}/v2/stocks/trades?{query}", headers=KEYS)
    with urllib.request.urlopen(request, timeout=10) as response:
        made = json.load(response)["trades"]
    expected = sorted((symbol, to_ns(t["t"]), t["p"], t["s"]) for symbol, trades in made.items()
                      for t in trades)
    assert expected, "the sim made no trade during the outage"
    got = sorted((r[1], int(r[3]), float(r[4]), float(r[5])) for r in filled)
    assert got == expected
    assert all(after < int(r[3]) < before for r in filled)
    text = desk.cli("status", "--file", str(desk.file)).stdout
    assert f"backfilled {len(filled)} trades in 1 outages" in text
    assert desk.down().returncode == 0
