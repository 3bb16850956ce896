"""Names of the bus's shared-memory files, and finding or removing a topology's leftovers.

Every file the bus creates lives in ``/dev/shm`` and is named
``tradeops-<topology>.<broker>.<what>``: ``ring``, ``table``, ``bell.<n>`` (a sleeping reader's
doorbell FIFO) and ``<what>.tmp-<pid>`` while a writer prepares a segment. Topology and broker
names cannot contain a dot, so the dot makes the prefix unambiguous: removing topology ``a``
never touches topology ``a-b``'s files.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

__all__ = [
    "SHM_DIR",
    "bell_name",
    "book_name",
    "list_segments",
    "remove_segments",
    "ring_name",
    "shm_path",
    "table_name",
]

SHM_DIR: Final = Path("/dev/shm")
_PREFIX: Final = "tradeops-"
# The topology and broker name patterns of topology/model.py, without their length limits.
_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def _check(kind: str, name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(
            f"{kind} name {name!r} cannot name a bus segment: use letters, digits, '_' and '-'"
        )
    return name


def _base(topology: str, broker: str) -> str:
    return f"{_PREFIX}{_check('topology', topology)}.{_check('broker', broker)}"


def ring_name(topology: str, broker: str) -> str:
    """The tick ring of ``broker`` in ``topology`` (one writer: that broker's gateway)."""
    return f"{_base(topology, broker)}.ring"


def table_name(topology: str, broker: str) -> str:
    """The latest-value table of ``broker`` in ``topology``."""
    return f"{_base(topology, broker)}.table"


def book_name(topology: str, broker: str) -> str:
    """The book table of ``broker`` in ``topology`` (order books, docs/bus.md)."""
    return f"{_base(topology, broker)}.books"


def bell_name(topology: str, broker: str, slot: int) -> str:
    """The doorbell FIFO of reader ``slot`` of ``broker``'s ring."""
    return f"{_base(topology, broker)}.bell.{slot}"


def shm_path(name: str) -> Path:
    return SHM_DIR / name


def list_segments(topology: str) -> list[str]:
    """Names of every bus file of ``topology`` in /dev/shm (rings, tables, doorbells), sorted."""
    prefix = f"{_PREFIX}{_check('topology', topology)}."
    try:
        names = os.listdir(SHM_DIR)
    except FileNotFoundError:
        return []
    return sorted(name for name in names if name.startswith(prefix))


def remove_segments(topology: str) -> list[str]:
    """Unlink every bus file of ``topology``; return the names removed.

    For ``up`` (stale files of a crashed run) and ``down``. Processes still mapping a removed
    segment keep their mapping; a new writer of the same name creates a fresh one.
    """
    removed = []
    for name in list_segments(topology):
        try:
            os.unlink(SHM_DIR / name)
        except FileNotFoundError:
            continue
        removed.append(name)
    return removed
