"""The proxy serves `max_clients` even where the soft limit on open files is lower.

Many systems start processes with a soft limit of 1,024 open files (and containers or
systemd units sometimes with less), while the proxy's default `max_clients` is 1,000 and each
client is a socket. Past the limit, `accept` fails with EMFILE: clients hang or are dropped
while `status` shows nothing wrong. The proxy raises its soft limit to what `max_clients`
needs (up to the hard limit, which any process may do) and says so in `status` when the hard
limit is lower.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest
from websockets.exceptions import InvalidStatus

from tests.conftest import REPO
from tests.e2e.desk import SCRIPT, Desk

from .helpers import NativeClient
from .test_desk import BODY

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def up_with_limit(desk: Desk, limit: str) -> subprocess.CompletedProcess[str]:
    """`tradeops up --detach` from a shell whose open-file limit is set by `limit`."""
    return subprocess.run(["sh", "-c", f'ulimit {limit} && exec "$0" "$@"', str(SCRIPT), "up",
                           "--detach", str(desk.file)], capture_output=True, text=True,
                          timeout=120, cwd=REPO, check=False)  # fmt: skip


def test_the_proxy_serves_max_clients_under_a_lower_soft_limit(
    make_desk: Callable[[str, str], Desk],
) -> None:
    desk = make_desk("pxfiles", BODY)
    desk.edit('  proxy: {listen: "127.0.0.1:0"}',
              '  proxy: {listen: "127.0.0.1:0", max_clients: 120}')
    result = up_with_limit(desk, "-Sn 64")
    assert result.returncode == 0, result.stdout + result.stderr
    url = desk.proc("proxy")["detail"]["url"] + "/"
    clients: list[NativeClient] = []
    try:
        for i in range(100):  # more than 64 open files' worth
            client = NativeClient(url)
            clients.append(client)
            assert client.hello(f"c{i}")["op"] == "hello", f"client {i} was not served"
        assert clients[-1].subscribe(["AAPL"], "quote")["ok"]
        clients[-1].wait_ticks(lambda t: len(t) > 3)
    finally:
        for client in clients:
            client.close()
    assert "problems" not in desk.proc("proxy") or not desk.proc("proxy")["problems"]
    assert desk.down().returncode == 0


def test_a_hard_limit_below_max_clients_shows_in_status(
    make_desk: Callable[[str, str], Desk],
) -> None:
    desk = make_desk("pxhard", BODY)
    result = up_with_limit(desk, "-n 200")  # soft and hard; max_clients is 1000
    out = result.stdout + result.stderr
    assert result.returncode == 0, out  # it runs, degraded: the status `up` prints says why
    assert "max_clients 1000 needs about 1064 open files" in out, out
    problems = desk.proc("proxy")["problems"]
    assert "files" in problems, problems
    assert "may open 200" in problems["files"] and "serves at most 136" in problems["files"]
    status = desk.cli("status", "--file", str(desk.file))
    assert status.returncode == 1 and "LimitNOFILE" in status.stdout
    # It serves what it can, and refuses the rest at once instead of leaving them hanging.
    url = desk.proc("proxy")["detail"]["url"] + "/"
    clients: list[NativeClient] = []
    try:
        for i in range(136):
            clients.append(NativeClient(url))
            assert clients[-1].hello(f"c{i}")["op"] == "hello", f"client {i} was not served"
        with pytest.raises(InvalidStatus) as refused:
            NativeClient(url)
        assert refused.value.response.status_code == 503
    finally:
        for client in clients:
            client.close()
    assert desk.down().returncode == 0
