"""Checks of `settings.record`: the brokers it names, its symbols, and its directory."""

from __future__ import annotations

from pathlib import Path

from tradeops.topology import model as m
from tradeops.topology.check_market import symbol_problem
from tradeops.topology.findings import Severity, did_you_mean
from tradeops.topology.load import Loaded

E, W = Severity.ERROR, Severity.WARNING
PATH = ("settings", "record")


def recorded_brokers(topo: m.Topology) -> list[str]:
    """The brokers the recorder reads (its `brokers`, or all), in the file's order."""
    record = topo.settings.record
    if record is None:
        return []
    return [b for b in topo.brokers if record.brokers is None or b in record.brokers]


def check_record(loaded: Loaded, topo: m.Topology) -> None:
    record = topo.settings.record
    if record is None:
        return
    known = list(topo.brokers)
    for i, name in enumerate(record.brokers or []):
        if name not in topo.brokers:
            loaded.findings.append(loaded.finding(
                E, "unknown-broker", (*PATH, "brokers", i),
                f"settings.record names broker '{name}', which is not declared",
                f"use one of: {', '.join(known)}{did_you_mean(name, known)}",
                name=name,
            ))
    if record.brokers == []:
        loaded.findings.append(loaded.finding(
            E, "empty-record", (*PATH, "brokers"), "settings.record records no broker",
            "list at least one broker, or leave `brokers` out to record them all",
        ))
    if record.symbols == []:
        loaded.findings.append(loaded.finding(
            E, "empty-record", (*PATH, "symbols"), "settings.record records no symbol",
            "list at least one symbol, or leave `symbols` out to record every symbol",
        ))
    for i, symbol in enumerate(record.symbols or []):
        for name in recorded_brokers(topo):
            problem = symbol_problem(topo.brokers[name], symbol)
            if problem:
                loaded.findings.append(loaded.finding(
                    E, "symbol-format", (*PATH, "symbols", i),
                    f"'{symbol}' is not a {problem[0]} symbol (broker '{name}' is recorded)",
                    f"{problem[1]}; or record brokers of other symbol formats without "
                    "`symbols`",
                    name=symbol,
                ))
    where = Path(record.dir).expanduser()
    if (where if where.is_absolute() else loaded.base_dir / where).is_file():
        loaded.findings.append(loaded.finding(
            E, "record-dir", (*PATH, "dir"), f"settings.record.dir {record.dir} is a file",
            "name a directory (it is created when missing)", name=record.dir,
        ))
