"""Checks of the processes a topology runs: CPU pins, auto-cancel reach, strategy classes."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import combinations
from pathlib import Path as FsPath

from tradeops.topology import model as m
from tradeops.topology.findings import Severity, did_you_mean
from tradeops.topology.load import Loaded
from tradeops.topology.plan import groups

E, W = Severity.ERROR, Severity.WARNING


def check_cpu(loaded: Loaded, topo: m.Topology, cpu_count: int) -> None:
    spinners: dict[int, str] = {}
    for name, process in topo.processes.items():
        path = ("processes", name)
        for i, core in enumerate(process.cpu or []):
            if core >= cpu_count:
                loaded.findings.append(
                    loaded.finding(
                        W,
                        "cpu-missing",
                        (*path, "cpu", i),
                        f"group '{name}' is pinned to core {core}, but this machine has cores "
                        f"0-{cpu_count - 1}",
                        "pin to a core this machine has, or ignore this where production is "
                        "larger (--strict makes this an error)",
                        name=name,
                    )
                )
        if not process.busy_poll:
            continue
        if not process.cpu:
            loaded.findings.append(
                loaded.finding(
                    W,
                    "busy-poll-unpinned",
                    (*path, "busy_poll"),
                    f"group '{name}' busy-polls without a CPU pin: it spins on whatever core the "
                    "scheduler gives it and slows its neighbours",
                    "add cpu: [N] with a core of its own",
                    name=name,
                )
            )
        for i, core in enumerate(process.cpu or []):
            if core in spinners and spinners[core] != name:
                loaded.findings.append(
                    loaded.finding(
                        E,
                        "busy-poll-shared-core",
                        (*path, "cpu", i),
                        f"groups '{spinners[core]}' and '{name}' both busy-poll on core {core}; "
                        "each would take the core from the other",
                        "give each busy-polling group a core of its own, or set busy_poll: false "
                        "on one",
                        name=name,
                    )
                )
            spinners.setdefault(core, name)


def check_auto_cancel(loaded: Loaded, topo: m.Topology) -> None:
    strategies = topo.strategies
    placement = {s: g.name for g in groups(topo) for s in g.strategies}
    for group in groups(topo):
        if group.settings.auto_cancel != "account" or group.implicit:
            continue
        path = ("processes", group.name, "auto_cancel")
        for a, b in combinations(group.strategies, 2):
            sa, sb = strategies[a], strategies[b]
            shared = sorted(set(sa.symbols) & set(sb.symbols)) if sa.broker == sb.broker else []
            if shared:
                loaded.findings.append(
                    loaded.finding(
                        W,
                        "auto-cancel-overlap",
                        path,
                        f"group '{group.name}' bundles '{a}' and '{b}', which both trade "
                        f"{', '.join(shared[:5])} on broker '{sa.broker}'; auto_cancel: account "
                        "cancels both strategies' orders when the process goes away",
                        "use auto_cancel: strategy, or split them into separate groups",
                        name=f"{a},{b}",
                    )
                )
        accounts = {(strategies[s].broker, strategies[s].account) for s in group.strategies}
        others = sorted(
            s
            for s, st in strategies.items()
            if placement.get(s) != group.name and (st.broker, st.account) in accounts
        )
        if others:
            loaded.findings.append(
                loaded.finding(
                    W,
                    "auto-cancel-account",
                    path,
                    f"auto_cancel: account in group '{group.name}' cancels every order on its "
                    f"account, including those of {', '.join(others)} in other processes",
                    "use auto_cancel: strategy, or put those strategies on another account",
                    name=group.name,
                )
            )


def check_imports(loaded: Loaded, topo: m.Topology) -> None:
    from tradeops.runtime.strategy import Strategy

    verdicts: dict[str, tuple[str, str] | None] = {}
    with _importable_from(loaded.base_dir):
        for name, strategy in topo.strategies.items():
            target = strategy.class_
            if target not in verdicts:
                verdicts[target] = _import_problem(target, Strategy)
            problem = verdicts[target]
            if problem:
                loaded.findings.append(
                    loaded.finding(
                        E,
                        "strategy-import",
                        ("strategies", name, "class"),
                        f"strategy '{name}': {problem[0]}",
                        f"{problem[1]} (skip this check with --no-import)",
                        name=target,
                    )
                )


def _import_problem(target: str, base: type) -> tuple[str, str] | None:
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        return (
            f"cannot import '{module_name}': {exc}",
            "check the spelling, install the package, or run from the directory that holds it",
        )
    except Exception as exc:  # the user's module failed while importing
        return (
            f"importing '{module_name}' raised {type(exc).__name__}: {exc}",
            "fix the error in that module",
        )
    cls = getattr(module, class_name, None)
    if cls is None:
        names = [n for n in dir(module) if not n.startswith("_")]
        return (
            f"module '{module_name}' has no '{class_name}'",
            f"check the class name{did_you_mean(class_name, names)}",
        )
    if not (isinstance(cls, type) and issubclass(cls, base)):
        return (
            f"'{target}' is not a subclass of tradeops.Strategy",
            "derive it from tradeops.Strategy: class X(Strategy)",
        )
    return None


@contextmanager
def _importable_from(directory: FsPath) -> Iterator[None]:
    """Let strategy modules import from the topology's folder and the working directory."""
    added = [p for p in (str(directory), os.getcwd()) if p not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for p in added:
            if p in sys.path:
                sys.path.remove(p)
