"""The supervisor loop: spawn a desk's processes in order, watch them, obey commands.

One loop, one thread. Everything that happens becomes an event on it: a child's output or
ready line, a child's exit, a timer, a signal to the supervisor, a command on the control
socket. Signal handlers only record the signal (the wakeup fd wakes the loop), and the loop
acts on it between other events, so a SIGTERM arriving while a child is being reaped cannot
overwrite that child's state change. Each process's lifecycle is decided by `lifecycle.step`;
this module carries out the actions. Children run in sessions of their own and die with the
supervisor (PR_SET_PDEATHSIG), so a `kill -9` of the supervisor leaves nothing running.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeops.bus.layout import DEFAULT_CAPACITY
from tradeops.bus.space import broker_bus, desk_room_problem
from tradeops.process import child as contract
from tradeops.process.credentials import generate_sim_credentials
from tradeops.process.fingerprint import fingerprints, reload_prints
from tradeops.process.paths import RunPaths
from tradeops.process.spec import ProcessSpec, process_specs
from tradeops.runtime.config import launch_of
from tradeops.supervisor import children
from tradeops.supervisor.apply import Change, Rollout, plan
from tradeops.supervisor.children import Child
from tradeops.supervisor.control import ControlConnection, ControlServer
from tradeops.supervisor.desklock import (
    AlreadyRunning,
    CannotStart,
    DeskLock,
    remove_leftovers,
    unusable_run_dir,
)
from tradeops.supervisor.lifecycle import (
    Action,
    Event,
    Exited,
    Proc,
    Ready,
    Report,
    Restart,
    Signal,
    Spawn,
    Spawned,
    Start,
    Stop,
    Timer,
    step,
)
from tradeops.supervisor.procstats import CpuMeter, rss_bytes
from tradeops.supervisor.states import ProcessState as S
from tradeops.supervisor.tiers import LAST_TIER, TierClock, next_tier
from tradeops.topology.model import Topology

if TYPE_CHECKING:
    from tradeops.cluster.status import StatusAnswerer
    from tradeops.supervisor.alerts import AlertService
    from tradeops.supervisor.metrics import MetricsServer

__all__ = ["AlreadyRunning", "CannotStart", "Supervisor"]

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)


#: The desk commands another node may send to a gateway here (docs/cluster.md).
GATEWAY_OPS = ("halt", "resume", "flatten", "ack_positions")

class Supervisor:
    def __init__(
        self,
        topology: Topology,
        topology_file: Path,
        paths: RunPaths,
        console: Callable[[str], None],
        node: str | None = None,
    ) -> None:
        self.topology = topology
        self.node = node  # settings.cluster: the node this supervisor runs (docs/cluster.md)
        self.topology_file = topology_file.resolve()
        self.paths = paths
        self.console = _serialised(console)  # the loop and the alert threads both write
        self.children = {s.name: Child(s, Proc(s.name, s.restart))
                         for s in process_specs(topology, node)}
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._control: ControlServer | None = None
        self._lock = DeskLock(paths)
        self._stopping = False
        self._down_waiters: list[ControlConnection] = []
        self._tiers = TierClock()
        self._signals: deque[int] = deque()
        self._cpu = CpuMeter()
        self.started = time.time()
        self._sim_env = generate_sim_credentials(dict(topology.brokers))
        #: What a metrics scrape reads (on its own thread): replaced whole by the loop.
        self.table: list[dict[str, Any]] = []
        self.metrics: MetricsServer | None = None
        self.metrics_error = ""
        self.alerts: AlertService | None = None
        self.answerer: StatusAnswerer | None = None  # settings.cluster: status over NATS
        self.prints = fingerprints(topology)  # what each process runs with (apply)
        self.reload_prints = reload_prints(topology)
        self._reloading: dict[str, threading.Thread] = {}
        self._posted: deque[Callable[[], None]] = deque()
        self.rollout: Rollout | None = None
        self._removing: set[str] = set()
        self.last_apply: list[str] = []
        self._loaded: tuple[tuple[object, ...], Topology | None] | None = None

    # -- start and stop ------
    def acquire(self) -> None:
        """Take the desk's lock and bind its control socket; AlreadyRunning if another has it."""
        self._lock.acquire(os.getpid())
        brokers = [c.spec.broker for c in self.children.values() if c.spec.role == "gateway"]
        remove_leftovers(self.paths, brokers, self.console)
        problem = desk_room_problem(self._buses())
        if problem is not None:
            self._lock.release()
            raise CannotStart(f"{problem}; nothing was started")
        try:
            self._control = ControlServer(self.paths.control)
        except OSError as exc:
            self._lock.release()
            raise unusable_run_dir(self.paths, exc) from None
        self._selector.register(self._control.sock, selectors.EVENT_READ, ("control", None))
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self._start_metrics()
        self._start_alerts()
        cluster = self.topology.settings.cluster
        if cluster is not None and self.node is not None:
            from tradeops.cluster.status import StatusAnswerer  # only a cluster needs NATS

            self.answerer = StatusAnswerer(cluster, self.topology.name, self.node,
                                           lambda: self.table, self._remote_command)
            self.answerer.start()

    def _buses(self) -> dict[str, int]:
        """Bytes of shared memory each broker's bus on this node takes: its gateway's, or the
        stand-in of a gateway on another node (`remote`, with the node's ring capacity)."""
        cluster = self.topology.settings.cluster
        node = cluster.nodes.get(self.node) if cluster is not None and self.node else None
        stand_in = (node.ring_capacity if node is not None else None) or DEFAULT_CAPACITY
        sizes = {"gateway": sum(broker_bus(DEFAULT_CAPACITY).values()),
                 "remote": sum(broker_bus(stand_in).values())}  # fmt: skip
        return {c.spec.broker: sizes[c.spec.role] for c in self.children.values()
                if c.spec.role in sizes}  # fmt: skip

    def _remote_command(self, command: dict[str, Any]) -> dict[str, Any]:
        """`restart`, `stop` or `start` asked from another node (on the answerer's thread):
        carried out on the loop, like a command on the control socket. `gateway`: a desk
        command for a gateway of this node (halt, resume, flatten, orders --ack), passed to
        its socket from this thread."""
        if command.get("cmd") == "gateway":
            return self._gateway_command(command)
        if command.get("cmd") not in ("restart", "stop", "start"):
            return {"ok": False, "error": "only restart, stop, start and gateway commands "
                                          "cross nodes"}
        from concurrent.futures import Future

        from tradeops.supervisor.commands import handle

        done: Future[dict[str, Any] | None] = Future()

        def run() -> None:
            try:
                done.set_result(handle(self, command))
            except Exception as exc:
                done.set_exception(exc)

        self._post(run)
        return done.result(timeout=10.0) or {"ok": False, "error": "no reply"}

    def _gateway_command(self, command: dict[str, Any]) -> dict[str, Any]:
        from tradeops.gateway.client import GatewayClient, GatewayError

        broker, message = command.get("broker"), command.get("message")
        if not isinstance(broker, str) or broker not in self.topology.brokers:
            return {"ok": False, "error": f"no broker {broker!r} in desk "
                                          f"'{self.topology.name}'"}
        if not isinstance(message, dict) or message.get("op") not in GATEWAY_OPS:
            return {"ok": False, "error": f"only {', '.join(GATEWAY_OPS)} reach a gateway "
                                          "from another node"}
        sock = self.paths.gateway_socket(broker)
        try:
            with GatewayClient(str(sock), str(command.get("who") or "another node")) as client:
                return {"ok": True, "reply": client.request(message)}
        except GatewayError as exc:
            return {"ok": False, "error": f"the gateway of broker '{broker}' on node "
                                          f"'{self.node}': {exc}"}

    def _start_alerts(self) -> None:
        sinks = self.topology.settings.alerts
        if not sinks:
            return
        from tradeops.supervisor.alerts import AlertService  # only when used

        self.alerts = AlertService(self.topology.name, self.paths.run_dir, list(sinks),
                                   lambda: self.table, self._watched_disks, self.console)
        self.alerts.start()

    def _start_metrics(self) -> None:
        """Serve /metrics when the topology asks; a port that cannot be bound is reported
        (console and status) and the desk runs without metrics."""
        settings = self.topology.settings.metrics
        if settings is None:
            return
        from tradeops.supervisor.metrics import DeskCollector, MetricsServer  # only when used

        token = settings.token.get_secret_value() if settings.token else None
        collector = DeskCollector(self.topology.name, self.paths.run_dir, lambda: self.table,
                                  lambda: self.alerts.status() if self.alerts else [])
        try:
            self.metrics = MetricsServer(settings.host, settings.port, token, collector)
        except OSError as exc:
            self.metrics_error = f"cannot listen on {settings.listen}: {exc.strerror or exc}"
            self.console(f"supervisor | ERROR   | metrics: {self.metrics_error}")
            return
        self.metrics.start()
        self.console(f"supervisor | metrics on {self.metrics.url}")

    def run(self, on_ready: Callable[[], None] | None = None) -> int:
        """Run until `down`, SIGTERM or SIGINT; returns the exit status for `up`."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in HANDLED_SIGNALS}
        old_wakeup = signal.set_wakeup_fd(self._wake_w.fileno())
        announced = False
        try:
            self._advance_tier()
            while True:
                self._poll(self._timeout())
                self._handle_signals()
                self._reap()
                self._timers()
                while self._posted:
                    self._posted.popleft()()
                self._advance_apply()
                if self.metrics is not None or self.alerts is not None or self.answerer:
                    self.table = [self._light_row(c) for c in self.children.values()]
                if not self._stopping:
                    self._advance_tier()
                    if not announced and self._tiers.tier >= LAST_TIER and self._all_settled():
                        announced = True
                        self.console(f"supervisor | desk '{self.topology.name}' is up")
                        if on_ready is not None:
                            on_ready()
                elif self._everything_down():
                    break
        finally:
            self._finish()
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def _finish(self) -> None:
        if self.answerer is not None:
            self.answerer.stop()
        if self.metrics is not None:
            self.metrics.close()
        if self.alerts is not None:
            self.alerts.stop()
        for c in self.children.values():  # anything still alive: the whole group goes
            children.kill_now(c)
        stopped = [c.spec.name for c in self.children.values()]
        from tradeops.bus.names import remove_segments

        remove_segments(self.paths.bus)
        if self._control is not None:
            self._control.close()
        self._lock.release()
        self.console(f"supervisor | desk '{self.topology.name}' is down")
        # Answered last: when `tradeops down` returns, only this process's exit remains.
        left = [o for c in self.children.values() for o in c.detail.get("left_working", [])]
        for conn in self._down_waiters:
            ControlServer.reply(conn, {"ok": True, "stopped": stopped, "pid": os.getpid(),
                                       "left_working": left})
            conn.sock.close()

    def _on_signal(self, signum: int, frame: object) -> None:
        """Only record it: the loop acts on it (`_handle_signals`)."""
        self._signals.append(signum)

    def _handle_signals(self) -> None:
        while self._signals:
            if self._signals.popleft() != signal.SIGCHLD:  # SIGCHLD only wakes the loop
                self.shutdown()

    def shutdown(self) -> None:
        """Stop everything: hosts first (their orders are cancelled per policy), then
        gateways, then simulated exchanges."""
        if not self._stopping:
            self.console("supervisor | stopping the desk")
        self._stopping = True
        self._stop_tier_down()

    def _stop_tier_down(self) -> None:
        alive = [c.spec.tier for c in self.children.values() if _running(c)]
        if not alive:
            return
        top = max(alive)
        for c in self.children.values():
            if c.spec.tier == top and c.proc.state is not S.STOPPING:
                self.apply(c, Stop())

    def _everything_down(self) -> bool:
        if any(_running(c) for c in self.children.values()):
            self._stop_tier_down()
            return False
        return True

    # -- apply: a new topology for the running desk ------
    def begin_apply(self, path: Path, dry_run: bool, expect: str = "") -> dict[str, Any]:
        """Plan the change to the topology at `path` and, unless `dry_run`, start carrying
        it out (`_advance_apply`). The reply holds the plan."""
        from tradeops.topology.load import TopologyError, load_topology

        if self._stopping:
            return {"ok": False, "error": "the desk is stopping"}
        if self.rollout is not None:
            return {"ok": False, "error": "an apply is under way; wait for it to finish"}
        try:
            new = load_topology(path)
        except TopologyError as exc:
            first = exc.findings[0] if exc.findings else None
            where = f"{first.line}: {first.message}" if first else str(exc)
            return {"ok": False, "error": f"{path} does not load: {where}; run "
                                          f"`tradeops validate {path}`"}
        except OSError as exc:
            return {"ok": False, "error": f"cannot read {path}: {exc.strerror or exc}"}
        if new.name != self.topology.name:
            return {"ok": False, "error": f"the file names desk '{new.name}', this is desk "
                    f"'{self.topology.name}': a new name is a new desk (`tradeops down`, then "
                    "`tradeops up`)"}
        expected = RunPaths.of(new, path)
        if self.node is not None:
            expected = expected.on_node(self.node)
        if expected.run_dir != self.paths.run_dir:
            return {"ok": False, "error": "settings.run_dir changed: the run dir holds the "
                    "desk's sockets and state, so it changes only with `down` and `up`"}
        specs = {s.name: s for s in process_specs(new, self.node)}
        prints = fingerprints(new)
        stopped = {n for n, c in self.children.items() if c.proc.state is S.STOPPED}
        running = {n: (c.spec, self.prints[n]) for n, c in self.children.items()}
        new_reloads = reload_prints(new)
        reloads = {n: (self.reload_prints.get(n, ""), new_reloads[n]) for n in new_reloads}
        changes = plan(running, specs, prints, stopped, reloads)
        services = [name for name, old, now in (
            ("metrics", self.topology.settings.metrics, new.settings.metrics),
            ("alerts", self.topology.settings.alerts, new.settings.alerts)) if old != now]
        lines = [c.line() for c in changes] + [f"~ restart {s} (in the supervisor)"
                                               for s in services]
        digest = str(hash(tuple(lines)))
        reply = {"ok": True, "plan": lines, "digest": digest,
                 "changes": sum(c.verb != "keep" for c in changes) + len(services)}
        if dry_run or not reply["changes"]:
            return reply
        if expect and expect != digest:
            return {"ok": False, "error": "the desk or the file changed since the plan was "
                                          "shown; run `tradeops apply` again"}
        self._commit_apply(new, path, specs, prints, changes, services)
        self.reload_prints = new_reloads
        return reply

    def _commit_apply(self, new: Topology, path: Path, specs: dict[str, ProcessSpec],
                      prints: dict[str, str], changes: list[Change], services: list[str]
                      ) -> None:
        self.console(f"supervisor | applying {path}: " + "; ".join(
            c.line() for c in changes if c.verb != "keep"))
        self.topology, self.topology_file, self.prints = new, path.resolve(), prints
        env = generate_sim_credentials(dict(new.brokers))  # new sims' logins; keep the old
        if env:
            import json

            from tradeops.process.credentials import SIM_CREDENTIALS

            pairs = json.loads(env[SIM_CREDENTIALS])
            pairs.update(json.loads(self._sim_env.get(SIM_CREDENTIALS, "{}")))
            self._sim_env = {SIM_CREDENTIALS: json.dumps(pairs)}
        for change in changes:
            spec = specs.get(change.name)
            if spec is None:  # stops: the old spec stays until it is removed
                continue
            if change.verb == "start":
                self.children[change.name] = Child(spec, Proc(change.name, spec.restart))
            else:
                c = self.children[change.name]
                c.spec, c.proc = spec, replace(c.proc, policy=spec.restart)
        self._removing = {c.name for c in changes if c.verb == "stop"}
        self.rollout = Rollout.of(changes)
        if "metrics" in services:
            if self.metrics is not None:
                self.metrics.close()
                self.metrics = None
            self.metrics_error = ""
            self._start_metrics()
        if "alerts" in services:
            if self.alerts is not None:
                self.alerts.stop()
                self.alerts = None
            self._start_alerts()

    def _watched_disks(self) -> list[Path]:
        """Where the desk writes: the run dir, and the recording directory if it records (a
        relative one is relative to the topology's folder, as the recorder takes it)."""
        record = self.topology.settings.record
        if record is None:
            return [self.paths.run_dir]
        path = Path(record.dir).expanduser()
        return [self.paths.run_dir, path if path.is_absolute()
                else self.topology_file.parent / path]

    def _advance_apply(self) -> None:
        rollout = self.rollout
        if rollout is None:
            return
        for name, thread in list(self._reloading.items()):
            if not thread.is_alive():
                del self._reloading[name]
        states = {n: S.STARTING if n in self._reloading else c.proc.state
                  for n, c in self.children.items()}
        step = rollout.advance(states, time.monotonic())
        if step is not None and step.verb == "reload":
            for name in step.names:
                self._reload(self.children[name])
        elif step is not None:
            for name in step.names:
                event: Event = (Stop() if step.verb == "stop" else Restart()
                                if step.verb == "restart" else Start())
                self.apply(self.children[name], event)
        if rollout.finished:
            for name in self._removing:
                if not _running(self.children[name]):
                    del self.children[name]
            self._removing = set()
            self.last_apply = rollout.done
            self.rollout = None
            self.console("supervisor | apply done: " + "; ".join(rollout.done))

    def _reload(self, c: Child) -> None:
        """Ask a running gateway to load its strategies' limits and groups from the new file,
        on a thread (the loop never waits on a child); one that cannot is restarted."""
        sock, path = str(self.paths.gateway_socket(c.spec.broker)), str(self.topology_file)

        def ask() -> None:
            from tradeops.gateway.client import GatewayClient, GatewayError

            try:
                with GatewayClient(sock, "supervisor", timeout=10.0) as client:
                    reply = client.request({"op": "reload", "topology": path})
                error = "" if reply.get("ok") else str(reply.get("error"))
            except GatewayError as exc:
                error = str(exc)
            if error:
                self.console(f"supervisor | WARNING | {c.spec.name} could not reload ({error}); "
                             "restarting it")
                self._post(lambda: self.apply(c, Restart()))

        thread = threading.Thread(target=ask, name=f"reload-{c.spec.name}", daemon=True)
        self._reloading[c.spec.name] = thread
        thread.start()

    def _post(self, action: Callable[[], None]) -> None:
        """Run `action` on the loop (from another thread)."""
        self._posted.append(action)
        with suppress(OSError):
            self._wake_w.send(b"\0")

    def apply_status(self) -> dict[str, Any]:
        if self.rollout is not None:
            return {"running": True, "done": list(self.rollout.done),
                    "pending": [f"{s.verb} {', '.join(s.names)}" for s in self.rollout.steps]}
        return {"running": False, "done": list(self.last_apply), "pending": []}

    # -- tiers ------
    def _advance_tier(self) -> None:
        states = [(c.spec.tier, c.proc.state) for c in self.children.values()]
        self._tiers, tier = next_tier(self._tiers, states, time.monotonic())
        if tier is not None:
            for c in self.children.values():
                if c.spec.tier == tier:
                    self.apply(c, Start())

    def _all_settled(self) -> bool:
        return all(c.proc.state is not S.STARTING for c in self.children.values())

    # -- events and actions ------
    def apply(self, c: Child, event: Event) -> None:
        """Feed `event` to a child's lifecycle and carry out what it decides."""
        c.proc, actions = step(c.proc, event, time.monotonic())
        for action in actions:
            self._act(c, action)

    def _act(self, c: Child, action: Action) -> None:
        if isinstance(action, Spawn):
            self._spawn(c)
        elif isinstance(action, Signal):
            children.killpg(action.pid, action.signal)
        elif isinstance(action, Report):
            self.console(f"{c.spec.name} | {action.level:<7} | {action.message}")

    def _spawn(self, c: Child) -> None:
        spec = c.spec
        port = c.detail.get("port") if spec.role == "sim" else None
        argv = children.role_argv(spec, str(self.topology_file), self.paths,
                                  self._sim_urls().get(spec.broker), int(port) if port else None)
        c.problems.clear()  # a new process: what the last one reported is gone with it
        c.fatal = ""
        c.detail.pop("left_working", None)
        config = None
        if spec.role == "host":
            try:
                config = self._host_launch(spec)
            except Exception:  # never the supervisor's end: the host reads the file itself
                config = None
        try:
            popen = children.start(c, argv, {**os.environ, **self._sim_env}, config)
        except OSError as exc:
            self.console(f"{spec.name} | ERROR   | cannot start: {exc}")
            self.apply(c, Exited(127))
            return
        assert popen.stdout is not None and c.ready_r is not None
        self._selector.register(popen.stdout, selectors.EVENT_READ, ("out", spec.name))
        self._selector.register(c.ready_r, selectors.EVENT_READ, ("ready", spec.name))
        self.apply(c, Spawned(popen.pid))

    def _host_launch(self, spec: ProcessSpec) -> bytes | None:
        """A host's configuration resolved from the topology file as it is now (what the host
        would read itself, docs/cli.md), as JSON for its config pipe: the host then imports
        no YAML or pydantic (runtime/config.py). None when the file does not load or no longer
        names this group: the host reads the file itself and says why it cannot start."""
        topology = self._file_topology()
        if topology is None:
            return None
        fresh = {s.name: s for s in process_specs(topology, self.node)}.get(spec.name)
        if fresh is None or fresh.role != "host":
            return None
        text = launch_of(topology, fresh).to_json()
        return text.encode() if text is not None else None

    def _file_topology(self) -> Topology | None:
        """The topology file as it is now, loaded again only when it or its `.env` changed
        (`up` spawns every host of a tier at once)."""
        from tradeops.topology.load import TopologyError, load_topology

        key = tuple(_stat_key(p) for p in (self.topology_file,
                                           self.topology_file.parent / ".env"))
        if self._loaded is None or self._loaded[0] != key:
            try:
                topology: Topology | None = load_topology(self.topology_file)
            except (TopologyError, OSError):
                topology = None
            self._loaded = (key, topology)
        return self._loaded[1]

    def _sim_urls(self) -> dict[str, str]:
        return {
            c.spec.broker: str(c.detail["url"])
            for c in self.children.values()
            if c.spec.role == "sim" and c.detail.get("url")
        }

    # -- the loop's inputs ------
    def _timeout(self) -> float:
        wakes = [c.proc.wake_at for c in self.children.values() if c.proc.wake_at is not None]
        if self._signals:
            return 0.0
        if not wakes:
            return 0.5
        return max(0.0, min(0.5, min(wakes) - time.monotonic()))

    def _poll(self, timeout: float) -> None:
        for key, _ in self._selector.select(timeout):
            kind, what = key.data  # what: a child's name, or a control connection
            if kind == "wake":
                with suppress(BlockingIOError):
                    while self._wake_r.recv(4096):
                        pass
            elif kind == "control":
                self._accept_control()
            elif kind == "client":
                self._serve_control(what)
            elif kind == "out":
                self._read_output(self.children[what])
            elif kind == "ready":
                self._read_ready(self.children[what])

    def _read_output(self, c: Child) -> None:
        if not children.read_output(c, self.console):
            self._close_output(c)

    def _close_output(self, c: Child) -> None:
        if c.popen is not None and c.popen.stdout is not None and not c.popen.stdout.closed:
            self._selector.unregister(c.popen.stdout)
            c.popen.stdout.close()

    def _close_ready(self, c: Child) -> None:
        if c.ready_r is not None:
            self._selector.unregister(c.ready_r)
            os.close(c.ready_r)
            c.ready_r = None

    def _read_ready(self, c: Child) -> None:
        ready, closed = children.read_reports(c)
        if closed:
            self._close_ready(c)
        if ready:
            self.apply(c, Ready())

    def _reap(self) -> None:
        for c in self.children.values():
            if c.popen is None:
                continue
            code = c.popen.poll()
            if code is None:
                continue
            if c.popen.stdout is not None and not c.popen.stdout.closed:
                self._read_output(c)  # its last words
                self._close_output(c)
            if c.ready_r is not None:
                self._read_ready(c)  # its last reports (a gateway's orders left working)
            self._close_ready(c)
            c.popen = None
            self.apply(c, Exited(code, c.fatal))

    def _timers(self) -> None:
        for c in self.children.values():
            if c.proc.wake_at is not None and time.monotonic() >= c.proc.wake_at:
                self.apply(c, Timer())

    # -- control commands ------
    def _accept_control(self) -> None:
        assert self._control is not None
        conn = self._control.accept()
        if conn is not None:
            self._selector.register(conn.sock, selectors.EVENT_READ, ("client", conn))

    def _serve_control(self, conn: ControlConnection) -> None:
        from tradeops.supervisor.commands import handle

        sock = conn.sock
        commands = ControlServer.read(conn)
        if commands is None:
            self._selector.unregister(sock)
            sock.close()
            return
        for command in commands:
            reply = handle(self, command)
            if reply is None:  # `down`: answered once everything has stopped
                self._selector.unregister(sock)
                self._down_waiters.append(conn)
                return
            ControlServer.reply(conn, reply)

    def status(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        return [self._row(c, now) for c in self.children.values()]

    def _light_row(self, c: Child) -> dict[str, Any]:
        """What a metrics scrape needs of a process, without any I/O."""
        p = c.proc
        return {"name": c.spec.name, "role": c.spec.role, "state": p.state.value,
                "pid": p.pid if p.state.alive else None, "restarts": p.restarts,
                "started_at": p.started_at, "reason": p.reason}

    def _row(self, c: Child, now: float) -> dict[str, Any]:
        p = c.proc
        pid = p.pid if p.state.alive else None
        uptime = now - p.started_at if pid and p.started_at else None
        return {
            "name": c.spec.name,
            "role": c.spec.role,
            "state": p.state.value,
            "pid": pid,
            "uptime": round(uptime, 1) if uptime is not None else None,
            "restarts": p.restarts,
            "cpu": self._cpu.percent(pid, uptime) if pid else None,
            "rss": rss_bytes(pid) if pid else None,
            "pin": list(c.spec.cpu) or None,
            "strategies": list(c.spec.strategies),
            "reason": p.reason,
            "stats": contract.read_state(self.paths.run_dir, c.spec.name) if pid else {},
            "detail": c.detail,  # what it said when ready (a sim: its address)
            "problems": dict(c.problems) if pid else {},  # what degrades it, and why
        }


def _serialised(console: Callable[[str], None]) -> Callable[[str], None]:
    lock = threading.Lock()

    def write(line: str) -> None:
        with lock:
            console(line)

    return write


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    """What tells a file's versions apart: inode, size, modification time (None: absent)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _running(c: Child) -> bool:
    return c.proc.state.alive or c.proc.state is S.BACKOFF
