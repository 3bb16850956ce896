"""Fixtures for the simulated exchange's tests: real servers on 127.0.0.1:0, plain clients.

Every sim and websocket a test opens through these fixtures is closed at teardown.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websocket

from tradeops.sim import SimOptions, SimThread

from .helpers import Http, WsClient


@pytest.fixture
def start_sim() -> Iterator[Callable[..., SimThread]]:
    """`start_sim(rate=..., ...)` starts a SimThread with those SimOptions; closed at teardown."""
    started: list[SimThread] = []

    def start(**options: Any) -> SimThread:
        sim = SimThread(SimOptions(**options)).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.close()


@pytest.fixture
def connect() -> Iterator[Callable[..., WsClient]]:
    """`connect(url, codec="json")` opens a WsClient; every one is closed at teardown."""
    clients: list[WsClient] = []

    def open_client(url: str, codec: str = "json", **kwargs: Any) -> WsClient:
        client = WsClient(url, codec, **kwargs)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        with contextlib.suppress(OSError, websocket.WebSocketException):
            client.close()


@pytest.fixture
def sim(start_sim: Callable[..., SimThread]) -> SimThread:
    """A sim with a fast walk and default limits."""
    return start_sim(rate=100.0)


@pytest.fixture
def http(sim: SimThread) -> Http:
    return Http(sim.http_url)
