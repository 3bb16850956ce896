"""Network namespaces for tests: a node whose network is its own loopback and nothing else.

`Namespace.make` adds one (`ip netns add`, only `lo` up); `Forwarder` is a small TCP
forwarder process that listens on 127.0.0.1:PORT *inside* a namespace and connects each
connection to 127.0.0.1:TARGET of the root namespace, so a node there reaches the NATS server
at the address its topology names, and nothing else of the machine's network.

Python 3.11 has no os.setns: the forwarder calls libc's setns(2) on /var/run/netns/NAME with
CLONE_NEWNET, opens its listening socket there (a socket belongs to the namespace it was made
in), then setns back to the namespace it saved from /proc/thread-self/ns/net; every socket it
makes afterwards (the connections to the real server) is the root namespace's.

Run as `python -m tests.e2e.netns NAMESPACE PORT TARGET READY_FILE` (the forwarder).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

CLONE_NEWNET = 0x40000000


class NamespaceUnavailable(RuntimeError):
    """This machine (or user) cannot make network namespaces: the test skips, saying why."""


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def listen_in(namespace: str, port: int) -> socket.socket:
    """A socket listening on 127.0.0.1:`port` of `namespace`; the thread comes back home."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/var/run/netns/{namespace}", os.O_RDONLY)
    before = os.readlink("/proc/thread-self/ns/net")
    try:
        _setns(target)
        try:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", port))
            listener.listen(64)
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)
    assert os.readlink("/proc/thread-self/ns/net") == before, "not back in the root namespace"
    return listener


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def forward(namespace: str, port: int, target: int, ready: Path) -> None:
    listener = listen_in(namespace, port)
    ready.write_text(f"{os.getpid()}\n")
    while True:
        inside, _ = listener.accept()
        try:
            outside = socket.create_connection(("127.0.0.1", target), timeout=5)
            outside.settimeout(None)
        except OSError:
            inside.close()
            continue
        for a, b in ((inside, outside), (outside, inside)):
            threading.Thread(target=_pump, args=(a, b), daemon=True).start()


class Namespace:
    """A network namespace with only `lo` up; `delete` removes it (idempotent)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.made = False

    def make(self) -> Namespace:
        if os.geteuid() != 0:
            raise NamespaceUnavailable("network namespaces need root (`ip netns add`)")
        made = subprocess.run(["ip", "netns", "add", self.name], capture_output=True, text=True,
                              timeout=30)
        if made.returncode != 0:
            raise NamespaceUnavailable(f"`ip netns add` failed: {made.stderr.strip()}")
        self.made = True
        up = subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"],
                            capture_output=True, text=True, timeout=30)
        if up.returncode != 0:
            raise NamespaceUnavailable(f"cannot bring lo up in a namespace: {up.stderr.strip()}")
        return self

    def links(self) -> list[str]:
        """The namespace's interfaces, by name."""
        out = subprocess.run(["ip", "-n", self.name, "-o", "link"], capture_output=True,
                             text=True, timeout=30, check=True).stdout
        return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if line]

    def run(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """`args` run inside the namespace (`ip netns exec`)."""
        return subprocess.run(["ip", "netns", "exec", self.name, *args], capture_output=True,
                              text=True, timeout=timeout, input="")

    def listening(self) -> set[int]:
        """The TCP ports something listens on inside the namespace."""
        probe = ("import sys\nports = set()\nfor f in ('/proc/net/tcp', '/proc/net/tcp6'):\n"
                 "    for line in open(f).read().splitlines()[1:]:\n"
                 "        cols = line.split()\n"
                 "        if cols[3] == '0A': ports.add(int(cols[1].rsplit(':', 1)[1], 16))\n"
                 "print(' '.join(map(str, sorted(ports))))\n")
        result = self.run(sys.executable, "-c", probe, timeout=60)
        assert result.returncode == 0, result.stderr
        return {int(p) for p in result.stdout.split()}

    def connects(self, port: int) -> bool:
        """Whether a TCP connect to 127.0.0.1:`port` from inside the namespace succeeds."""
        probe = (f"import socket\ns = socket.socket()\ns.settimeout(5)\n"
                 f"print(s.connect_ex(('127.0.0.1', {port})))\n")
        result = self.run(sys.executable, "-c", probe, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip() == "0"

    def delete(self) -> None:
        if self.made:
            subprocess.run(["ip", "netns", "delete", self.name], capture_output=True,
                           timeout=30)
            self.made = False

    def exists(self) -> bool:
        return Path(f"/var/run/netns/{self.name}").exists()


class Forwarder:
    """The forwarder process for one namespace (see the module's docstring)."""

    def __init__(self, namespace: str, port: int, target: int, ready: Path) -> None:
        self.ready = ready
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.netns", namespace, str(port), str(target),
             str(ready)], cwd=str(Path(__file__).resolve().parents[2]),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


if __name__ == "__main__":
    forward(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
