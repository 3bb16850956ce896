"""One process's lifecycle as a pure function: `step(proc, event, now) -> (proc, actions)`.

No clocks, no signals, no processes here: the supervisor loop turns what happens into events,
calls `step`, and carries out the actions it gets back. Tests drive it with a fake clock.

Restart rules (per process group, from the topology's `restart`):
- `policy`: `on-failure` restarts after a non-zero exit (or a kill by signal); `always` also
  after a clean exit; `never` leaves it exited.
- Backoff: `backoff` before the first restart, doubled each time, capped at `max_backoff`;
  a run longer than `window` counts as stable and resets the doubling.
- A process that reports a fatal reason before exiting (a recorder whose disk is full) is
  `fatal` at once, with that reason: restarting it would only fail again.
- Crash loop: more than `max_restarts` unexpected exits within `window` makes it `fatal`
  (reported, left down; the rest of the desk keeps running). `start`/`restart` clears it.
- Stop: SIGTERM, then SIGKILL to its process group after `grace` seconds.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field, replace
from typing import Literal

from tradeops.process.spec import RestartPolicy
from tradeops.supervisor.states import ProcessState as S


@dataclass(frozen=True)
class Proc:
    name: str
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    state: S = S.STOPPED
    pid: int | None = None
    started_at: float | None = None
    crashes: tuple[float, ...] = ()  # times of unexpected exits within the window
    streak: int = 0  # unexpected exits since the last stable run
    wake_at: float | None = None  # backoff end, or the SIGKILL deadline while stopping
    restart_after_stop: bool = False
    restarts: int = 0
    exit_code: int | None = None
    reason: str = ""


# -- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """The user (or `up`) wants it running."""


@dataclass(frozen=True)
class Stop:
    """The user (or `down`) wants it stopped."""


@dataclass(frozen=True)
class Restart:
    """Stop it if it runs, then start it again."""


@dataclass(frozen=True)
class Spawned:
    pid: int


@dataclass(frozen=True)
class Ready:
    pass


@dataclass(frozen=True)
class Exited:
    """`code`: the exit status; negative for a signal, as subprocess reports it. `fatal`: the
    reason the process gave for a failure a restart cannot mend (a full disk), if it gave one."""

    code: int
    fatal: str = ""


@dataclass(frozen=True)
class Timer:
    """Time passed; `now` is given to `step`."""


Event = Start | Stop | Restart | Spawned | Ready | Exited | Timer

# -- actions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spawn:
    name: str


@dataclass(frozen=True)
class Signal:
    name: str
    pid: int
    signal: int


@dataclass(frozen=True)
class Report:
    name: str
    level: Literal["INFO", "WARNING", "ERROR"]
    message: str


Action = Spawn | Signal | Report


def step(proc: Proc, event: Event, now: float) -> tuple[Proc, list[Action]]:
    """The next state of `proc` after `event` at time `now`, and what to do about it."""
    s = proc.state
    if isinstance(event, Start):
        if s.alive:
            return replace(proc, restart_after_stop=False), []
        return _spawn(replace(proc, crashes=(), streak=0, reason=""), now)
    if isinstance(event, Restart):
        if s in (S.STARTING, S.RUNNING):
            return _terminate(replace(proc, restart_after_stop=True), now)
        if s is S.STOPPING:
            return replace(proc, restart_after_stop=True), []
        return _spawn(replace(proc, crashes=(), streak=0, reason=""), now)
    if isinstance(event, Stop):
        if s in (S.STARTING, S.RUNNING):
            return _terminate(replace(proc, restart_after_stop=False), now)
        if s is S.STOPPING:
            return replace(proc, restart_after_stop=False), []
        if s is S.BACKOFF:
            return replace(proc, state=S.STOPPED, wake_at=None), []
        return proc, []
    if isinstance(event, Spawned):
        return replace(proc, pid=event.pid, started_at=now, exit_code=None), []
    if isinstance(event, Ready):
        if s is S.STARTING:
            return replace(proc, state=S.RUNNING), [Report(proc.name, "INFO", "ready")]
        return proc, []
    if isinstance(event, Exited):
        return _exited(proc, event.code, now, event.fatal)
    # Timer
    if s is S.BACKOFF and proc.wake_at is not None and now >= proc.wake_at:
        return _spawn(replace(proc, restarts=proc.restarts + 1), now)
    if s is S.STOPPING and proc.wake_at is not None and now >= proc.wake_at and proc.pid:
        return replace(proc, wake_at=None), [
            Report(proc.name, "WARNING", f"did not stop within {proc.policy.grace:g}s; killing"),
            Signal(proc.name, proc.pid, signal.SIGKILL),
        ]
    return proc, []


def _spawn(proc: Proc, now: float) -> tuple[Proc, list[Action]]:
    return replace(proc, state=S.STARTING, pid=None, wake_at=None, restart_after_stop=False), [
        Spawn(proc.name)
    ]


def _terminate(proc: Proc, now: float) -> tuple[Proc, list[Action]]:
    actions: list[Action] = []
    if proc.pid:
        actions.append(Signal(proc.name, proc.pid, signal.SIGTERM))
    return replace(proc, state=S.STOPPING, wake_at=now + proc.policy.grace), actions


def _exited(proc: Proc, code: int, now: float, fatal: str = "") -> tuple[Proc, list[Action]]:
    s, policy = proc.state, proc.policy
    how = f"exited with status {code}" if code >= 0 else f"killed by signal {-code}"
    base = replace(proc, pid=None, exit_code=code, wake_at=None)
    if s is S.STOPPING:
        if proc.restart_after_stop:
            restarted, actions = _spawn(replace(base, restarts=proc.restarts + 1), now)
            return restarted, [Report(proc.name, "INFO", "restarting"), *actions]
        return replace(base, state=S.STOPPED), [Report(proc.name, "INFO", "stopped")]
    if not s.alive:
        return base, []
    if fatal:  # the process said a restart cannot help: left down until `start`
        return replace(base, state=S.FATAL, reason=fatal), [
            Report(proc.name, "ERROR", f"{how}: {fatal}; left down (fatal)")
        ]
    clean = code == 0
    if policy.policy == "never" or (clean and policy.policy == "on-failure"):
        return replace(base, state=S.EXITED, reason=how), [
            Report(
                proc.name, "INFO" if clean else "ERROR", f"{how}; not restarted ({policy.policy})"
            )
        ]
    ran = now - proc.started_at if proc.started_at is not None else 0.0
    streak = 1 if ran > policy.window else proc.streak + 1
    crashes = (*(t for t in proc.crashes if now - t <= policy.window), now)
    if len(crashes) > policy.max_restarts:
        message = (
            f"{how}; {len(crashes)} exits within {policy.window:g}s is more than "
            f"max_restarts={policy.max_restarts}: left down (fatal)"
        )
        return replace(base, state=S.FATAL, crashes=crashes, streak=streak, reason=message), [
            Report(proc.name, "ERROR", message)
        ]
    delay = min(policy.max_backoff, policy.backoff * 2 ** (streak - 1))
    return replace(
        base, state=S.BACKOFF, crashes=crashes, streak=streak, wake_at=now + delay, reason=how
    ), [Report(proc.name, "WARNING", f"{how}; restarting in {delay:g}s")]
