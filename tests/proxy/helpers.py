"""Real processes for the proxy's tests: a sim, a gateway process and a proxy process.

`ProxyDesk` starts them the way the supervisor does (`python -m tradeops.gateway`,
`python -m tradeops.proxy`, readiness on a pipe) and stops them, checking that nothing is
left behind. `NativeClient` speaks the proxy's native protocol over a plain websocket.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.conftest import REPO
from tests.waiting import wait_for
from tradeops.bus.names import list_segments
from tradeops.process.paths import RunPaths
from tradeops.sim.options import SimOptions
from tradeops.sim.server import SimThread

TOKEN = "s3cret"




class ProxyDesk:
    def __init__(self, tmp: Path, name: str, proxy: str, sim: SimOptions, broker: str = "") -> None:
        self.name = name
        self.run_dir = tmp / "run"
        self.file = tmp / f"{name}.yaml"
        tmp.mkdir(parents=True, exist_ok=True)
        extra = f", {proxy}" if proxy else ""
        self.file.write_text(
            f"version: 1\nname: {name}\nsettings:\n  run_dir: {self.run_dir}\n"
            f"  proxy: {{listen: '127.0.0.1:0', token: {TOKEN}{extra}}}\n"
            f"brokers:\n  sim: {{adapter: sim{', ' + broker if broker else ''}}}\n"
        )
        self.bus = RunPaths(self.run_dir.resolve(), name).bus
        self.sim = SimThread(sim).start()
        self.gateway = self._spawn("gateway", "gateway-sim", "--url", self.sim.url)
        self.proxy: subprocess.Popen[bytes] | None = None
        self.url = ""

    def _spawn(self, module: str, name: str, *extra: str, ready_fd: int | None = None
               ) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if ready_fd is not None:
            env["TRADEOPS_READY_FD"] = str(ready_fd)
        argv = [sys.executable, "-m", f"tradeops.{module}", "--topology", str(self.file),
                "--name", name, "--run-dir", str(self.run_dir), *extra]
        return subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL, env=env,
                                pass_fds=() if ready_fd is None else (ready_fd,))

    def start_proxy(self) -> str:
        wait_for(lambda: (self.run_dir / f"{self.name}-gw-sim.sock").exists(), 15, "gateway")
        r, w = os.pipe()
        try:
            self.proxy = self._spawn("proxy", "proxy", ready_fd=w)
        finally:
            os.close(w)
        try:
            ready, _, _ = select.select([r], [], [], 20.0)
            assert ready, "the proxy did not report ready"
            line = os.read(r, 65536)
        finally:
            os.close(r)
        detail = json.loads(line)
        assert detail["ready"] is True and detail["url"].split("://")[1].startswith("127.0.0.1:")
        self.url = detail["url"]
        return self.url

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.sim.http_url + path, data=data,
                                         method="GET" if data is None else "POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def broker_log(self) -> list[dict[str, Any]]:
        """Every subscribe/unsubscribe the broker saw, oldest first."""
        return list(self.admin("/admin/subscriptions")["log"])

    def state_file(self) -> Path:
        """Where the proxy writes its status (about once a second)."""
        return self.run_dir / "state" / "proxy.json"

    def state(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.state_file().read_text())
            return data
        except (OSError, ValueError):
            return {}

    def native(self, name: str = "test", **kw: Any) -> NativeClient:
        client = NativeClient(self.url + "/", **kw)
        client.hello(name)
        return client

    def close(self) -> None:
        codes = []
        for proc in (self.proxy, self.gateway):  # the proxy first, as `tradeops down` does
            if proc is not None:
                if proc.poll() is None:
                    proc.terminate()
                codes.append(proc.wait(15))
        self.sim.close()
        assert codes == [0] * len(codes), f"a process did not stop cleanly: {codes}"
        assert list_segments(self.bus) == [], "shared memory outlived the desk"
        assert not (self.run_dir / f"{self.name}-gw-sim.sock").exists()


class NativeClient:
    """A native-protocol client: requests wait for their ack; ticks are collected."""

    def __init__(self, url: str, **kw: Any) -> None:
        # Unbounded by default: a test client that is not reading its ticks still sees the
        # proxy's close frame (with websockets' 16 it stops reading the socket, and its close
        # then waits its whole close_timeout). Slow-client tests pass max_queue themselves.
        kw.setdefault("max_queue", None)
        self.ws: ClientConnection = connect(url, open_timeout=10, legacy=True, **kw)
        self.ticks: list[dict[str, Any]] = []
        self.other: list[dict[str, Any]] = []
        self._id = 0

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(self.ws.recv(timeout=timeout))
        if message.get("op") == "ticks":
            self.ticks += message["ticks"]
        else:
            self.other.append(message)
        return message

    def until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0,
              ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            message = self.recv(max(0.01, deadline - time.monotonic()))
            if predicate(message):
                return message

    def hello(self, name: str, token: str = TOKEN) -> dict[str, Any]:
        self.send({"op": "hello", "v": 1, "token": token, "client": name})
        return self.until(lambda m: m.get("op") in ("hello", "error"))

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        self._id += 1
        rid = self._id
        self.send({"op": op, "id": rid, **fields})
        return self.until(lambda m: m.get("id") == rid)

    def subscribe(self, symbols: list[str], mode: str = "trade") -> dict[str, Any]:
        return self.request("subscribe", symbols=symbols, mode=mode)

    def unsubscribe(self, symbols: list[str]) -> dict[str, Any]:
        return self.request("unsubscribe", symbols=symbols)

    def wait_ticks(self, predicate: Callable[[list[dict[str, Any]]], bool],
                   timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while not predicate(self.ticks):
            if time.monotonic() > deadline:
                raise AssertionError(f"ticks did not arrive in {timeout}s: {len(self.ticks)}")
            try:
                self.recv(max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                continue
        return self.ticks

    def close(self) -> None:
        self.ws.close()


class Collector(threading.Thread):
    """Reads a client's messages on a thread until closed (a client that keeps up)."""

    def __init__(self, client: NativeClient) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while True:
                self.client.recv(timeout=30)
        except (ConnectionClosed, TimeoutError, OSError) as exc:
            self.error = exc
