"""Shared test helpers, and the guard that keeps the fast tier fast.

Two tiers (see the Makefile): `make test` runs everything; `make test-fast` runs the tests
not marked `e2e`. A test that starts a process (subprocess, multiprocessing) or a network
server (a listening TCP socket: the sim, the proxy) must be marked `e2e`; an unmarked one
that tries fails at once with `StartsProcesses`, so the mark cannot be forgotten. A unix
socket the test's own loop serves turn by turn (tests/gateway/test_server_loop.py) stays in
the fast tier: one process, no timing.
"""

from __future__ import annotations

import contextlib
import multiprocessing.process
import socket
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


class StartsProcesses(AssertionError):
    """An unmarked test started a process or a server: mark it `e2e`."""


def forbid_processes_and_servers(monkeypatch: pytest.MonkeyPatch, test: str) -> None:
    """Make starting a subprocess, a multiprocessing child or a listening socket fail."""

    def refuse(what: str) -> Callable[..., Any]:
        def refused(*args: Any, **kwargs: Any) -> Any:
            raise StartsProcesses(
                f"{test} {what} but is not marked e2e; add `pytestmark = pytest.mark.e2e` to "
                "its module (or @pytest.mark.e2e to the test) so `make test-fast` skips it"
            )

        return refused

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse("starts a subprocess"))
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", refuse("starts a process"))
    listen, refuse_listen = socket.socket.listen, refuse("starts a network server")

    def network_listen(sock: socket.socket, *args: Any) -> None:
        # A unix socket served by the test's own loop, turn by turn, is single-process.
        if sock.family != socket.AF_UNIX:
            refuse_listen()
        listen(sock, *args)

    monkeypatch.setattr(socket.socket, "listen", network_listen)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    # Around setup too: a module-scoped fixture (a shared desk) starts in its first test's setup.
    with _guarded(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with _guarded(item):
        return (yield)


@contextlib.contextmanager
def _guarded(item: pytest.Item) -> Iterator[None]:
    if item.get_closest_marker("e2e") is not None:
        yield
        return
    with pytest.MonkeyPatch.context() as monkeypatch:
        forbid_processes_and_servers(monkeypatch, item.nodeid)
        yield


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[..., Path]:
    """Write a dedented YAML text to a file in tmp_path and return its path."""

    def write(text: str, name: str = "topology.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


@pytest.fixture
def make_desk(tmp_path: Path) -> Iterator[Callable[[str, str], Any]]:
    """Desks a test runs through the CLI (tests/e2e/desk.py); after the test each is taken
    down and nothing of it may remain: no process, no shared memory."""
    from tests.e2e.desk import Desk, assert_nothing_left

    desks: list[Desk] = []

    def make(name: str, body: str) -> Desk:
        desk = Desk(tmp_path, name, body)
        desks.append(desk)
        return desk

    yield make
    for desk in desks:
        desk.cleanup()
        assert_nothing_left(desk)
