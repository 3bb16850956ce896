"""One desk over two nodes on this machine, joined by a real NATS server on loopback: each
node has its own supervisor and run dir (RUN_DIR/NODE), and nothing crosses between them but
NATS."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.desk import Desk, alive, processes_mentioning, shm_segments
from tests.waiting import wait_for
from tradeops.process.paths import RunPaths

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

NATS_SERVER = Path(sys.executable).parent / "nats-server"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answers(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class NatsServer:
    """A real nats-server on a free loopback port, which a test may stop and start again;
    with a `store` dir, with JetStream keeping its streams there."""

    def __init__(self, log: Path, store: Path | None = None, config: str = "") -> None:
        self.port = free_port()
        self.log = log
        self.store = store
        # Extra server configuration (TLS, users): written to a file beside the log.
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        jetstream = ["-js", "-sd", str(self.store)] if self.store is not None else []
        conf: list[str] = []
        if self.config:
            file = self.log.with_suffix(".conf")
            file.write_text(self.config)
            conf = ["-c", str(file)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(NATS_SERVER), *conf, "-a", "127.0.0.1", "-p", str(self.port), *jetstream],
                stdout=log, stderr=subprocess.STDOUT)
        proc = self.proc
        wait_for(lambda: answers(self.port) or proc.poll() is not None, 30, "nats-server")
        assert proc.poll() is None, self.log.read_text()

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        assert not alive(self.proc.pid)
        self.proc = None


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[NatsServer]:
    """Started before the test, stopped (and proved gone) after it."""
    server = NatsServer(tmp_path / "nats.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Cluster:
    """A two-node desk: node `a` runs the broker's gateway, node `b` the strategy."""

    def __init__(self, tmp_path: Path, port: int, out: Path, strategies: str = "",
                 cluster: str = "", processes: str = "", node_b: str = "cores: 64") -> None:
        recorder = (f"  rec:\n    class: tests.e2e.strategies:SeqRecorder\n    broker: sim\n"
                    f"    symbols: [AAPL, MSFT]\n    params: {{out: \"{out}\"}}")
        member = "trader" if strategies else "rec"
        self.desk = Desk(tmp_path, "duo", f"""
  cluster:
    nats: nats://127.0.0.1:{port}
    nodes: {{a: {{cores: 64}}, b: {{{node_b}}}}}
    grace: 2s
{cluster}brokers:
  sim:
    adapter: sim
    market: {{seed: 7, rate: 50}}
    node: a
strategies:
{strategies or recorder}
processes:
{processes or f"  far: {{strategies: [{member}], node: b}}"}
""")
        self.root = RunPaths(self.desk.run_dir.resolve(), "duo")

    def paths(self, node: str) -> RunPaths:
        return self.root.on_node(node)

    def up(self, node: str) -> None:
        result = self.desk.cli("up", "--detach", str(self.desk.file), "--node", node,
                               timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr

    def status_cli(self, node: str) -> dict[str, Any]:
        import json

        result = self.desk.cli("status", "--file", str(self.desk.file), "--node", node,
                               "--format", "json")
        assert result.returncode in (0, 1), result.stdout + result.stderr
        reply: dict[str, Any] = json.loads(result.stdout)
        reply["code"] = result.returncode
        return reply

    def status(self, node: str) -> dict[str, Any]:
        from tradeops.supervisor.control import request

        return request(self.paths(node).control, {"cmd": "status"})

    def row(self, node: str, name: str) -> dict[str, Any]:
        (row,) = [p for p in self.status(node)["processes"] if p["name"] == name]
        return row

    def cleanup(self) -> None:
        from tradeops.supervisor.control import NotRunning, request

        for node in ("b", "a"):
            with contextlib.suppress(NotRunning, OSError):
                reply = request(self.paths(node).control, {"cmd": "down"}, timeout=120)
                pid = int(reply.get("pid", 0))
                wait_for(lambda pid=pid: not alive(pid), 30, f"node {node}'s supervisor")
        for pid in processes_mentioning(str(self.desk.file)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        left = [s for node in ("a", "b") for s in shm_segments(self.paths(node).bus)]
        for seg in left:
            (Path("/dev/shm") / seg).unlink(missing_ok=True)
        assert processes_mentioning(str(self.desk.file)) == [], "a process outlived the test"
        assert left == [], f"shared memory outlived the test: {left}"


@pytest.fixture
def cluster(tmp_path: Path, nats: NatsServer) -> Iterator[Cluster]:
    duo = Cluster(tmp_path, nats.port, tmp_path / "rec.seq")
    try:
        yield duo
    finally:
        duo.cleanup()


def seqs(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def gateway_ticks(paths: RunPaths) -> dict[int, tuple[str, str]]:
    """Every tick node a's gateway ring holds: seq -> (symbol, kind)."""
    from tradeops.bus.reader import RingReader

    reader = RingReader(paths.bus, "sim", start="oldest")
    try:
        return {t.seq: (t.symbol, t.kind) for t in reader.read(1_000_000)}
    finally:
        reader.close()


def test_a_strategy_on_another_node_gets_every_tick_of_the_gateway_in_order(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.up("a")
    names = {p["name"]: p["role"] for p in cluster.status("a")["processes"]}
    assert names == {"sim-sim": "sim", "gateway-sim": "gateway", "proxy": "proxy",
                     "bridge-sim": "bridge"}
    lonely = cluster.status_cli("a")
    assert lonely["code"] == 1  # degraded: node b does not answer, and is said so
    assert "error" in lonely["nodes"]["b"]
    assert any("node b is unreachable" in p for p in lonely["degraded"])
    cluster.up("b")
    names = {p["name"]: p["role"] for p in cluster.status("b")["processes"]}
    assert names == {"remote-sim": "remote", "far": "host"}
    # Any node's status shows the whole desk: node a's processes, asked from node b.
    whole = wait_for(lambda: (lambda r: r if "processes" in r["nodes"]["a"] else None)(
        cluster.status_cli("b")), 30, "node a answering over NATS")
    assert {p["name"] for p in whole["nodes"]["a"]["processes"]} == {
        "sim-sim", "gateway-sim", "proxy", "bridge-sim"}
    assert cluster.paths("a").run_dir != cluster.paths("b").run_dir
    out = tmp_path / "rec.seq"
    wait_for(lambda: len(seqs(out)) >= 200, 60, "200 ticks on node b")
    seen = seqs(out)
    upstream = gateway_ticks(cluster.paths("a"))
    # Every trade of the gateway's ring between the first and the last tick node b's strategy
    # saw, with the gateway's own seq numbers, in order: nothing lost, nothing repeated.
    expected = [s for s in sorted(upstream)
                if seen[0] <= s <= seen[-1] and upstream[s][0] in ("AAPL", "MSFT")
                and upstream[s][1] == "trade"]
    assert seen[: len(expected)] == expected
    assert len(expected) >= 200
    far = cluster.row("b", "far")
    assert far["stats"].get("lost", 0) == 0, far
    gateway = cluster.row("a", "gateway-sim")
    assert gateway["stats"]["symbols"] == 2  # node b's one lease holds both symbols
    # A command from node a reaches the supervisor of node b, where the group runs.
    result = cluster.desk.cli("restart", "far", "--file", str(cluster.desk.file), "--node", "a")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "on node b" in result.stdout
    wait_for(lambda: cluster.row("b", "far")["restarts"] == 1
             and cluster.row("b", "far")["state"] == "running", 60, "far restarted on node b")


def test_a_silent_node_loses_its_lease_after_the_grace_and_gets_it_back(
    cluster: Cluster,
) -> None:
    cluster.up("a")
    cluster.up("b")
    wait_for(lambda: cluster.row("a", "gateway-sim")["stats"].get("symbols") == 2, 60,
             "node b's symbols at the gateway")
    remote = int(cluster.row("b", "remote-sim")["pid"])
    os.kill(remote, signal.SIGSTOP)  # node b goes silent: no goodbye, no heartbeat
    try:
        wait_for(lambda: cluster.row("a", "gateway-sim")["stats"].get("symbols") == 0, 60,
                 "the gateway to release node b's symbols")
        log = (cluster.paths("a").logs / "bridge-sim.log").read_text()
        assert "node 'b' not heard for 2s: releasing its subscriptions" in log
    finally:
        os.kill(remote, signal.SIGCONT)
    # Its next heartbeat carries everything it wants: the lease is taken again.
    wait_for(lambda: cluster.row("a", "gateway-sim")["stats"].get("symbols") == 2, 60,
             "node b's symbols back at the gateway")
    assert cluster.row("b", "remote-sim")["pid"] == remote


def test_a_node_up_before_the_gateway_s_waits_and_going_down_releases_its_symbols(
    cluster: Cluster,
) -> None:
    cluster.up("b")  # before the gateway's node: its subscriptions wait, its gate is closed
    wait_for(lambda: "unreachable over NATS" in str(
        cluster.row("b", "remote-sim")["stats"].get("reason")), 30, "node b's gate closed")
    cluster.up("a")
    wait_for(lambda: cluster.row("a", "gateway-sim")["stats"].get("symbols") == 2, 60,
             "node b's symbols at the gateway")
    result = cluster.desk.cli("down", "--file", str(cluster.desk.file), "--node", "b",
                              timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "remote-sim" in result.stdout
    wait_for(lambda: cluster.row("a", "gateway-sim")["stats"].get("symbols") == 0, 60,
             "the gateway to release node b's symbols")
    assert cluster.row("a", "gateway-sim")["state"] == "running"


def test_a_nats_outage_closes_the_remote_gate_and_ticks_resume_after_it(
    cluster: Cluster, nats: NatsServer, tmp_path: Path
) -> None:
    cluster.up("a")
    cluster.up("b")
    out = tmp_path / "rec.seq"
    wait_for(lambda: len(seqs(out)) >= 20, 60, "ticks on node b")

    def remote() -> dict[str, Any]:
        stats: dict[str, Any] = cluster.row("b", "remote-sim")["stats"]
        return stats

    wait_for(lambda: remote().get("live") is True, 30, "node b's gate open")
    nats.stop()
    wait_for(lambda: remote().get("live") is False, 30, "node b's gate closed")
    assert remote()["reason"] == "NATS is unreachable"
    host_log = cluster.paths("b").logs / "far.log"
    wait_for(lambda: "sim is not safe to trade: NATS is unreachable" in host_log.read_text(),
             30, "the strategy's host told the gate closed")
    before = len(seqs(out))
    nats.start()  # the same address: both bridges reconnect and resubscribe
    wait_for(lambda: remote().get("live") is True, 60, "node b's gate open again")
    wait_for(lambda: len(seqs(out)) >= before + 50, 60, "ticks resumed on node b")
    seen = seqs(out)
    assert seen == sorted(set(seen)), "a tick repeated or out of order across the outage"


def test_a_single_machine_desk_needs_no_nats(
    make_desk: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    poisoned = tmp_path / "poison"
    (poisoned / "nats").mkdir(parents=True)
    (poisoned / "nats" / "__init__.py").write_text(
        "raise ImportError('a single-machine desk must not import nats')\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(poisoned), *filter(None, [os.environ.get("PYTHONPATH")])]))
    probe = subprocess.run([sys.executable, "-c", "import nats"], capture_output=True,
                           text=True, timeout=60)
    assert "must not import nats" in probe.stderr  # the poison works
    out = tmp_path / "solo.seq"
    desk = make_desk("solo", f"""
brokers:
  sim:
    adapter: sim
    market: {{seed: 3, rate: 50}}
strategies:
  rec:
    class: tests.e2e.strategies:SeqRecorder
    broker: sim
    symbols: [AAPL]
    params: {{out: "{out}"}}
""")
    desk.up()
    wait_for(lambda: len(seqs(out)) >= 10, 60, "ticks on a single machine")
    assert {p["role"] for p in desk.status()["processes"]} == {"sim", "gateway", "proxy",
                                                                "host"}


def test_orders_from_another_node_fill_and_a_silent_node_s_orders_are_cancelled(
    tmp_path: Path, nats: NatsServer
) -> None:
    import json

    out = tmp_path / "trader.jsonl"
    trader = f"""  trader:
    class: tests.orders.strategies:OrderBot
    broker: sim
    symbols: [AAPL]
    params: {{out: "{out}", symbol: AAPL, orders: [[buy, 1, null], [buy, 1, 1.0]]}}"""
    duo = Cluster(tmp_path, nats.port, out, strategies=trader)
    try:
        duo.up("a")
        duo.up("b")

        def events(kind: str) -> list[dict[str, Any]]:
            lines = out.read_text().splitlines() if out.exists() else []
            return [e for e in map(json.loads, lines) if e["event"] == kind]

        # The market order fills and its fill comes back to the strategy on node b.
        filled = wait_for(lambda: events("filled"), 60, "the fill on node b")
        assert filled[0]["fill_qty"] == 1 and filled[0]["position"] == 1
        sent = [e["order_id"] for e in events("sent")]
        resting = sent[1]
        wait_for(lambda: any(e["order_id"] == resting for e in events("accepted")), 60,
                 "the resting order accepted")
        journal = duo.paths("a").run_dir / "orders.jsonl"
        remote = int(duo.row("b", "remote-sim")["pid"])
        os.kill(remote, signal.SIGSTOP)  # node b goes silent with an order working
        try:
            def auto_cancelled() -> bool:
                entries = [json.loads(x) for x in journal.read_text().splitlines()]
                return any(e["event"] == "auto_cancel" and e.get("group") == "far"
                           for e in entries) and any(e["event"] == "cancelled"
                                                     for e in entries)

            wait_for(auto_cancelled, 60, "node b's group auto-cancelled at the gateway")
        finally:
            os.kill(remote, signal.SIGCONT)
    finally:
        duo.cleanup()


def test_a_gateway_restart_reaches_the_other_node_as_a_new_epoch(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.up("a")
    cluster.up("b")
    out = tmp_path / "rec.seq"
    wait_for(lambda: len(seqs(out)) >= 20, 60, "ticks on node b")
    gateway = int(cluster.row("a", "gateway-sim")["pid"])
    os.kill(gateway, signal.SIGKILL)
    wait_for(lambda: cluster.row("a", "gateway-sim")["restarts"] >= 1
             and cluster.row("a", "gateway-sim")["state"] == "running", 60,
             "node a's gateway restarted")
    # The stand-in on node b starts anew with a new local ring; the host re-attaches and
    # resubscribes, and the bridge resubscribes node b at the new gateway.
    wait_for(lambda: cluster.row("b", "remote-sim")["restarts"] >= 1, 60,
             "node b's stand-in restarted for the new epoch")
    before = len(seqs(out))
    wait_for(lambda: len(seqs(out)) >= before + 50, 90, "ticks of the new gateway on node b")
    # The new gateway's stats are written once a second: ticks may come before they show.
    wait_for(lambda: cluster.row("a", "gateway-sim")["stats"].get("symbols") == 2, 30,
             "node b's symbols at the new gateway")


def test_a_remote_node_receives_only_the_symbols_its_hosts_want(
    tmp_path: Path, nats: NatsServer
) -> None:
    """Node a's own strategy holds NVDA at the gateway; node b's holds AAPL and MSFT. Only
    AAPL and MSFT cross to node b: its ring holds their records under the gateway's seqs, and
    every other seq there is a hole record."""
    out, local = tmp_path / "rec.seq", tmp_path / "local.seq"
    strategies = (
        f"  rec:\n    class: tests.e2e.strategies:SeqRecorder\n    broker: sim\n"
        f"    symbols: [AAPL, MSFT]\n    params: {{out: \"{out}\"}}\n"
        f"  here:\n    class: tests.e2e.strategies:SeqRecorder\n    broker: sim\n"
        f"    symbols: [NVDA]\n    params: {{out: \"{local}\"}}")
    duo = Cluster(tmp_path, nats.port, out, strategies=strategies,
                  processes="  far: {strategies: [rec], node: b}\n"
                            "  near: {strategies: [here], node: a}")
    try:
        duo.up("a")
        duo.up("b")
        wait_for(lambda: len(seqs(out)) >= 100 and len(seqs(local)) >= 20, 60,
                 "ticks on both nodes")
        from tradeops.bus.reader import RingReader

        mirror = RingReader(duo.paths("b").bus, "sim", start="oldest")
        try:
            held = mirror.read(1_000_000)
        finally:
            mirror.close()
        upstream = gateway_ticks(duo.paths("a"))
        assert {s for s, _ in upstream.values()} == {"AAPL", "MSFT", "NVDA"}
        symbols = {t.symbol for t in held if t.kind != "unknown"}
        assert symbols == {"AAPL", "MSFT"}, symbols  # NVDA never crossed
        for tick in held:
            if tick.kind != "unknown" and tick.seq in upstream:
                assert upstream[tick.seq] == (tick.symbol, tick.kind)  # the gateway's seqs
        remote = duo.row("b", "remote-sim")["stats"]
        assert remote["gaps"] == 0, remote  # no read lost between the nodes
        assert duo.row("b", "far")["stats"].get("lost", 0) == 0
    finally:
        duo.cleanup()


def test_a_depth_strategy_on_another_node_gets_the_gateways_books(
    tmp_path: Path, nats: NatsServer
) -> None:
    """Books cross with their depth records: node b's book table holds each book before the
    record announcing it, so on_book and self.book() there see what the gateway keeps."""
    books, quotes = tmp_path / "books.txt", tmp_path / "quotes.txt"
    strategy = (f"  deep:\n    class: tests.e2e.strategies:BookRecorder\n    broker: sim\n"
                f"    symbols: [BTC/USD]\n    mode: depth\n"
                f"    params: {{out: \"{books}\", quotes: \"{quotes}\"}}")
    duo = Cluster(tmp_path, nats.port, books, strategies=strategy,
                  processes="  far: {strategies: [deep], node: b}")
    duo.desk.edit("    adapter: sim\n", "    adapter: sim\n    feed: crypto\n")
    try:
        duo.up("a")
        duo.up("b")

        def lines() -> list[list[str]]:
            return [x.split() for x in books.read_text().splitlines()] if books.exists() else []

        wait_for(lambda: len(lines()) >= 20, 60, "20 books on node b")
        seen = lines()
        assert {line[0] for line in seen} == {"BTC/USD"}
        versions = [int(line[2]) for line in seen]
        assert versions == sorted(versions) and len(set(versions)) == len(versions)
        deepest = max(int(line[3]) for line in seen)
        assert deepest > 1, "only the best level crossed"
        for line in seen:
            bid = float(line[6].split(":")[0]) if line[3] != "0" else None  # after "|"
            ask_at = line.index("|", 6) + 1
            ask = float(line[ask_at].split(":")[0]) if line[4] != "0" else None
            if bid is not None and ask is not None:
                assert bid < ask, line
        far = duo.row("b", "far")
        assert far["state"] == "running" and not far.get("error"), far  # self.book() agreed
    finally:
        duo.cleanup()


def test_halt_and_resume_from_another_node_reach_the_gateway(
    tmp_path: Path, nats: NatsServer
) -> None:
    """Desk commands for a gateway (halt, resume) run from a node without it: its node's
    supervisor passes them to the gateway, over NATS. The halt cancels node b's resting order
    at the simulated exchange itself."""
    import json
    import urllib.request

    out = tmp_path / "trader.jsonl"
    trader = f"""  trader:
    class: tests.orders.strategies:OrderBot
    broker: sim
    symbols: [AAPL]
    params: {{out: "{out}", symbol: AAPL, orders: [[buy, 1, 1.0]]}}"""
    cluster = Cluster(tmp_path, nats.port, out, strategies=trader)
    try:
        cluster.up("a")
        cluster.up("b")
        journal = cluster.paths("a").run_dir / "orders.jsonl"

        def events() -> list[str]:
            lines = journal.read_text().splitlines() if journal.exists() else []
            return [json.loads(x).get("event", "") for x in lines]

        def bot(kind: str) -> list[dict[str, Any]]:
            lines = out.read_text().splitlines() if out.exists() else []
            return [e for e in map(json.loads, lines) if e["event"] == kind]

        wait_for(lambda: bot("accepted"), 60, "node b's resting order accepted")
        resting = bot("accepted")[0]["client_order_id"]
        http = cluster.row("a", "sim-sim")["detail"]["http"]

        def at_the_sim() -> str:
            with urllib.request.urlopen(f"{http}/admin/orders", timeout=5) as resp:
                orders = json.loads(resp.read())["orders"]
            return next((o["status"] for o in orders if o["client_order_id"] == resting), "")

        assert at_the_sim() in ("new", "accepted")
        halted = cluster.desk.cli("halt", "sim", "--file", str(cluster.desk.file),
                                  "--node", "b")
        assert halted.returncode == 0, halted.stdout + halted.stderr
        assert "halted" in halted.stdout
        wait_for(lambda: "halt" in events(), 30, "the halt in node a's journal")
        wait_for(lambda: at_the_sim() == "canceled", 30, "the order cancelled at the sim")
        resumed = cluster.desk.cli("resume", "sim", "--file", str(cluster.desk.file),
                                   "--node", "b")
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        wait_for(lambda: "resume" in events(), 30, "the resume in node a's journal")
        # A broker no node has is said plainly, as on one machine.
        unknown = cluster.desk.cli("halt", "nosuch", "--file", str(cluster.desk.file),
                                   "--node", "b")
        assert unknown.returncode == 2 and "knows 'nosuch'" in unknown.stdout + unknown.stderr
    finally:
        cluster.cleanup()
