"""The broker refusing a subscription, on a real desk: a transient refusal is retried with
backoff until the symbol flows; a final one is answered and shown per symbol in status."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.desk import Desk
from tests.e2e.test_desk import desk_body, recorder
from tests.waiting import wait_for
from tradeops.bus.reader import RingReader
from tradeops.gateway.client import GatewayClient

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def inject(desk: Desk, **faults: Any) -> None:
    http = desk.proc("sim-sim")["detail"]["http"]
    request = urllib.request.Request(
        f"{http}/admin/faults", data=json.dumps(faults).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 200


def test_a_rate_limited_subscribe_is_retried_and_the_symbol_flows(
    make_desk: object, tmp_path: Path
) -> None:
    desk: Desk = make_desk("gwretry", desk_body(tmp_path, recorder("rec", tmp_path)))  # type: ignore[operator]
    desk.up()
    wait_for(lambda: len(desk.lines("rec")) > 3, what="first ticks")
    inject(desk, refuse_changes=2, refuse_code=500)
    socket = str(desk.run_dir / f"{desk.name}-gw-sim.sock")
    with GatewayClient(socket, "test") as gw, RingReader(desk.bus, "sim") as reader:
        reply = gw.subscribe(["NVDA"], "trade")
        result = reply["results"]["NVDA"]
        assert result["ok"] is True and result["queued"] is True
        assert "500 internal error; retrying" in result["reason"]
        assert "NVDA" in gw.status()["retrying"]
        seen: set[str] = set()

        def nvda_flows() -> bool:
            seen.update(t.symbol for t in reader.read(10_000, 0.05))
            return "NVDA" in seen

        wait_for(nvda_flows, timeout=60, what="NVDA ticks after the retries")
        status = gw.status()
        assert status["retrying"] == {} and status["refused"] == {}


def test_a_final_refusal_is_answered_and_shown_per_symbol(
    make_desk: object, tmp_path: Path
) -> None:
    desk: Desk = make_desk("gwrefuse", desk_body(tmp_path, recorder("rec", tmp_path)))  # type: ignore[operator]
    desk.up()
    wait_for(lambda: len(desk.lines("rec")) > 3, what="first ticks")
    inject(desk, refuse_changes=1, refuse_code=410)
    socket = str(desk.run_dir / f"{desk.name}-gw-sim.sock")
    with GatewayClient(socket, "test") as gw:
        reply = gw.subscribe(["NVDA"], "trade")
        assert reply["results"]["NVDA"]["ok"] is False
        assert "410" in reply["results"]["NVDA"]["reason"]
        assert "NVDA" in gw.status()["refused"]
        wait_for(lambda: "NVDA" in desk.proc("gateway-sim")["stats"].get("refused", {}),
                 what="the refusal in tradeops status")
