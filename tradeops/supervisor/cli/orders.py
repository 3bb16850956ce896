"""`tradeops orders`: the working orders of a running desk and its recent order journal."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from tradeops.supervisor.cli.common import (
    Desk,
    FileOpt,
    Format,
    FormatOpt,
    NameOpt,
    NodeOpt,
    RunDirOpt,
    fail,
    locate,
)
from tradeops.supervisor.control import NotRunning, request


def orders(
    strategy: Annotated[
        str | None, typer.Option("--strategy", "-s", help="Only this strategy.")
    ] = None,
    lines: Annotated[int, typer.Option("-n", min=0, help="Journal lines to show.")] = 20,
    file: FileOpt = None,
    name: NameOpt = None,
    run_dir: RunDirOpt = None,
    output: FormatOpt = Format.text,
    node: NodeOpt = None,
    ack: Annotated[str | None, typer.Option(
        "--ack", metavar="BROKER[.ACCOUNT]",
        help="Acknowledge that an account's positions differ from its strategies' (after "
             "checking the account): its new orders are accepted again. BROKER means each "
             "of its accounts; a bare ACCOUNT name works when one broker has it.")] = None,
) -> None:
    """Working orders (asked of each gateway) and the recent order journal."""
    from tradeops.gateway.journal import journal_path, tail

    desk = locate(file, name, run_dir, output, node=node)
    if ack is not None:
        _acknowledge(desk, ack, output)
        return
    if strategy is not None:
        _check_strategy(desk, strategy, output)
    working = _working(desk, strategy)
    journal = journal_path(desk.paths.run_dir)
    entries = tail(journal, lines, strategy)
    if output is Format.json:
        typer.echo(json.dumps({"ok": True, "desk": desk.paths.name, "working": working,
                               "journal": str(journal), "entries": entries}, indent=2))
        return
    typer.echo(f"working orders: {len(working)}")
    for o in working:
        price = "market" if o["limit"] is None else f"limit {o['limit']:g}"
        typer.echo(f"  {o['strategy']:<16} {o['broker']:<8} {o['order_id']:<14} "
                   f"{o['side']:<4} {o['qty']:g} {o['symbol']} {price} {o['status']} "
                   f"(filled {o['filled_qty']:g})")
    typer.echo(f"\njournal ({journal}), last {len(entries)}:")
    for e in entries:
        rest = {k: v for k, v in e.items() if k not in ("time", "event", "strategy")
                and v not in (None, "")}
        typer.echo(f"  {e.get('time', '-')} {e.get('event', '-'):<16} {e.get('strategy', '-'):<16} "
                   + " ".join(f"{k}={v}" for k, v in rest.items()))


def _check_strategy(desk: Desk, strategy: str, output: Format) -> None:
    """A strategy the desk does not declare is a usage error naming those it does."""
    known: list[str] = []
    if desk.topology is not None:
        known = list(desk.topology.strategies)
    else:
        try:
            reply = request(desk.paths.control, {"cmd": "status"}, 30.0)
        except (NotRunning, OSError, ValueError):
            return  # neither file nor running desk to ask: the journal alone decides
        known = [s for p in reply.get("processes", []) for s in p.get("strategies", [])]
    if strategy not in known:
        raise fail(
            f"desk '{desk.paths.name}' has no strategy '{strategy}'; its strategies: "
            f"{', '.join(sorted(known)) or '(none)'}",
            2,
            output,
        )


def _working(desk: Desk, strategy: str | None) -> list[dict[str, Any]]:
    """Each gateway's working orders (of one strategy when given), with its broker."""
    from tradeops.gateway.client import GatewayClient, GatewayError

    working: list[dict[str, Any]] = []
    run_dir, name = desk.paths.run_dir, desk.paths.name
    for sock in sorted(run_dir.glob(f"{name}-gw-*.sock")):
        try:
            with GatewayClient(str(sock), "tradeops orders") as client:
                reply = client.request({"op": "orders"})
        except GatewayError as exc:
            typer.echo(f"warning: {sock.name}: {exc}", err=True)
            continue
        broker = sock.stem.split("-gw-", 1)[1]
        working += [o | {"broker": broker} for o in reply.get("orders", {}).get("working", [])
                    if strategy is None or o["strategy"] == strategy]
    return working


def _acknowledge(desk: Desk, target: str, output: Format) -> None:
    """`--ack BROKER` (its every account), `--ack BROKER.ACCOUNT` or `--ack ACCOUNT`."""
    from tradeops.supervisor.cli.gateways import ask_gateways, known_targets

    broker_part = target.split(".", 1)[0]
    replies, unreachable = ask_gateways(desk, {"op": "ack_positions", "target": target},
                                        "tradeops orders --ack")
    if "." in target or broker_part in replies or broker_part in unreachable:
        replies = {b: r for b, r in replies.items() if b == broker_part} or replies
    acted = {b: r for b, r in replies.items() if r.get("ok") and r.get("known")}
    if not acted:
        if broker_part in unreachable:
            raise fail(f"cannot reach the gateway of broker '{broker_part}': "
                       f"{unreachable[broker_part]}", 1, output)
        raise fail(f"no running gateway knows '{target}'; acknowledge one of: "
                   f"{', '.join(t for t in known_targets(replies) if t != '') or '-'}",
                   2, output)
    was = {f"{b}.{a}": symbols for b, r in acted.items()
           for a, symbols in r.get("acknowledged", {}).items()}
    if output is Format.json:
        typer.echo(json.dumps({"ok": True, "target": target, "acknowledged": was}))
    elif was:
        for account, symbols in was.items():
            typer.echo(f"account {account}: positions acknowledged ({', '.join(symbols)}); "
                       "orders are accepted again")
    else:
        typer.echo(f"{target}: nothing to acknowledge; its positions match the broker's")


def register(app: typer.Typer) -> None:
    app.command()(orders)
