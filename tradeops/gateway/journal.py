"""The audit journal: every order event, one JSON line, appended by whoever saw it.

`RUN_DIR/orders.jsonl` is written by every gateway (and by hosts, for orders refused before
they left the process) with one `write` per line on a file opened with O_APPEND, so lines
from several processes never interleave. Nothing about money is lost when a process dies:
the line is in the kernel before the event is acted on further.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from pathlib import Path
from typing import Any


class Journal:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def write(self, event: str, **fields: Any) -> None:
        entry = {"time": _now(), "event": event, **fields}
        os.write(self._fd, json.dumps(entry, separators=(",", ":")).encode() + b"\n")

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def journal_path(run_dir: Path) -> Path:
    return run_dir / "orders.jsonl"


def tail(path: Path, lines: int, strategy: str | None = None) -> list[dict[str, Any]]:
    """The last `lines` entries (of one strategy, if given)."""
    if not path.exists():
        return []
    out: deque[dict[str, Any]] = deque(maxlen=lines)
    with path.open(errors="replace") as f:
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if strategy is None or entry.get("strategy") == strategy:
                out.append(entry)
    return list(out)


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"
