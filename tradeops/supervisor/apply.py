"""`tradeops apply`: change a running desk to match an edited topology, touching only what
changed.

`plan` compares the running desk's processes with the new file's (their effective
configurations, `process/fingerprint.py`): `+ start` (new), `~ restart` (changed), `- stop`
(gone), `= keep`, and `~ update` for a process a person stopped (it takes the new settings
and stays stopped). `Rollout` carries a plan out in steps, each waiting until the one before
has settled: stops first, strategy hosts before the gateways they trade through (so their
auto_cancel still reaches the broker), then restarts and starts in start order (simulated
exchanges, gateways, the proxy, hosts), so a gateway finds its exchange and a host its
gateway. A gateway whose strategies' limits or groups changed (a strategy added, say) loads
them while running (`reload`) before the new hosts start. Pure: the supervisor feeds it the
processes' states and carries out its actions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from tradeops.process.spec import TIERS, ProcessSpec
from tradeops.supervisor.states import ProcessState as S
from tradeops.supervisor.tiers import STARTUP_TIMEOUT

Verb = Literal["start", "restart", "reload", "update", "stop", "keep"]
SIGNS: dict[str, str] = {"start": "+", "restart": "~", "reload": "~", "update": "~", "stop": "-",
                         "keep": "="}


@dataclass(frozen=True)
class Change:
    verb: Verb
    name: str
    role: str
    why: str = ""

    def line(self) -> str:
        why = f"  ({self.why})" if self.why else ""
        return f"{SIGNS[self.verb]} {self.verb:<7} {self.name}{why}"


def plan(running: Mapping[str, tuple[ProcessSpec, str]], wanted: Mapping[str, ProcessSpec],
         new_prints: Mapping[str, str], stopped: set[str] | None = None,
         reloads: Mapping[str, tuple[str, str]] | None = None) -> list[Change]:
    """`running`: name → (spec, fingerprint) of the desk now; `wanted`: the new file's specs
    and `new_prints` their fingerprints; `stopped`: processes a person stopped (they stay
    stopped); `reloads`: gateway → (old, new) digest of what it can load while running. In
    start order, then the stops."""
    changes: list[Change] = []
    order = sorted(wanted.values(), key=lambda s: TIERS[s.role])
    for spec in order:
        if spec.name not in running:
            changes.append(Change("start", spec.name, spec.role, "new"))
            continue
        old_spec, old_print = running[spec.name]
        changed = old_print != new_prints[spec.name] or spec != old_spec
        if stopped and spec.name in stopped:  # a person stopped it: it stays stopped
            if changed:
                changes.append(Change("update", spec.name, spec.role,
                                      "stopped by hand: starts with the new settings"))
            else:
                changes.append(Change("keep", spec.name, spec.role, "stopped by hand"))
        elif changed:
            changes.append(Change("restart", spec.name, spec.role, _why(spec)))
        elif reloads and spec.name in reloads and len(set(reloads[spec.name])) == 2:
            changes.append(Change("reload", spec.name, spec.role,
                                  "its strategies' limits, accounts or groups changed"))
        else:
            changes.append(Change("keep", spec.name, spec.role))
    for name, (spec, _) in sorted(running.items(), key=lambda kv: -TIERS[kv[1][0].role]):
        if name not in wanted:
            changes.append(Change("stop", name, spec.role, "no longer in the file"))
    return changes


def _why(spec: ProcessSpec) -> str:
    return {"host": "its strategies' or group's settings changed",
            "gateway": f"broker '{spec.broker}' changed",
            "sim": f"broker '{spec.broker}''s market, pool or logins changed",
            "proxy": "settings.proxy or the brokers' feeds changed"}.get(spec.role, "changed")


@dataclass
class Step:
    verb: Verb
    names: list[str]
    began: float | None = None


@dataclass
class Rollout:
    """A plan being carried out; `advance` says what to do now."""

    steps: list[Step]
    done: list[str] = field(default_factory=list)
    timeout: float = STARTUP_TIMEOUT

    @classmethod
    def of(cls, changes: list[Change]) -> Rollout:
        steps: list[Step] = []
        stops = [c for c in changes if c.verb == "stop"]
        for tier in sorted({TIERS[c.role] for c in stops}, reverse=True):
            steps.append(Step("stop", [c.name for c in stops if TIERS[c.role] == tier]))
        moves = [c for c in changes if c.verb in ("start", "restart", "reload")]
        for tier in sorted({TIERS[c.role] for c in moves}):
            verb: Verb
            for verb in ("restart", "reload", "start"):
                names = [c.name for c in moves if TIERS[c.role] == tier and c.verb == verb]
                if names:
                    steps.append(Step(verb, names))
        return cls(steps)

    @property
    def finished(self) -> bool:
        return not self.steps

    def advance(self, states: Mapping[str, S], now: float) -> Step | None:
        """The step to carry out now (once), or None while the current one settles."""
        if not self.steps:
            return None
        step = self.steps[0]
        if step.began is None:
            step.began = now
            return step
        settled = all(_settled(step.verb, states.get(n, S.STOPPED)) for n in step.names)
        if settled or now - step.began > self.timeout:
            self.done.append(f"{step.verb} {', '.join(step.names)}"
                             + ("" if settled else " (not settled in time)"))
            self.steps.pop(0)
            return self.advance(states, now)
        return None


def _settled(verb: str, state: S) -> bool:
    if verb == "stop":
        return not state.alive and state is not S.BACKOFF
    return state is not S.STARTING and state is not S.STOPPING
