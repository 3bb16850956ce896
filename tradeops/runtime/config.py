"""What a strategy host needs of the topology, resolved: plain frozen dataclasses and JSON.

A host used to load the topology file itself at start: YAML, `${ENV}` expansion and the
pydantic model, about 120 ms of imports and work before its first tick on every restart
(issue 13). The supervisor has all of that loaded already, so it resolves each host's part
when it spawns it (:func:`launch_of`) and hands it over on a pipe as JSON
(``TRADEOPS_CONFIG_FD``); the host reads it with :func:`read_launch` and imports nothing of
the model. A host started by hand (``python -m tradeops.runtime --topology FILE --name
GROUP``), or one whose configuration cannot travel as JSON unchanged (a YAML date in
``params``), loads the file as before and resolves the same configuration from it.

Nothing here imports pydantic or the topology model at module level.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final

from tradeops.process.spec import ProcessSpec, Role

if TYPE_CHECKING:
    from tradeops.topology.model import Topology

#: The environment variable naming the pipe a host reads its launch configuration from.
CONFIG_FD: Final = "TRADEOPS_CONFIG_FD"
#: Bumped when the JSON's shape changes (a host and its supervisor are one installation).
VERSION: Final = 1
#: Tick dispatch order of a strategy's `priority` inside a process (the model validates it).
PRIORITY_ORDER: Final[dict[str, int]] = {"critical": 0, "high": 1, "normal": 2, "low": 3}


@dataclass(frozen=True)
class StrategyConfig:
    """One strategy of the group: what the host loads, subscribes and hands over."""

    name: str
    class_path: str  # module:Class
    broker: str
    symbols: tuple[str, ...]
    subscription: str  # the mode its symbols are subscribed at (protocol/modes.py)
    priority: str = "normal"
    timer: float | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HostConfig:
    """One process group's strategies (in the group's order) and its process settings."""

    group: str
    strategies: dict[str, StrategyConfig]
    busy_poll: bool = False
    resume: str = "latest"  # latest | replay
    callback_timeout: float = 5.0
    on_stuck: str = "report"  # report | restart
    stale_after_symbol: float | None = None

    @classmethod
    def of(cls, topology: Topology, group: str, strategies: tuple[str, ...]) -> HostConfig:
        """The configuration of group `group` (running `strategies`) of a loaded topology."""
        process = topology.processes.get(group)
        configs = {}
        for name in strategies:
            s = topology.strategies[name]
            configs[name] = StrategyConfig(
                name, s.class_, s.broker, tuple(s.symbols), str(s.subscription), s.priority,
                s.timer, dict(s.params),
            )
        return cls(
            group, configs,
            busy_poll=bool(process and process.busy_poll),
            resume=process.resume if process else "latest",
            callback_timeout=process.callback_timeout if process else 5.0,
            on_stuck=process.on_stuck if process else "report",
            stale_after_symbol=topology.settings.stale_after_symbol,
        )  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HostConfig:
        strategies = {
            name: StrategyConfig(**{**s, "symbols": tuple(s["symbols"])})
            for name, s in data["strategies"].items()
        }
        return cls(**{**data, "strategies": strategies})


@dataclass(frozen=True)
class Launch:
    """Everything a host process is started with, besides its command line (its spec's
    restart policy stays with the supervisor)."""

    spec: ProcessSpec
    desk: str  # the topology's name: the run dir's socket names and shared memory
    host: HostConfig

    def to_json(self) -> str | None:
        """The launch as JSON; None when it would not come back unchanged (a value JSON has
        no type for, a key that is not a string): the host then reads the file itself."""
        spec = self.spec
        data = {
            "v": VERSION,
            "spec": {"name": spec.name, "role": spec.role, "broker": spec.broker,
                     "strategies": list(spec.strategies), "cpu": list(spec.cpu),
                     "log_level": spec.log_level, "node": spec.node},
            "desk": self.desk,
            "host": asdict(self.host),
        }  # fmt: skip
        try:
            text = json.dumps(data, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError):
            return None
        back = Launch.from_json(text)
        if back is None or back.host != self.host:  # the user's values (params) must survive
            return None
        return text

    @staticmethod
    def from_json(text: str) -> Launch | None:
        """The launch a supervisor wrote; None for another version or shape."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("v") != VERSION:
                return None
            s = data["spec"]
            role: Role = s["role"]
            spec = ProcessSpec(s["name"], role, broker=s["broker"],
                               strategies=tuple(s["strategies"]), cpu=tuple(s["cpu"]),
                               log_level=s["log_level"], node=s["node"])  # fmt: skip
            return Launch(spec, str(data["desk"]), HostConfig.from_dict(data["host"]))
        except (ValueError, KeyError, TypeError):
            return None


def launch_of(topology: Topology, spec: ProcessSpec) -> Launch:
    """A host's launch from a loaded topology and its process spec."""
    return Launch(spec, topology.name, HostConfig.of(topology, spec.name, spec.strategies))


def read_launch() -> Launch | None:
    """The launch the supervisor handed over on the ``TRADEOPS_CONFIG_FD`` pipe (read to its
    end and closed); None when there is none or it is unusable."""
    fd = os.environ.pop(CONFIG_FD, None)
    if fd is None:
        return None
    chunks = []
    try:
        with os.fdopen(int(fd), "rb") as pipe:
            while chunk := pipe.read(1 << 16):
                chunks.append(chunk)
    except (OSError, ValueError):
        return None
    return Launch.from_json(b"".join(chunks).decode("utf-8", errors="replace"))
