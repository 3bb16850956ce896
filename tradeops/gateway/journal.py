"""The audit journal: every order event, one JSON line, appended by whoever saw it.

`RUN_DIR/orders.jsonl` is written by every gateway (and by hosts, for orders refused before
they left the process) with one `write` per line on a file opened with O_APPEND, so lines
from several processes never interleave. Nothing about money is lost when a process dies:
the line is in the kernel before the event is acted on further. Nor when the disk is full:
lines wait in memory, in order, until they can be written (see `Journal`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any


class Journal:
    """The append-only order journal of one process.

    A line that cannot be written (a full or read-only disk) is kept in memory, in order, and
    written before any later line as soon as a write succeeds again (`flush` retries, and
    every new line does). Nothing about money is dropped: the backlog has no cap, and its
    size and cause are reported (`on_problem`) so `tradeops status` shows them.
    """

    def __init__(self, path: Path, on_problem: Callable[[str | None], None] | None = None,
                 fsync_every: float = 1.0) -> None:
        self.path = path
        self._on_problem = on_problem or _ignore
        self._fsync_every = fsync_every
        self._synced = time.monotonic()
        self._fd = -1
        self._backlog: deque[bytes] = deque()
        self.problem = ""
        self.flush()  # opens the file, or reports why it cannot

    def write(self, event: str, **fields: Any) -> None:
        entry = {"time": _now(), "event": event, **fields}
        self._backlog.append(json.dumps(entry, separators=(",", ":")).encode() + b"\n")
        self.flush()

    @property
    def waiting(self) -> int:
        """Lines not yet on disk."""
        return len(self._backlog)

    def flush(self) -> bool:
        """Write every waiting line, oldest first; False when some are still waiting."""
        try:
            if self._fd < 0:
                self._open()
            while self._backlog:
                line = self._backlog[0]
                written = os.write(self._fd, line)
                if written < len(line):  # a short write: the rest waits with the backlog
                    self._backlog[0] = line[written:]
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                self._backlog.popleft()
        except OSError as exc:
            reason = f"cannot write {self.path}: {exc.strerror or exc}"
            self.problem = f"{reason} ({len(self._backlog)} line(s) waiting)"
            self._on_problem(self.problem)
            return False
        if self.problem:
            self.problem = ""
            self._on_problem(None)
        if time.monotonic() - self._synced >= self._fsync_every:  # a crash of the machine
            self._synced = time.monotonic()  # loses at most this much
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
        return True

    def close(self) -> None:
        self.flush()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        size = os.fstat(self._fd).st_size
        if size and os.pread(self._fd, 1, size - 1) != b"\n":
            # A line torn by a kill: end it, so the next line is not glued to it.
            os.write(self._fd, b"\n")

    def open_orders(self, strategies: set[str]) -> dict[str, dict[str, Any]]:
        """The submits of `strategies` the journal has no outcome for yet (by routing id):
        what a gateway starting after a crash reconciles with the broker."""
        return open_entries(self.path, strategies)


def _ignore(problem: str | None) -> None:
    pass


#: Journal events after which an order has nothing more to happen.
OUTCOMES = frozenset({"filled", "cancelled", "rejected"})


def entries(path: Path) -> Iterator[dict[str, Any]]:
    """Every readable entry of a journal, in order; a torn or foreign line is skipped."""
    if not path.exists():
        return
    with path.open(errors="replace") as f:
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                yield entry


def open_entries(path: Path, strategies: set[str]) -> dict[str, dict[str, Any]]:
    """Submits without an outcome line, by client order id."""
    open_: dict[str, dict[str, Any]] = {}
    for entry in entries(path):
        cid = entry.get("client_order_id")
        if not cid or entry.get("strategy") not in strategies:
            continue
        if entry.get("event") == "submit":
            open_[cid] = entry
        elif entry.get("event") in OUTCOMES:
            open_.pop(cid, None)
    return open_


def filled(log: Iterable[dict[str, Any]], strategies: set[str]
           ) -> dict[str, tuple[str, str, str, float]]:
    """Per client order id of `strategies`: (strategy, symbol, side, quantity filled as far as
    the journal knows), for the orders that have a submit line. A gateway rebuilds its
    strategies' positions from this when it starts."""
    orders: dict[str, tuple[str, str, str, float]] = {}
    for entry in log:
        cid = entry.get("client_order_id")
        if entry.get("strategy") not in strategies:
            continue
        if entry.get("event") == "submit" and cid:
            orders[cid] = (entry["strategy"], str(entry.get("symbol", "")),
                           str(entry.get("side", "")), 0.0)
        elif cid in orders and isinstance(entry.get("filled_qty"), int | float):
            strategy, symbol, side, done = orders[cid]
            orders[cid] = (strategy, symbol, side, max(done, float(entry["filled_qty"])))
    return orders


def halts(log: Iterable[dict[str, Any]], broker: str) -> dict[tuple[str, str], str]:
    """The halts in force on a broker's gateway, (scope, target) → when it was halted: what
    `tradeops halt` wrote and no `tradeops resume` lifted since. Scopes: broker, account,
    strategy."""
    held: dict[tuple[str, str], str] = {}
    for entry in log:
        if entry.get("broker") != broker or entry.get("event") not in ("halt", "resume"):
            continue
        scope = (str(entry.get("scope")), str(entry.get("target")))
        if entry["event"] == "halt":
            held.setdefault(scope, str(entry.get("time", "")))
        else:
            held.pop(scope, None)
    return held


def journal_path(run_dir: Path) -> Path:
    return run_dir / "orders.jsonl"


def tail(path: Path, lines: int, strategy: str | None = None) -> list[dict[str, Any]]:
    """The last `lines` entries (of one strategy, if given)."""
    return list(deque((e for e in entries(path)
                       if strategy is None or e.get("strategy") == strategy), maxlen=lines))


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"
