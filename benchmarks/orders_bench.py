"""Order round trip through the desk: strategy `buy` → gateway → simulated exchange → the
update back in the strategy, next to the plain alternative: the same REST call made directly
to the exchange (what a script with its own connection pays, without routing, risk checks or
a shared rate limit).

Run: .venv/bin/python benchmarks/orders_bench.py
"""

from __future__ import annotations

import ast
import http.client
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.results import machine, write_section

REPO = Path(__file__).resolve().parent.parent
TRADEOPS = str(Path(sys.executable).parent / "tradeops")
COUNT = 200


def cli(*args: str) -> str:
    result = subprocess.run([TRADEOPS, *args], capture_output=True, text=True, cwd=REPO,
                            timeout=180)
    if result.returncode != 0 and not (args[0] == "status" and result.returncode == 1):
        raise SystemExit(f"tradeops {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def desk_round_trips(tmp: Path) -> tuple[dict[str, list[float]], str]:
    out = tmp / "rt.out"
    path = tmp / "bench.yaml"
    path.write_text(f"""version: 1
name: benchorders
settings: {{run_dir: {tmp / 'run'}, proxy: {{listen: "127.0.0.1:0"}}}}
brokers:
  sim: {{adapter: sim, market: {{seed: 2, rate: 200}}}}
strategies:
  rt:
    class: benchmarks.strategies:RoundTrip
    broker: sim
    symbols: [AAPL]
    params: {{out: "{out}", symbol: AAPL, count: {COUNT}}}
""")
    cli("up", "--detach", str(path))
    try:
        deadline = time.monotonic() + 120
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        status = json.loads(cli("status", "--file", str(path), "--format", "json"))
        http_url = next(p["detail"]["http"] for p in status["processes"]
                        if p["role"] == "sim")
        data: dict[str, list[float]] = ast.literal_eval(out.read_text())
        return data, http_url
    finally:
        cli("down", "--file", str(path))


def direct_round_trips(http_url: str) -> list[float]:
    """The floor: POST /v2/orders straight to a fresh sim, waiting for its answer."""
    from tradeops.sim.options import SimOptions
    from tradeops.sim.server import SimThread

    times = []
    with SimThread(SimOptions(rate=200)) as sim:
        host = sim.http_url.removeprefix("http://")
        conn = http.client.HTTPConnection(host, timeout=10)
        headers = {"APCA-API-KEY-ID": "k", "APCA-API-SECRET-KEY": "s",
                   "Content-Type": "application/json"}
        for i in range(COUNT):
            body = json.dumps({"symbol": "AAPL", "qty": "1", "side": "buy" if i % 2 else "sell",
                               "type": "market", "time_in_force": "day"})
            start = time.perf_counter()
            conn.request("POST", "/v2/orders", body=body, headers=headers)
            conn.getresponse().read()
            times.append(time.perf_counter() - start)
        conn.close()
    return times


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="tob") as tmp:
        desk, http_url = desk_round_trips(Path(tmp))
    direct = direct_round_trips(http_url)
    acc, fill = desk["accepted"], desk["filled"]
    rows = [
        ("strategy → `accepted` update (risk check, rate limiter, REST ack, routed back)", acc),
        ("strategy → `filled` update (also the exchange's trade-updates stream)", fill),
        ("plain: `POST /v2/orders` straight to the exchange, answer read", direct),
    ]
    table = "\n".join(f"| {label} | {pct(v, .5):.2f} ms | {pct(v, .99):.2f} ms |"
                      for label, v in rows)
    body = f"""
`benchmarks/orders_bench.py` on {machine()}. {COUNT} market orders, one at a time, from a
strategy in a host process through its gateway to the simulated exchange (all real processes,
loopback), timed inside the strategy from `buy()` to the update.

| path | p50 | p99 |
|---|---|---|
{table}

The desk adds {pct(acc, .5) / pct(direct, .5):.1f}× the plain REST round trip at p50 to reach
`accepted` in the strategy: two more process hops (host → gateway → back) and the routing.
"""
    print(body)
    write_section("orders_bench", body)


if __name__ == "__main__":
    main()
