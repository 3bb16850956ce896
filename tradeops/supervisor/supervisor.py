"""The supervisor loop: spawn a desk's processes in order, watch them, obey commands.

One loop, one thread. Everything that happens becomes an event on it: a child's output or
ready line, a child's exit (SIGCHLD wakes the loop), a timer, a signal to the supervisor, a
command on the control socket. Each process's lifecycle is decided by `lifecycle.step`; this
module only carries out the actions. Children run in sessions of their own and die with the
supervisor (PR_SET_PDEATHSIG), so a `kill -9` of the supervisor leaves nothing running.
"""

from __future__ import annotations

import fcntl
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tradeops.process import child
from tradeops.process.credentials import generate_sim_credentials
from tradeops.process.paths import RunPaths
from tradeops.process.spec import ROLE_MODULES, ProcessSpec, process_specs
from tradeops.supervisor.control import ControlConnection, ControlServer
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
from tradeops.topology.model import Topology

STARTUP_TIMEOUT = 30.0  # a tier that is not ready by then does not hold the next one back


class AlreadyRunning(Exception):
    pass


@dataclass
class _Child:
    spec: ProcessSpec
    proc: Proc
    popen: subprocess.Popen[bytes] | None = None
    ready_r: int | None = None
    out: bytearray = field(default_factory=bytearray)
    detail: dict[str, Any] = field(default_factory=dict)  # from its ready line


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
        self.children = {
            s.name: _Child(s, Proc(s.name, s.restart)) for s in process_specs(topology)
        }
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._control: ControlServer | None = None
        self._lock_file: IO[str] | None = None
        self._stopping = False
        self._down_waiters: list[ControlConnection] = []
        self._tier = -1
        self._tier_started = 0.0
        self._cpu = CpuMeter()
        self.started = time.time()
        self._sim_env = generate_sim_credentials(dict(topology.brokers))

    # -- start and stop ------
    def acquire(self) -> None:
        """Take the desk's lock and bind its control socket; AlreadyRunning if another has it."""
        self.paths.run_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.paths.lock, "a+")  # noqa: SIM115 (held for the whole run)
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise AlreadyRunning(
                f"desk '{self.topology.name}' is already running (control socket "
                f"{self.paths.control}); use `tradeops status` or `tradeops down`"
            ) from None
        self._lock_file.seek(0)
        self._lock_file.truncate()
        self._lock_file.write(str(os.getpid()))
        self._lock_file.flush()
        self._remove_stale()
        self._control = ControlServer(self.paths.control)
        self._selector.register(self._control.sock, selectors.EVENT_READ, ("control", None))
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, ("wake", None))

    def _remove_stale(self) -> None:
        """What a crashed earlier run of this desk left: shared memory, sockets, state."""
        from tradeops.bus.names import remove_segments

        removed = remove_segments(self.paths.bus)
        if removed:
            self.console(f"supervisor | removed {len(removed)} stale shared-memory segment(s)")
        for spec in self.children.values():
            if spec.spec.role == "gateway":
                self.paths.gateway_socket(spec.spec.broker).unlink(missing_ok=True)
        for state in self.paths.state.glob("*.json") if self.paths.state.exists() else []:
            state.unlink(missing_ok=True)

    def run(self, on_ready: Callable[[], None] | None = None) -> int:
        """Run until `down`, SIGTERM or SIGINT; returns the exit status for `up`."""
        previous = {
            sig: signal.signal(sig, self._on_signal)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)
        }
        old_wakeup = signal.set_wakeup_fd(self._wake_w.fileno())
        announced = False
        try:
            self._advance_tier()
            while True:
                self._poll(self._timeout())
                self._reap()
                self._timers()
                if not self._stopping:
                    self._advance_tier()
                    if not announced and self._tier >= 3 and self._all_settled():
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
            if c.popen is not None and c.popen.poll() is None:
                _killpg(c.popen.pid, signal.SIGKILL)
                c.popen.wait(5)
        stopped = [c.spec.name for c in self.children.values()]
        from tradeops.bus.names import remove_segments

        remove_segments(self.paths.bus)
        if self._control is not None:
            self._control.close()
        if self._lock_file is not None:
            self.paths.lock.unlink(missing_ok=True)
            self._lock_file.close()
        self.console(f"supervisor | desk '{self.topology.name}' is down")
        # Answered last: when `tradeops down` returns, only this process's exit remains.
        for conn in self._down_waiters:
            ControlServer.reply(conn, {"ok": True, "stopped": stopped, "pid": os.getpid()})
            conn.sock.close()

    def _on_signal(self, signum: int, frame: object) -> None:
        if signum != signal.SIGCHLD and not self._stopping:
            self.shutdown()

    def shutdown(self) -> None:
        """Stop everything: hosts first (their orders are cancelled per policy), then
        gateways, then simulated exchanges."""
        if not self._stopping:
            self.console("supervisor | stopping the desk")
        self._stopping = True
        self._stop_tier_down()

    def _stop_tier_down(self) -> None:
        alive_tiers = [
            c.spec.tier
            for c in self.children.values()
            if c.proc.state.alive or c.proc.state is S.BACKOFF
        ]
        if not alive_tiers:
            return
        top = max(alive_tiers)
        for c in self.children.values():
            if c.spec.tier == top and c.proc.state is not S.STOPPING:
                self._event(c, Stop())

    def _everything_down(self) -> bool:
        if any(c.proc.state.alive or c.proc.state is S.BACKOFF for c in self.children.values()):
            self._stop_tier_down()
            return False
        return True

    # -- tiers ------
    def _advance_tier(self) -> None:
        tiers = sorted({c.spec.tier for c in self.children.values()})
        current = [c for c in self.children.values() if c.spec.tier == self._tier]
        settled = all(c.proc.state is not S.STARTING for c in current)
        late = time.monotonic() - self._tier_started > STARTUP_TIMEOUT
        if self._tier >= 0 and not settled and not late:
            return
        nxt = [t for t in tiers if t > self._tier]
        if not nxt:
            self._tier = max(self._tier, 3)
            return
        self._tier, self._tier_started = nxt[0], time.monotonic()
        for c in self.children.values():
            if c.spec.tier == self._tier:
                self._event(c, Start())

    def _all_settled(self) -> bool:
        return all(c.proc.state is not S.STARTING for c in self.children.values())

    # -- events and actions ------
    def _event(self, c: _Child, event: Event) -> None:
        c.proc, actions = step(c.proc, event, time.monotonic())
        for action in actions:
            self._act(c, action)

    def _act(self, c: _Child, action: Action) -> None:
        if isinstance(action, Spawn):
            self._spawn(c)
        elif isinstance(action, Signal):
            _killpg(action.pid, action.signal)
        elif isinstance(action, Report):
            self.console(f"{c.spec.name} | {action.level:<7} | {action.message}")

    def _spawn(self, c: _Child) -> None:
        spec = c.spec
        ready_r, ready_w = os.pipe()
        argv = [
            sys.executable,
            "-m",
            ROLE_MODULES[spec.role],
            "--topology",
            str(self.topology_file),
            "--name",
            spec.name,
            "--run-dir",
            str(self.paths.run_dir),
        ]
        if spec.role == "gateway" and spec.broker in self._sim_urls():
            argv += ["--url", self._sim_urls()[spec.broker]]
        if spec.role == "sim" and c.detail.get("port"):
            argv += ["--port", str(c.detail["port"])]  # a restarted sim keeps its address
        env = {
            **os.environ,
            child.READY_FD: str(ready_w),
            child.SUPERVISOR_PID: str(os.getpid()),
            **self._sim_env,
            "PYTHONUNBUFFERED": "1",
        }
        try:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(ready_w,),
                env=env,
                start_new_session=True,
                preexec_fn=child.die_with_parent,
            )
        except OSError as exc:
            os.close(ready_r)
            os.close(ready_w)
            self.console(f"{spec.name} | ERROR   | cannot start: {exc}")
            self._event(c, Exited(127))
            return
        os.close(ready_w)
        c.popen, c.ready_r = popen, ready_r
        assert popen.stdout is not None
        os.set_blocking(popen.stdout.fileno(), False)
        os.set_blocking(ready_r, False)
        self._selector.register(popen.stdout, selectors.EVENT_READ, ("out", spec.name))
        self._selector.register(ready_r, selectors.EVENT_READ, ("ready", spec.name))
        self._event(c, Spawned(popen.pid))

    def _sim_urls(self) -> dict[str, str]:
        return {
            c.spec.broker: str(c.detail["url"])
            for c in self.children.values()
            if c.spec.role == "sim" and c.detail.get("url")
        }

    # -- the loop's inputs ------
    def _timeout(self) -> float:
        wakes = [c.proc.wake_at for c in self.children.values() if c.proc.wake_at is not None]
        if not wakes:
            return 0.5
        return max(0.0, min(0.5, min(wakes) - time.monotonic()))

    def _poll(self, timeout: float) -> None:
        for key, _ in self._selector.select(timeout):
            kind, name = key.data
            if kind == "wake":
                try:
                    while self._wake_r.recv(4096):
                        pass
                except BlockingIOError:
                    pass
            elif kind == "control":
                self._accept_control()
            elif kind == "client":
                self._serve_control(key.fileobj)  # type: ignore[arg-type]
            elif kind == "out":
                self._read_output(self.children[name])
            elif kind == "ready":
                self._read_ready(self.children[name])

    def _read_output(self, c: _Child) -> None:
        assert c.popen is not None and c.popen.stdout is not None
        try:
            data = os.read(c.popen.stdout.fileno(), 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._selector.unregister(c.popen.stdout)
            c.popen.stdout.close()
            if c.out:
                self.console(f"{c.spec.name} | {c.out.decode(errors='replace')}")
                c.out.clear()
            return
        c.out += data
        while (end := c.out.find(b"\n")) >= 0:
            self.console(f"{c.spec.name} | {c.out[:end].decode(errors='replace')}")
            del c.out[: end + 1]

    def _read_ready(self, c: _Child) -> None:
        assert c.ready_r is not None
        try:
            data = os.read(c.ready_r, 65536)
        except BlockingIOError:
            return
        self._selector.unregister(c.ready_r)
        os.close(c.ready_r)
        c.ready_r = None
        if data:
            for line in data.decode(errors="replace").splitlines():
                try:
                    c.detail.update(json.loads(line))
                except ValueError:
                    continue
            self._event(c, Ready())

    def _reap(self) -> None:
        for c in self.children.values():
            if c.popen is None:
                continue
            code = c.popen.poll()
            if code is None:
                continue
            if c.popen.stdout is not None and not c.popen.stdout.closed:
                self._read_output(c)  # its last words
                if not c.popen.stdout.closed:
                    self._selector.unregister(c.popen.stdout)
                    c.popen.stdout.close()
            if c.ready_r is not None:
                self._selector.unregister(c.ready_r)
                os.close(c.ready_r)
                c.ready_r = None
            c.popen = None
            self._event(c, Exited(code))

    def _timers(self) -> None:
        for c in self.children.values():
            if c.proc.wake_at is not None and time.monotonic() >= c.proc.wake_at:
                self._event(c, Timer())

    # -- control commands ------
    def _accept_control(self) -> None:
        assert self._control is not None
        conn = self._control.accept()
        if conn is not None:
            self._selector.register(conn.sock, selectors.EVENT_READ, ("client", conn))

    def _serve_control(self, sock: socket.socket) -> None:
        key = self._selector.get_key(sock)
        conn: ControlConnection = key.data[1]
        commands = ControlServer.read(conn)
        if commands is None:
            self._selector.unregister(sock)
            sock.close()
            return
        for command in commands:
            from tradeops.supervisor.commands import handle

            reply = handle(self, command)
            if reply is None:  # `down`: answered once everything has stopped
                self._selector.unregister(sock)
                self._down_waiters.append(conn)
                return
            ControlServer.reply(conn, reply)

    def status(self) -> list[dict[str, Any]]:
        rows = []
        now = time.monotonic()
        for c in self.children.values():
            p = c.proc
            pid = p.pid if p.state.alive else None
            uptime = now - p.started_at if pid and p.started_at else None
            rows.append(
                {
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
                    "stats": child.read_state(self.paths.run_dir, c.spec.name) if pid else {},
                    "detail": c.detail,  # what it said when ready (a sim: its address)
                }
            )
        return rows


def _killpg(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)
