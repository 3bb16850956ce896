"""Waiting in tests: poll a condition with a deadline, never a bare sleep as synchronisation."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """The first truthy value `predicate` returns; AssertionError naming `what` after
    `timeout` seconds, with the last value it saw."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value {last!r}")


async def wait_for_async(
    predicate: Callable[[], Any], timeout: float = 10.0, what: str = ""
) -> Any:
    """`wait_for` for a test that runs on an event loop: polls without blocking the loop, so
    the code under test keeps running between two looks."""
    import asyncio

    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value {last!r}")
