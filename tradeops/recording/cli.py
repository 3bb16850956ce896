"""`tradeops data ls|show|head [DIR]`: what a recording directory holds, and its rows.

DIR defaults to the recording directory of the topology given with `--file` (its
`settings.record.dir`), else the current directory. Exit 0 on a readable recording (an empty
one too), 2 when DIR is not a recording directory or the topology records nothing.
"""

from __future__ import annotations

import datetime
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

Dir = Annotated[Path | None, typer.Argument(
    help="A recording directory (default: the --file topology's settings.record.dir, else .).",
    show_default=False)]
File = Annotated[Path | None, typer.Option(
    "--file", "-f", help="A topology: use its recording directory.", show_default=False)]
class Format(StrEnum):
    text = "text"
    json = "json"


FormatOpt = Annotated[Format, typer.Option("--format", help="text for people, json for machines.")]
Broker = Annotated[str | None, typer.Option(
    "--broker", help="The broker to read (needed when the directory holds several).")]


def _directory(directory: Path | None, file: Path | None) -> Path:
    if directory is not None:
        return directory
    if file is None:
        return Path.cwd()
    from tradeops.recording.layout import recording_dir
    from tradeops.topology.load import TopologyError, load_topology

    try:
        found = recording_dir(load_topology(file), file)
    except (TopologyError, OSError) as exc:
        raise _fail(f"cannot read {file}: {exc}") from None
    if found is None:
        raise _fail(f"{file} records nothing: add settings.record (docs/data.md), or name a "
                    "recording directory")
    return found


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _time(ns: int | None) -> str:
    if ns is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(ns / 1e9, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def ls(directory: Dir = None, file: File = None, output: FormatOpt = Format.text) -> None:
    """List partitions: broker, date, files, rows, size and exchange-time range."""
    from tradeops.recording.catalog import NotARecording, partitions

    where = _directory(directory, file)
    try:
        parts = partitions(where)
    except NotARecording as exc:
        raise _fail(str(exc)) from None
    if output is Format.json:
        typer.echo(json.dumps([p.as_dict() for p in parts], indent=2))
        return
    if not parts:
        typer.echo(f"no recording in {where}")
        return
    rows = [("BROKER", "DATE", "FILES", "ROWS", "SIZE", "FIRST (UTC)", "LAST (UTC)")]
    for p in parts:
        files = str(p.files) + (f" (+{p.open_files} open)" if p.open_files else "")
        rows.append((p.broker, p.date, files, str(p.rows), _size(p.bytes), _time(p.first_ns),
                     _time(p.last_ns)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def show(directory: Dir = None, file: File = None, broker: Broker = None,
         output: FormatOpt = Format.text) -> None:
    """Summarise one broker's recording: rows, sessions, symbols, kinds, ticks lost."""
    import pyarrow.compute as pc

    from tradeops.recording.catalog import NotARecording, read

    where = _directory(directory, file)
    try:
        table = read(where, broker, columns=["exchange_ns", "symbol", "kind", "session",
                                             "lost_before"])
    except NotARecording as exc:
        raise _fail(str(exc)) from None
    summary: dict[str, Any] = {"dir": str(where), "rows": table.num_rows}
    if table.num_rows:
        times = table["exchange_ns"].cast("int64")
        summary.update(
            first=_time(pc.min(times).as_py()), last=_time(pc.max(times).as_py()),
            sessions=len(pc.unique(table["session"])),
            lost=pc.sum(table["lost_before"]).as_py(),
            kinds=_counts(table["kind"].cast("string")),
            symbols=_counts(table["symbol"]),
        )
    if output is Format.json:
        typer.echo(json.dumps(summary, indent=2))
        return
    for key, value in summary.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {n}" for k, n in value.items())
        typer.echo(f"{key + ':':<10}{value}")


def _counts(column: Any) -> dict[str, int]:
    import pyarrow.compute as pc

    counts = pc.value_counts(column).to_pylist()
    return {c["values"]: c["counts"] for c in sorted(counts, key=lambda c: -c["counts"])}


def head(directory: Dir = None, file: File = None, broker: Broker = None,
         rows: Annotated[int, typer.Option("-n", "--rows", min=1, help="How many rows.")] = 10,
         symbol: Annotated[list[str] | None, typer.Option(
             "--symbol", help="Only this symbol (repeat for several).")] = None,
         output: FormatOpt = Format.text) -> None:
    """Print the first rows of one broker's recording, in the order they were recorded."""
    from tradeops.recording.catalog import NotARecording, read

    where = _directory(directory, file)
    try:
        table = read(where, broker, symbols=symbol or None)
    except NotARecording as exc:
        raise _fail(str(exc)) from None
    first = table.slice(0, rows)
    if output is Format.json:
        records = first.to_pydict()
        for key in ("exchange_ns", "receive_ns"):
            records[key] = first[key].cast("int64").to_pylist()
        typer.echo(json.dumps([dict(zip(records, row, strict=True))
                               for row in zip(*records.values(), strict=True)], indent=2))
        return
    shown = ("exchange_ns", "symbol", "kind", "price", "size", "bid", "bid_size", "ask",
             "ask_size", "seq", "lost_before")
    lines: list[tuple[str, ...]] = [shown]
    values = {name: first[name].to_pylist() for name in shown}
    values["exchange_ns"] = [_time(ns) for ns in first["exchange_ns"].cast("int64").to_pylist()]
    for i in range(first.num_rows):
        lines.append(tuple(_cell(values[name][i]) for name in shown))
    widths = [max(len(r[i]) for r in lines) for i in range(len(shown))]
    for r in lines:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _cell(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def register(app: typer.Typer) -> None:
    data = typer.Typer(help="Recorded market data: list, summarise, print (docs/data.md).",
                       no_args_is_help=True)
    app.add_typer(data, name="data")
    data.command("ls")(ls)
    data.command("show")(show)
    data.command("head")(head)
