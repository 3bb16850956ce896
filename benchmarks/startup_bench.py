"""How fast the command line answers: `tradeops --version`, `--help`, and a bare Python.

Each is the console script as a user runs it, a subprocess timed from spawn to exit, median
and best of 15. `--version` is answered before typer or any command module is imported;
`--help` builds the whole app. The bare `python -c pass` is the floor any command pays.
(`validate` of a large desk: validate_bench.py; `up` and `restart`: restart_bench.py.)

Run: .venv/bin/python benchmarks/startup_bench.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.results import machine, write_section

SCRIPT = str(Path(sys.executable).parent / "tradeops")
TARGET_VERSION_S = 0.150


def timed(argv: list[str], runs: int = 15) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    rows = {
        "`python -c pass` (the floor)": timed([sys.executable, "-c", "pass"]),
        "`tradeops --version`": timed([SCRIPT, "--version"]),
        "`tradeops --help` (builds the app: typer and every command module)": timed(
            [SCRIPT, "--help"]
        ),
    }
    version = rows["`tradeops --version`"][1]
    gap = version - TARGET_VERSION_S
    verdict = "PASS" if gap < 0 else f"MISS ({gap:+.3f} s)"
    body = "\n".join(
        [
            f"`benchmarks/startup_bench.py` on {machine()}. The console script as a subprocess,",
            "spawn to exit, 15 runs each.",
            "",
            "| command | best | median |",
            "|---|---|---|",
            *[f"| {name} | {b * 1e3:.0f} ms | {m * 1e3:.0f} ms |" for name, (b, m) in rows.items()],
            "",
            f"Target: `tradeops --version` under {TARGET_VERSION_S * 1000:.0f} ms (median): "
            f"**{verdict}** ({version * 1000:.0f} ms; about 0.3-0.7 s before issue 13, when the",
            "CLI imported typer, pydantic, asyncio and every command module first).",
        ]
    )
    print(body)
    write_section("startup_bench", body)


if __name__ == "__main__":
    main()
