"""`tradeops status` as a table: one row per process, with its role's own figures."""

from __future__ import annotations

from typing import Any


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 1048576:.0f}M"


def _symbols(why: dict[str, str], shown: int = 3) -> str:
    """`AAPL (broker refused: 410 ...), MSFT (...) and 4 more`."""
    items = [f"{symbol} ({reason})" for symbol, reason in sorted(why.items())[:shown]]
    more = len(why) - shown
    return ", ".join(items) + (f" and {more} more" if more > 0 else "")


def extra(row: dict[str, Any]) -> str:
    stats = row.get("stats") or {}
    if row["role"] == "host" and stats:
        parts = [
            f"ticks/s {stats.get('ticks_per_s', 0):g}",
            f"lag {stats.get('lag_ms', 0):g}ms",
            f"lost {stats.get('lost', 0)}",
        ]
        if stats.get("errors"):
            parts.append(f"errors {stats['errors']}")
        if stats.get("last_error"):
            parts.append(f"last error: {stats['last_error']}")
        return ", ".join(parts)
    if row["role"] == "gateway" and stats:
        conns = stats.get("connections", [])
        ages = [c["last_tick_age"] for c in conns if c.get("last_tick_age") is not None]
        age = f"{min(ages):.1f}s" if ages else "-"
        live = "live" if stats.get("live") else f"NOT LIVE: {stats.get('reason', '')}"
        orders = stats.get("orders") or {}
        busy = ", ".join(f"{n} {k}" for k, n in orders.items()
                         if n and isinstance(n, int) and k != "auto_cancels")
        halted = ", ".join(str(scope).split(":", 1)[1] for scope in orders.get("halted") or {})
        if halted:
            busy += f"{', ' if busy else ''}HALTED {halted}"
        refused, retrying = stats.get("refused") or {}, stats.get("retrying") or {}
        backfill = stats.get("backfill")
        malformed = sum(c.get("malformed", 0) for c in conns)
        return (
            f"{len(conns)} conn, {stats.get('symbols', 0)} symbols, last tick {age}, "
            f"reconnects {sum(c.get('reconnects', 0) for c in conns)}, {live}"
            + (f"; backfilled {backfill['trades']} trades in {backfill['outages']} outages"
               if backfill else "")
            + (f"; orders: {busy}" if busy else "")
            + (f"; retrying {_symbols(retrying)}" if retrying else "")
            + (f"; REFUSED {_symbols(refused)}" if refused else "")
            + (f"; malformed dropped {malformed}" if malformed else "")
        )
    if row["role"] == "recorder" and stats:
        return "; ".join(_recording(broker, b) for broker, b in stats.get("brokers", {}).items())
    if row["role"] == "sim":
        return str((row.get("detail") or {}).get("url", ""))
    if row["role"] == "proxy" and stats:
        down = sorted(b for b, g in stats.get("gateways", {}).items() if not g.get("connected"))
        parts = [
            str(stats.get("url", "")),
            f"{stats.get('clients', 0)} clients",
            f"{len(stats.get('subscriptions', {}))} subscriptions",
            f"out {stats.get('messages_per_s', 0):g} msg/s",
            f"slow dropped {stats.get('dropped_slow', 0)}",
            f"refused tokens {stats.get('refused_tokens', 0)}",
        ]
        if down:
            parts.append(f"NO GATEWAY: {', '.join(down)}")
        return ", ".join(parts)
    return ""


def _recording(broker: str, b: dict[str, Any]) -> str:
    """`sim: 12034 rows, 2 files, lost 512 in 1 gaps (last 14:03:07 UTC, 512 ticks)`."""
    import datetime

    text = f"{broker}: {b.get('rows', 0)} rows, {b.get('files', 0)} files, lost {b.get('lost', 0)}"
    last = b.get("last_gap")
    if b.get("gaps") and last:
        at = datetime.datetime.fromtimestamp(last["at"], datetime.UTC).strftime("%H:%M:%S")
        text += f" in {b['gaps']} gaps (last {at} UTC, {last['lost']} ticks)"
    return text


def degraded(reply: dict[str, Any]) -> list[str]:
    """Why the desk is not whole, one line per cause; empty when every process runs, every
    feed is live and every strategy runs."""
    problems = [f"alert sink {a['sink']} failing: {a['error']}"
                for a in reply.get("alerts") or [] if not a.get("ok")]
    for p in reply["processes"]:
        name, stats = p["name"], p.get("stats") or {}
        if p["state"] != "running":
            why = f": {p['reason']}" if p.get("reason") else ""
            problems.append(f"{name} is {p['state']}{why}")
            continue
        orders, broker = stats.get("orders") or {}, name.removeprefix("gateway-")
        for account in orders.get("positions_mismatch") or []:
            problems.append(f"{name}: positions of account {broker}.{account} differ from the "
                            f"broker's; its orders are refused until "
                            f"`tradeops orders --ack {broker}.{account}`")
        for account, why in (orders.get("auth_rejected") or {}).items():
            problems.append(f"{name}: the broker refused the login of account "
                            f"{broker}.{account} ({why}); check its credentials")
        for scope, since in (orders.get("halted") or {}).items():
            kind, target = str(scope).split(":", 1)
            label = {"broker": broker, "account": f"{broker}.{target}"}.get(kind, target)
            problems.append(f"{name}: {kind} {label} halted since {since}; "
                            f"`tradeops resume {label}` reopens it")
        market_open = stats.get("market", "open") == "open"  # off-hours is not an outage
        if p["role"] == "gateway" and stats and not stats.get("live", True) and market_open:
            problems.append(f"{name}: feed not live: {stats.get('reason', '')}")
        for strategy, state in (stats.get("strategies") or {}).items():
            if state.get("stuck"):
                problems.append(f"strategy {strategy}: {state['stuck']}")
            elif not state.get("running", True):
                problems.append(f"strategy {strategy} stopped: {state.get('error', '')}")
        for area, why in (p.get("problems") or {}).items():
            problems.append(f"{name}: {area}: {why}")
    return problems


def render_status(reply: dict[str, Any]) -> str:
    header = ("NAME", "ROLE", "STATE", "PID", "UPTIME", "RESTARTS", "CPU%", "RSS", "PIN")
    rows = []
    for p in reply["processes"]:
        rows.append(
            (
                p["name"],
                p["role"],
                p["state"],
                str(p["pid"] or "-"),
                age(p["uptime"]),
                str(p["restarts"]),
                "-" if p["cpu"] is None else f"{p['cpu']:g}",
                mib(p["rss"]),
                ",".join(map(str, p["pin"])) if p["pin"] else "-",
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"desk '{reply['desk']}' (supervisor pid {reply['pid']}, up {age(reply['uptime'])})"]
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for p, row in zip(reply["processes"], rows, strict=True):
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
        detail = extra(p) or p.get("reason", "")
        problems = p.get("problems") or {}
        if problems:
            degraded = "; ".join(f"{area}: {why}" for area, why in problems.items())
            detail = f"DEGRADED ({degraded}) {detail}"
        lines.append(f"{line}  {detail}".rstrip())
    return "\n".join(lines)
