"""The tiers hold: a test that is not marked e2e cannot start a process or a server."""

from __future__ import annotations

import multiprocessing
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import StartsProcesses


def test_an_unmarked_test_cannot_start_a_subprocess() -> None:
    with pytest.raises(StartsProcesses, match="not marked e2e"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)


def test_an_unmarked_test_cannot_start_a_multiprocessing_child() -> None:
    with pytest.raises(StartsProcesses, match="starts a process"):
        multiprocessing.get_context("spawn").Process(target=print).start()


def test_an_unmarked_test_cannot_start_a_network_server() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        with pytest.raises(StartsProcesses, match="starts a network server"):
            sock.listen()


def test_an_unmarked_test_may_serve_a_unix_socket_itself(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "s.sock"))
        sock.listen()


@pytest.mark.e2e
def test_a_marked_test_can() -> None:
    assert subprocess.run([sys.executable, "-c", "pass"], check=False).returncode == 0
