"""`tradeops halt`, `resume` and `flatten`: the kill switch and the way out.

Each asks every gateway of the running desk; the gateway that knows the target (its broker,
`BROKER.ACCOUNT`, or one of its strategies) acts on it and says so. A halt is journalled, so
it outlives a gateway restart, and stays until `tradeops resume` names the same target.
"""

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
from tradeops.supervisor.cli.gateways import ask_gateways, known_targets

TargetArg = Annotated[
    str | None,
    typer.Argument(metavar="[BROKER | BROKER.ACCOUNT | STRATEGY]",
                   help="What to halt (default: every broker of the desk).", show_default=False),
]


def _scoped(desk: Desk, op: str, target: str | None, output: Format) -> dict[str, Any]:
    """Send `op` for `target` to every gateway; fail when no gateway knows the target or a
    gateway it may concern did not answer."""
    replies, unreachable = ask_gateways(desk, {"op": op, "target": target or ""},
                                        f"tradeops {op}")
    acted = {b: r for b, r in replies.items() if r.get("ok") and r.get("known")}
    if target is not None and not acted and not unreachable:
        known = known_targets(replies)
        raise fail(f"no broker of desk '{desk.paths.name}' knows '{target}'; halt one of: "
                   f"{', '.join(known) or '(no gateway running)'}", 2, output)
    if not acted and not replies:
        raise fail(f"desk '{desk.paths.name}' has no gateway running"
                   + "".join(f"; {b}: {why}" for b, why in unreachable.items()), 1, output)
    for broker, reply in replies.items():
        if not reply.get("ok"):
            unreachable[broker] = str(reply.get("error", "refused"))
    return {"acted": acted, "unreachable": unreachable}


def _label(broker: str, scope: list[str]) -> str:
    kind, target = scope
    return {"broker": broker, "account": f"{broker}.{target}"}.get(kind, target)


def halt(target: TargetArg = None, file: FileOpt = None, name: NameOpt = None,
         run_dir: RunDirOpt = None, output: FormatOpt = Format.text,
         node: NodeOpt = None) -> None:
    """Block new orders of a broker, an account or a strategy, and cancel its working
    orders. The halt is journalled: it outlives a gateway restart until `tradeops resume`.
    On a desk over several nodes it reaches gateways on other nodes over NATS."""
    desk = locate(file, name, run_dir, output, node=node)
    outcome = _scoped(desk, "halt", target, output)
    _report(outcome, "halted", "new orders refused, working orders being cancelled", output)


def resume(target: TargetArg = None, file: FileOpt = None, name: NameOpt = None,
           run_dir: RunDirOpt = None, output: FormatOpt = Format.text,
           node: NodeOpt = None) -> None:
    """Lift a halt: the same target `tradeops halt` was given (default: every broker)."""
    desk = locate(file, name, run_dir, output, node=node)
    outcome = _scoped(desk, "resume", target, output)
    _report(outcome, "resumed", "new orders accepted", output)


def _report(outcome: dict[str, Any], verb: str, meaning: str, output: Format) -> None:
    acted, unreachable = outcome["acted"], outcome["unreachable"]
    if output is Format.json:
        typer.echo(json.dumps({"ok": not unreachable,
                               verb: [_label(b, r["scope"]) for b, r in acted.items()],
                               "unreachable": unreachable}, indent=2))
    else:
        for broker, reply in acted.items():
            note = "" if reply.get("resumed", True) else " (was not halted)"
            typer.echo(f"{verb} {_label(broker, reply['scope'])}: {meaning}{note}")
        for broker, why in unreachable.items():
            typer.echo(f"broker '{broker}': NOT {verb}: {why}", err=True)
    if unreachable:
        raise typer.Exit(1)


def flatten(
    strategy: Annotated[str, typer.Argument(help="The strategy whose positions to close.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
    = False,
    file: FileOpt = None, name: NameOpt = None, run_dir: RunDirOpt = None,
    output: FormatOpt = Format.text, node: NodeOpt = None,
) -> None:
    """Close a strategy's positions with market orders, after cancelling its working orders.
    Asks for confirmation first (--yes for scripts)."""
    desk = locate(file, name, run_dir, output, node=node)
    replies, unreachable = ask_gateways(desk, {"op": "flatten", "target": strategy,
                                              "dry_run": True}, "tradeops flatten")
    owner = next((b for b, r in replies.items() if r.get("known")), None)
    if owner is None:
        where = "".join(f"; {b}: {why}" for b, why in unreachable.items())
        raise fail(f"no running gateway of desk '{desk.paths.name}' trades strategy "
                   f"'{strategy}'{where}; strategies: "
                   f"{', '.join(t for t in known_targets(replies) if '.' not in t) or '-'}",
                   2 if not unreachable else 1, output)
    positions: dict[str, float] = replies[owner].get("positions", {})
    working = int(replies[owner].get("working", 0))
    if not positions and not working:
        if output is Format.json:
            typer.echo(json.dumps({"ok": True, "strategy": strategy, "orders": []}))
        else:
            typer.echo(f"strategy '{strategy}' has no position and no working order")
        return
    plan = [f"{'sell' if q > 0 else 'buy'} {abs(q):g} {s} at market"
            for s, q in sorted(positions.items())]
    if not yes:
        if output is Format.json:
            raise fail("flatten asks for confirmation; pass --yes with --format json", 2, output)
        typer.echo(f"strategy '{strategy}' on broker '{owner}': cancel {working} working "
                   f"order(s), then " + ("; ".join(plan) or "nothing to close"))
        if not typer.confirm("go ahead?", default=False):
            raise typer.Exit(1)
    done, _ = ask_gateways(desk, {"op": "flatten", "target": strategy}, "tradeops flatten")
    reply = done.get(owner, {"ok": False})
    orders = reply.get("orders", [])
    if output is Format.json:
        typer.echo(json.dumps({"ok": bool(reply.get("ok")), "strategy": strategy,
                               "orders": orders}, indent=2))
    else:
        for o in orders:
            refused = f": REFUSED {o['refused']}" if o.get("refused") else ""
            typer.echo(f"  {o['side']} {o['qty']:g} {o['symbol']} at market "
                       f"({o['client_order_id']}){refused}")
        typer.echo("sent; `tradeops orders -s " + strategy + "` shows the fills")
    if not reply.get("ok") or any(o.get("refused") for o in orders):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(halt)
    app.command()(resume)
    app.command()(flatten)
