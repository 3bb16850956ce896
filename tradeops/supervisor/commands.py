"""What each control-socket command does to the running supervisor."""

from __future__ import annotations

import difflib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeops.supervisor.lifecycle import Restart, Start, Stop

if TYPE_CHECKING:
    from tradeops.supervisor.children import Child
    from tradeops.supervisor.supervisor import Supervisor


def handle(sup: Supervisor, command: dict[str, Any]) -> dict[str, Any] | None:
    """The reply to one command; None for `down`, which is answered when all has stopped."""
    cmd = command.get("cmd")
    if cmd == "status":
        return {
            "ok": True,
            "desk": sup.topology.name,
            "pid": os.getpid(),
            "uptime": round(time.time() - sup.started, 1),
            "run_dir": str(sup.paths.run_dir),
            "topology": str(sup.topology_file),
            "bus": sup.paths.bus,
            "metrics": ({"url": sup.metrics.url} if sup.metrics is not None
                        else {"error": sup.metrics_error} if sup.metrics_error else None),
            "alerts": sup.alerts.status() if sup.alerts is not None else [],
            "apply": sup.apply_status(),
            "processes": sup.status(),
        }
    if cmd in ("restart", "stop", "start"):
        target, note = resolve(sup, str(command.get("name", "")), str(cmd))
        if target is None:
            return {"ok": False, "error": note}
        event: Restart | Stop | Start = (
            Restart() if cmd == "restart" else Stop() if cmd == "stop" else Start()
        )
        sup.apply(target, event)
        return {
            "ok": True,
            "process": target.spec.name,
            "note": note,
            "state": target.proc.state.value,
        }
    if cmd == "apply":
        return sup.begin_apply(Path(str(command.get("topology", ""))),
                               bool(command.get("dry_run")), str(command.get("expect", "")))
    if cmd == "down":
        sup.shutdown()
        return None
    return {"ok": False, "error": f"unknown command {cmd!r}"}


def resolve(sup: Supervisor, name: str, cmd: str = "restart") -> tuple[Child | None, str]:
    """A process by its name, or the process group that runs a strategy of that name; the
    note says what else `cmd` (restart, stop, start) does to that group."""
    if name in sup.children:
        c = sup.children[name]
        others = [s for s in c.spec.strategies if s != name]
        note = f"process '{name}' runs {', '.join(c.spec.strategies)}" if len(others) else ""
        return c, note
    for c in sup.children.values():
        if name in c.spec.strategies:
            others = [s for s in c.spec.strategies if s != name]
            note = (
                (
                    f"strategy '{name}' runs in process group '{c.spec.name}', which also runs "
                    f"{', '.join(others)}: they {cmd} with it"
                )
                if others
                else ""
            )
            return c, note
    names = list(sup.children) + [s for c in sup.children.values() for s in c.spec.strategies]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return None, (
        f"no process or strategy named '{name}'{hint}; known: {', '.join(sorted(set(names)))}"
    )
