"""How fast a desk comes up and how fast a restarted strategy is back in service.

Measured with real processes through the CLI, as a user runs them:

- `tradeops up --detach` wall time until every process is ready, for 1 and 10 groups, next
  to the floor: starting the same number of bare Python processes that only import the host
  module (what any process-per-strategy design pays);
- `tradeops restart GROUP` until the restarted strategy handles its first tick;
- resident memory of each host process.

Run: .venv/bin/python benchmarks/restart_bench.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.results import machine, write_section

REPO = Path(__file__).resolve().parent.parent
TRADEOPS = str(Path(sys.executable).parent / "tradeops")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [TRADEOPS, *args], capture_output=True, text=True, cwd=REPO, timeout=180
    )
    if result.returncode != 0 and not (args[0] == "status" and result.returncode == 1):
        raise SystemExit(f"tradeops {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result


def topology(tmp: Path, name: str, groups: int) -> Path:
    lines = [
        f"version: 1\nname: {name}\nsettings: {{run_dir: {tmp / 'run'}, "
        'proxy: {listen: "127.0.0.1:0"}}',  # never collide with a desk already running
        "brokers:\n  sim:\n    adapter: sim\n    market: {seed: 1, rate: 50}",
        "strategies:",
    ]
    for g in range(groups):
        lines.append(
            f"  s{g}:\n    class: benchmarks.strategies:FirstTick\n    broker: sim\n"
            f'    symbols: [AAPL, MSFT]\n    params: {{out: "{tmp / f"s{g}.first"}"}}'
        )
    path = tmp / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def bare_processes(n: int) -> float:
    start = time.perf_counter()
    procs = [
        subprocess.Popen([sys.executable, "-c", "import tradeops.runtime.launch"]) for _ in range(n)
    ]
    for p in procs:
        p.wait()
    return time.perf_counter() - start


def up_time(groups: int) -> tuple[float, list[int]]:
    with tempfile.TemporaryDirectory(prefix="tob") as tmp:
        path = topology(Path(tmp), f"bench{groups}", groups)
        start = time.perf_counter()
        cli("up", "--detach", str(path))
        elapsed = time.perf_counter() - start
        status = json.loads(cli("status", "--file", str(path), "--format", "json").stdout)
        rss = [p["rss"] for p in status["processes"] if p["role"] == "host" and p["rss"]]
        cli("down", "--file", str(path))
        return elapsed, rss


def restart_time(rounds: int) -> list[float]:
    times = []
    with tempfile.TemporaryDirectory(prefix="tob") as tmp:
        path = topology(Path(tmp), "benchrestart", 2)
        cli("up", "--detach", str(path))
        first = Path(tmp) / "s0.first"
        try:
            for _ in range(rounds):
                first.unlink(missing_ok=True)
                start = time.time()
                cli("restart", "s0", "--file", str(path))
                deadline = time.monotonic() + 10
                while not first.exists() and time.monotonic() < deadline:
                    time.sleep(0.005)
                times.append(float(first.read_text()) - start)
        finally:
            cli("down", "--file", str(path))
    return times


def main() -> None:
    load = os.getloadavg()[0]  # other work on the machine: what the floor column also shows
    rows = []
    rss_all: list[int] = []
    for groups in (1, 10):
        ups = []
        for _ in range(3):
            elapsed, rss = up_time(groups)
            ups.append(elapsed)
            rss_all += rss
        floor = statistics.median(bare_processes(groups + 2) for _ in range(3))
        rows.append((groups, statistics.median(ups), floor))
    restarts = restart_time(10)
    restart_p50 = statistics.median(restarts)
    up10 = rows[1][1]
    body = (
        f"""
`benchmarks/restart_bench.py` on {machine()}; load average {load:.1f} at the start. Real
processes through the CLI: a simulated exchange, its gateway and N strategy hosts (one
strategy each), median of 3 runs.

| groups | `up --detach` until all ready | floor: N+2 bare Pythons importing the host | ratio |
|---|---|---|---|
"""
        + "\n".join(f"| {g} | {u:.2f} s | {f:.2f} s | {u / f:.1f}× |" for g, u, f in rows)
        + f"""

`tradeops restart` until the restarted strategy handles its first tick (10 restarts):
p50 {restart_p50 * 1000:.0f} ms, max {max(restarts) * 1000:.0f} ms.

Resident memory per host process: median {statistics.median(rss_all) / 2**20:.0f} MiB
(max {max(rss_all) / 2**20:.0f} MiB).

Targets (issue 13): all ready in under 3 s for 10 groups: **{
            "PASS" if up10 < 3 else f"MISS ({up10 - 3:+.2f} s)"
        }** ({up10:.2f} s); a restart back to its first tick in under 500 ms at p50: **{
            "PASS" if restart_p50 < 0.5 else f"MISS ({(restart_p50 - 0.5) * 1000:+.0f} ms)"
        }** ({restart_p50 * 1000:.0f} ms). The machine is shared and noisy: compare with the
floor column of the same run.
"""
    )
    print(body)
    write_section("restart_bench", body)


if __name__ == "__main__":
    main()
