"""Fixtures for bus tests: a unique topology per test, and child processes that never leak.

Every test gets its own topology name, so its /dev/shm files cannot collide with another
test's or a real desk's; teardown fails the test if any file is left behind, because a clean
close must remove everything.
"""

from __future__ import annotations

import multiprocessing as mp
import uuid
from collections.abc import Callable, Iterator
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

import pytest

from tradeops.bus import remove_segments

SPAWN: SpawnContext = mp.get_context("spawn")


@pytest.fixture
def topology() -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    leftover = remove_segments(name)
    assert leftover == [], f"bus files left behind: {leftover}"


@pytest.fixture
def spawn() -> Iterator[Callable[..., SpawnProcess]]:
    """Start a spawned child running ``target(*args)``; every child is killed at teardown."""
    started: list[SpawnProcess] = []

    def start(target: Callable[..., Any], *args: Any) -> SpawnProcess:
        proc = SPAWN.Process(target=target, args=args, daemon=True)
        proc.start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.is_alive():
            proc.kill()
        proc.join(timeout=10)
        assert not proc.is_alive()
