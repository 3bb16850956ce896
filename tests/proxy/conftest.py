"""Fixtures: a shared sim → gateway → proxy desk per module, and a factory for special ones."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tradeops.sim.options import SimOptions

from .helpers import NativeClient, ProxyDesk


@pytest.fixture
def clients() -> Iterator[Callable[[ProxyDesk, str], NativeClient]]:
    """`clients(desk, name)` opens a native client that says hello; all closed at teardown."""
    opened: list[NativeClient] = []

    def open_client(desk: ProxyDesk, name: str = "test") -> NativeClient:
        client = desk.native(name)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        with contextlib.suppress(Exception):
            client.close()


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyDesk]:
    """A desk every test of a module shares (tests use their own symbols)."""
    tmp = tmp_path_factory.mktemp("proxy")
    name = f"px{os.getpid() % 100000}{abs(hash(str(tmp))) % 1000}"
    started = ProxyDesk(tmp, name, "exchanges: {NASDAQ: sim}", SimOptions(rate=20.0))
    try:
        started.start_proxy()
        yield started
    finally:
        started.close()


@pytest.fixture
def private_desk(tmp_path: Path) -> Iterator[Callable[..., ProxyDesk]]:
    """`private_desk(proxy="queue: 100", broker="pool: {...}", rate=...)`: a desk of the
    test's own (`proxy` and `broker` are YAML added to the proxy's and the broker's keys,
    the rest are SimOptions)."""
    made: list[ProxyDesk] = []

    def make(proxy: str = "", broker: str = "", **sim: Any) -> ProxyDesk:
        name = f"py{os.getpid() % 100000}{len(made)}{abs(hash(str(tmp_path))) % 1000}"
        created = ProxyDesk(tmp_path / str(len(made)), name, proxy, SimOptions(**sim), broker)
        made.append(created)
        created.start_proxy()
        return created

    yield make
    for created in made:
        created.close()
