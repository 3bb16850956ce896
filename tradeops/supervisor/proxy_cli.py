"""`tradeops proxy clients`: who is connected to a running desk's proxy, and how they fare."""

from __future__ import annotations

import json
from typing import Any

import typer

from tradeops.supervisor.cli.common import (
    FileOpt,
    Format,
    FormatOpt,
    NameOpt,
    RunDirOpt,
    ask,
    fail,
    locate,
)


def _age(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def render_clients(stats: dict[str, Any]) -> str:
    """The proxy's figures and one row per client, from its published status."""
    lines = [
        f"proxy {stats.get('url', '?')}: {stats.get('clients', 0)} clients, "
        f"{len(stats.get('subscriptions', {}))} subscriptions, "
        f"out {stats.get('messages_per_s', 0):g} msg/s ({stats.get('messages_out', 0)} total), "
        f"slow dropped {stats.get('dropped_slow', 0)}, conflated {stats.get('conflated', 0)}, "
        f"refused tokens {stats.get('refused_tokens', 0)}, errors {stats.get('errors', 0)}"
    ]
    for broker, g in sorted(stats.get("gateways", {}).items()):
        state = "linked" if g.get("connected") else f"NOT LINKED: {g.get('last_error', '')}"
        live = "live" if g.get("live") else f"not live: {g.get('reason', '')}"
        lines.append(f"gateway {broker}: {state}, {live}, {g.get('held', 0)} symbols held")
    header = ("ID", "DIALECT", "NAME", "PEER", "PATH", "AGE", "SYMBOLS", "SENT", "QUEUED")
    rows = [
        (
            str(c.get("id", "")),
            str(c.get("dialect", "?")) + ("/" + c["codec"] if c.get("codec") else ""),
            str(c.get("name", "")) or "-",
            str(c.get("peer", "")),
            str(c.get("path", "")),
            _age(float(c.get("age", 0))),
            str(c.get("symbols", 0)),
            str(c.get("sent", 0)),
            str(c.get("queued", 0)) + (" (conflating)" if c.get("conflating") else ""),
        )
        for c in stats.get("client_list", [])
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines.append("")
    for row in [header, *rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def clients(
    file: FileOpt = None,
    name: NameOpt = None,
    run_dir: RunDirOpt = None,
    output: FormatOpt = Format.text,
) -> None:
    """Clients of the proxy: dialect, address, symbols, messages sent and queued."""
    desk = locate(file, name, run_dir, output)
    reply = ask(desk, {"cmd": "status"}, output)
    rows = [p for p in reply.get("processes", []) if p.get("role") == "proxy"]
    if not rows:
        raise fail("this desk runs no proxy (settings.proxy.enabled is false)", 1, output)
    stats = rows[0].get("stats") or {}
    if not stats:
        raise fail(
            f"the proxy is {rows[0].get('state')} and has published no figures yet", 1, output
        )
    if output is Format.json:
        typer.echo(json.dumps(stats, indent=2))
    else:
        typer.echo(render_clients(stats))


def register(app: typer.Typer) -> None:
    proxy_app = typer.Typer(help="The websocket proxy of a running desk.", no_args_is_help=True)
    app.add_typer(proxy_app, name="proxy")
    proxy_app.command()(clients)
