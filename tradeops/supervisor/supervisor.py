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
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from tradeops.process import child as contract
from tradeops.process.credentials import generate_sim_credentials
from tradeops.process.paths import RunPaths
from tradeops.process.spec import process_specs
from tradeops.supervisor import children
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

__all__ = ["AlreadyRunning", "CannotStart", "Supervisor"]

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)


class Supervisor:
    def __init__(
        self,
        topology: Topology,
        topology_file: Path,
        paths: RunPaths,
        console: Callable[[str], None],
    ) -> None:
        self.topology = topology
        self.topology_file = topology_file.resolve()
        self.paths = paths
        self.console = console
        self.children = {s.name: Child(s, Proc(s.name, s.restart)) for s in process_specs(topology)}
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

    # -- start and stop ------
    def acquire(self) -> None:
        """Take the desk's lock and bind its control socket; AlreadyRunning if another has it."""
        self._lock.acquire(os.getpid())
        brokers = [c.spec.broker for c in self.children.values() if c.spec.role == "gateway"]
        remove_leftovers(self.paths, brokers, self.console)
        try:
            self._control = ControlServer(self.paths.control)
        except OSError as exc:
            self._lock.release()
            raise unusable_run_dir(self.paths, exc) from None
        self._selector.register(self._control.sock, selectors.EVENT_READ, ("control", None))
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, ("wake", None))

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
        try:
            popen = children.start(c, argv, {**os.environ, **self._sim_env})
        except OSError as exc:
            self.console(f"{spec.name} | ERROR   | cannot start: {exc}")
            self.apply(c, Exited(127))
            return
        assert popen.stdout is not None and c.ready_r is not None
        self._selector.register(popen.stdout, selectors.EVENT_READ, ("out", spec.name))
        self._selector.register(c.ready_r, selectors.EVENT_READ, ("ready", spec.name))
        self.apply(c, Spawned(popen.pid))

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


def _running(c: Child) -> bool:
    return c.proc.state.alive or c.proc.state is S.BACKOFF
