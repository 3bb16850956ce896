"""How long `tradeops validate` takes on a large desk: 1,000 strategies on 20 brokers.

Compared side by side with the plain alternative, `yaml.safe_load` + pydantic validation
(no positions, no duplicate-key detection, no cross-field checks), to show what the located
findings cost. Strategy imports are off, as in a CI job with `--no-import`.

The target (issue 13) is for the command a user runs, process start included: `tradeops
validate FILE --no-import` as a subprocess, timed from spawn to exit.

Run: .venv/bin/python benchmarks/validate_bench.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.results import machine, write_section
from tradeops.topology.check import CheckOptions
from tradeops.topology.model import Topology
from tradeops.topology.validate import validate_file

STRATEGIES, BROKERS, GROUP_SIZE = 1000, 20, 10


def generate() -> str:
    lines = ["version: 1", "name: big", "brokers:"]
    for b in range(BROKERS):
        lines += [
            f"  b{b:02d}:",
            "    adapter: sim",
            "    pool: {symbols_per_connection: 1000, max_connections: 3}",
        ]
    lines.append("strategies:")
    for s in range(STRATEGIES):
        symbols = ", ".join(
            f"S{chr(65 + (s + k) % 26)}{chr(65 + (s // 26 + k) % 26)}" for k in range(5)
        )
        lines += [
            f"  s{s:04d}:",
            "    class: recipes.momentum:Momentum",
            f"    broker: b{s % BROKERS:02d}",
            f"    symbols: [{symbols}]",
            "    mode: quote",
            "    priority: normal",
            "    timer: 1s",
            "    limits: {max_order_qty: 100, max_position: 500}",
            "    params: {lookback: 20}",
        ]
    lines.append("processes:")
    for g in range(STRATEGIES // GROUP_SIZE):
        members = ", ".join(f"s{s:04d}" for s in range(g * GROUP_SIZE, (g + 1) * GROUP_SIZE))
        lines += [f"  g{g:03d}:", f"    strategies: [{members}]", "    auto_cancel: strategy"]
    return "\n".join(lines) + "\n"


def best_of(runs: int, fn: Callable[[], object]) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.yaml"
        text = generate()
        path.write_text(text)
        report = validate_file(path, CheckOptions(import_classes=False))
        assert report.findings == [], report.findings[:3]

        ours = best_of(5, lambda: validate_file(path, CheckOptions(import_classes=False)))
        plain = best_of(
            5, lambda: Topology.model_validate(yaml.load(path.read_text(), Loader=yaml.CSafeLoader))
        )
        script = str(Path(sys.executable).parent / "tradeops")
        command = best_of(
            5,
            lambda: subprocess.run(
                [script, "validate", str(path), "--no-import"], check=True, capture_output=True
            ),
        )
    lines = len(text.splitlines())
    verdict = "PASS" if command[1] < 1.0 else f"MISS ({command[1] - 1:+.2f} s)"
    command_ms = f"{command[0] * 1000:.0f} ms | {command[1] * 1000:.0f} ms"
    ours_ms = f"{ours[0] * 1000:.0f} ms | {ours[1] * 1000:.0f} ms"
    plain_ms = f"{plain[0] * 1000:.0f} ms | {plain[1] * 1000:.0f} ms"
    body = f"""
`benchmarks/validate_bench.py` on {machine()}.
A generated topology of {STRATEGIES:,} strategies, {BROKERS} brokers and
{STRATEGIES // GROUP_SIZE} process groups ({lines:,} lines of YAML), strategy imports off.

| what | best | median |
|---|---|---|
| `tradeops validate FILE --no-import`, the command, process start included | {command_ms} |
| `tradeops validate` in process (positions, env, model, every check) | {ours_ms} |
| plain `yaml.load` (libyaml) + pydantic model only | {plain_ms} |

Located findings and the cross-field checks cost {ours[1] / plain[1]:.1f}× the plain load.
Target: the command under 1 s for this desk (median): **{verdict}**.
"""
    print(body)
    write_section("validate_bench", body)


if __name__ == "__main__":
    main()
