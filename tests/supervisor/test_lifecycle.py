"""The lifecycle, driven with a fake clock: no processes, no sleeping."""

from __future__ import annotations

import signal

from tradeops.supervisor.lifecycle import (
    Action,
    Exited,
    Proc,
    Ready,
    Report,
    Restart,
    RestartPolicy,
    Signal,
    Spawn,
    Spawned,
    Start,
    Stop,
    Timer,
    step,
)
from tradeops.supervisor.states import ProcessState as S


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0


def run(
    proc: Proc, clock: Clock, *events: object, advance: float = 0.0
) -> tuple[Proc, list[Action]]:
    actions: list[Action] = []
    for event in events:
        clock.now += advance
        proc, more = step(proc, event, clock.now)  # type: ignore[arg-type]
        actions += more
    return proc, actions


def started(policy: RestartPolicy | None = None) -> tuple[Proc, Clock]:
    clock = Clock()
    proc, actions = run(Proc("g", policy or RestartPolicy()), clock, Start(), Spawned(42), Ready())
    assert actions[0] == Spawn("g") and proc.state is S.RUNNING and proc.pid == 42
    return proc, clock


def test_crash_backs_off_then_restarts() -> None:
    proc, clock = started(RestartPolicy(backoff=1.0, max_backoff=8.0))
    clock.now += 100
    proc, actions = step(proc, Exited(1), clock.now)
    assert proc.state is S.BACKOFF and proc.wake_at == clock.now + 1.0
    assert any(isinstance(a, Report) and "restarting in 1s" in a.message for a in actions)
    proc, actions = step(proc, Timer(), clock.now + 0.5)
    assert actions == [] and proc.state is S.BACKOFF
    proc, actions = step(proc, Timer(), clock.now + 1.0)
    assert actions == [Spawn("g")] and proc.state is S.STARTING and proc.restarts == 1


def test_backoff_doubles_up_to_its_cap_and_resets_after_a_stable_run() -> None:
    policy = RestartPolicy(backoff=1.0, max_backoff=4.0, max_restarts=100, window=60.0)
    proc, clock = started(policy)
    delays = []
    for _ in range(4):
        clock.now += 1
        proc, _ = step(proc, Exited(1), clock.now)
        delays.append(proc.wake_at - clock.now)  # type: ignore[operator]
        clock.now = proc.wake_at  # type: ignore[assignment]
        proc, _ = run(proc, clock, Timer(), Spawned(43), Ready())
    assert delays == [1.0, 2.0, 4.0, 4.0]
    clock.now += 61  # a stable run
    proc, _ = step(proc, Exited(1), clock.now)
    assert proc.wake_at == clock.now + 1.0


def test_crash_loop_goes_fatal_and_start_clears_it() -> None:
    proc, clock = started(RestartPolicy(max_restarts=2, window=60.0, backoff=0.1))
    for _ in range(2):
        proc, _ = step(proc, Exited(1), clock.now)
        clock.now = proc.wake_at  # type: ignore[assignment]
        proc, _ = run(proc, clock, Timer(), Spawned(44))
    proc, actions = step(proc, Exited(1), clock.now)  # the third within the window
    assert proc.state is S.FATAL
    assert any(isinstance(a, Report) and "fatal" in a.message for a in actions)
    proc, actions = step(proc, Timer(), clock.now + 1000)
    assert actions == [] and proc.state is S.FATAL
    proc, actions = step(proc, Start(), clock.now)
    assert actions == [Spawn("g")] and proc.crashes == ()


def test_crash_on_start_counts_as_a_crash() -> None:
    clock = Clock()
    proc, _ = run(Proc("g", RestartPolicy(max_restarts=0)), clock, Start(), Spawned(1), Exited(2))
    assert proc.state is S.FATAL and "status 2" in proc.reason


def test_on_failure_leaves_a_clean_exit_alone_and_always_restarts_it() -> None:
    proc, clock = started(RestartPolicy(policy="on-failure"))
    assert step(proc, Exited(0), clock.now)[0].state is S.EXITED
    proc, clock = started(RestartPolicy(policy="always"))
    assert step(proc, Exited(0), clock.now)[0].state is S.BACKOFF
    proc, clock = started(RestartPolicy(policy="never"))
    assert step(proc, Exited(1), clock.now)[0].state is S.EXITED


def test_stop_terms_then_kills_after_the_grace_period() -> None:
    proc, clock = started(RestartPolicy(grace=5.0))
    proc, actions = step(proc, Stop(), clock.now)
    assert actions == [Signal("g", 42, signal.SIGTERM)] and proc.state is S.STOPPING
    proc, actions = step(proc, Timer(), clock.now + 4.9)
    assert actions == []
    proc, actions = step(proc, Timer(), clock.now + 5.0)
    assert Signal("g", 42, signal.SIGKILL) in actions
    proc, actions = step(proc, Exited(-9), clock.now + 5.1)
    assert proc.state is S.STOPPED and proc.pid is None


def test_restart_stops_then_spawns_without_counting_a_crash() -> None:
    proc, clock = started()
    proc, actions = step(proc, Restart(), clock.now)
    assert actions == [Signal("g", 42, signal.SIGTERM)]
    proc, actions = step(proc, Exited(-15), clock.now + 0.1)
    assert Spawn("g") in actions and proc.state is S.STARTING
    assert proc.crashes == () and proc.restarts == 1


def test_stop_during_backoff_cancels_the_restart() -> None:
    proc, clock = started()
    proc, _ = step(proc, Exited(1), clock.now)
    proc, actions = step(proc, Stop(), clock.now)
    assert proc.state is S.STOPPED and actions == []
    assert step(proc, Timer(), clock.now + 100) == (proc, [])


def test_a_fatal_reason_leaves_it_down_at_once_with_that_reason_until_start() -> None:
    proc, clock = started()
    proc, actions = step(proc, Exited(3, "cannot write /rec: No space left on device"),
                         clock.now + 1)
    assert proc.state is S.FATAL and proc.reason == "cannot write /rec: No space left on device"
    assert not any(isinstance(a, Spawn) for a in actions)
    assert any(isinstance(a, Report) and "No space left" in a.message for a in actions)
    proc, actions = step(proc, Timer(), clock.now + 100)
    assert actions == [] and proc.state is S.FATAL
    proc, actions = step(proc, Start(), clock.now + 101)
    assert actions == [Spawn("g")] and proc.reason == ""


def test_a_fatal_reason_while_stopping_is_an_ordinary_stop() -> None:
    proc, clock = started()
    proc, _ = step(proc, Stop(), clock.now)
    proc, _ = step(proc, Exited(3, "disk full"), clock.now + 1)
    assert proc.state is S.STOPPED
