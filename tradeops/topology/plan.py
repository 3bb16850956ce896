"""From the model to what will run: the process groups, with every strategy placed in one.

A strategy that no group names runs in a process of its own, named after the strategy, with
the default process settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from tradeops.topology.model import Process, Topology


@dataclass(frozen=True)
class Group:
    """One strategy host process: its name, its strategies in file order, its settings."""

    name: str
    strategies: tuple[str, ...]
    settings: Process
    implicit: bool = False


def groups(topology: Topology) -> list[Group]:
    """Every process group: the declared ones, then one per strategy left ungrouped.

    A strategy named by several groups is placed in the first (validate reports the rest);
    names that do not exist are skipped here and reported by validate.
    """
    placed: set[str] = set()
    result: list[Group] = []
    for name, process in topology.processes.items():
        members = []
        for strategy in process.strategies:
            if strategy in topology.strategies and strategy not in placed:
                placed.add(strategy)
                members.append(strategy)
        result.append(Group(name, tuple(members), process))
    for strategy in topology.strategies:
        if strategy not in placed:
            result.append(Group(strategy, (strategy,), Process(strategies=[strategy]), True))
    return result
