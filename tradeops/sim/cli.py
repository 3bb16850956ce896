"""The `tradeops sim` command: run a simulated exchange in the foreground until Ctrl-C.

It prints one line, `tradeops sim listening on ws://HOST:PORT`, to stdout as soon as the port
is bound (so `--port 0` callers can read the port), then serves until SIGINT or SIGTERM and
exits 0 after closing every connection. Heavy imports (aiohttp) wait until the command runs,
so `tradeops --help` stays fast.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from tradeops.sim.options import SimConfigError, SimOptions, parse_keys, parse_rate_limit

_M = "Market"
_L = "Limits"
_F = "Faults"


def sim(
    host: Annotated[str, typer.Option(help="Address to bind; loopback unless told otherwise.")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind; 0 picks a free one (printed).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the random walk.", rich_help_panel=_M)] = 1,
    rate: Annotated[float, typer.Option(help="Ticks per second per symbol (a tick is a quote "
                                        "or a trade).", rich_help_panel=_M)] = 5.0,
    max_rate: Annotated[float, typer.Option(help="Cap on ticks per second over all symbols.",
                                            rich_help_panel=_M)] = 50_000.0,
    spread_bps: Annotated[float, typer.Option(help="Quoted spread in basis points.",
                                              rich_help_panel=_M)] = 5.0,
    volatility: Annotated[float, typer.Option(help="Std. dev. of one step's log return.",
                                              rich_help_panel=_M)] = 0.0002,
    hours: Annotated[str, typer.Option(help="24/7, or e.g. '09:30-16:00 America/New_York' "
                                       "(Mon-Fri).", rich_help_panel=_M)] = "24/7",
    bar_seconds: Annotated[float, typer.Option(help="Length of a bar in seconds.",
                                               rich_help_panel=_M)] = 60.0,
    symbol: Annotated[list[str] | None, typer.Option(
        help="A listed symbol (repeatable); none = every well-formed symbol.",
        rich_help_panel=_M)] = None,
    replay: Annotated[Path | None, typer.Option(help="Replay this CSV/Parquet file, or a "
                                                "recording directory, instead of the walk.",
                                                rich_help_panel=_M)] = None,
    speed: Annotated[float, typer.Option(help="Replay speed (1 = real time).",
                                         rich_help_panel=_M)] = 1.0,
    symbols_per_connection: Annotated[int, typer.Option(help="Symbols per connection (405).",
                                                        rich_help_panel=_L)] = 1000,
    max_connections: Annotated[int, typer.Option(help="Data connections per key (406).",
                                                 rich_help_panel=_L)] = 3,
    key: Annotated[list[str] | None, typer.Option(help="Accepted KEY:SECRET (repeatable); "
                                                  "none = any key.", rich_help_panel=_L)
                   ] = None,
    feed: Annotated[list[str] | None, typer.Option(
        help="Feeds the keys may use (repeatable; iex, sip, test, crypto/us); others get 409.",
        rich_help_panel=_L)] = None,
    order_rate_limit: Annotated[str | None, typer.Option(
        help="Order requests per key, e.g. 200/min or 10/1.5 (429 past it).",
        rich_help_panel=_L)] = None,
    slow_client_bytes: Annotated[int, typer.Option(help="Queued bytes before 407 slow client.",
                                                   rich_help_panel=_L)] = 8 * 1024 * 1024,
    auth_timeout: Annotated[float, typer.Option(help="Seconds to authenticate (404).",
                                                rich_help_panel=_L)] = 10.0,
    cash: Annotated[float, typer.Option(help="Starting cash of each account.",
                                        rich_help_panel=_L)] = 100_000.0,
    alltick_heartbeat_timeout: Annotated[float, typer.Option(
        help="AllTick dialect: seconds without a heartbeat before the server closes.",
        rich_help_panel=_L)] = 30.0,
    alltick_request_interval: Annotated[float, typer.Option(
        help="AllTick dialect: least seconds between two requests (429 otherwise).",
        rich_help_panel=_L)] = 1.0,
    drop_every: Annotated[float | None, typer.Option(help="Drop every connection every N s.",
                                                     rich_help_panel=_F)] = None,
    drop_code: Annotated[int, typer.Option(help="Close code of a drop.", rich_help_panel=_F)
                         ] = 1012,
    abrupt: Annotated[bool, typer.Option(help="Drops cut TCP without a close frame (1006).",
                                         rich_help_panel=_F)] = False,
    silent_every: Annotated[float | None, typer.Option(help="Go silent every N s.",
                                                       rich_help_panel=_F)] = None,
    silent_for: Annotated[float, typer.Option(help="Seconds each silence lasts.",
                                              rich_help_panel=_F)] = 0.0,
    reject_auth: Annotated[bool, typer.Option(help="Reject every authentication.",
                                              rich_help_panel=_F)] = False,
    delay: Annotated[float, typer.Option(help="Seconds before every reply.",
                                         rich_help_panel=_F)] = 0.0,
    reject_orders: Annotated[bool, typer.Option(help="Reject every order after accepting it.",
                                                rich_help_panel=_F)] = False,
    log_level: Annotated[str, typer.Option(help="Log level on stderr.")] = "INFO",
) -> None:
    """Run a local exchange speaking Alpaca's v2 dialect (market data, orders, trade updates)
    and AllTick's market-data websocket (/quote-stock-b-ws-api?token=...)."""
    try:
        options = SimOptions(
            host=host, port=port, seed=seed, rate=rate, max_rate=max_rate,
            spread_bps=spread_bps, volatility=volatility, hours=hours, bar_seconds=bar_seconds,
            symbols=tuple(symbol or ()), replay=replay, speed=speed,
            symbols_per_connection=symbols_per_connection, max_connections=max_connections,
            keys=parse_keys(key or []), feeds=tuple(feed) if feed else SimOptions().feeds,
            order_rate_limit=parse_rate_limit(order_rate_limit) if order_rate_limit else None,
            slow_client_bytes=slow_client_bytes, auth_timeout=auth_timeout, cash=cash,
            alltick_heartbeat_timeout=alltick_heartbeat_timeout,
            alltick_request_interval=alltick_request_interval,
            drop_every=drop_every, drop_code=drop_code, abrupt=abrupt,
            silent_every=silent_every, silent_for=silent_for, reject_auth=reject_auth,
            delay=delay, reject_orders=reject_orders)
        options.check()
    except SimConfigError as exc:
        typer.echo(f"tradeops sim: {exc}", err=True)
        raise typer.Exit(2) from None
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level=log_level.upper())
    import asyncio  # here, not at the top: `tradeops --help` need not start asyncio

    try:
        asyncio.run(serve(options))
    except SimConfigError as exc:  # e.g. a malformed replay file, found when it is loaded
        typer.echo(f"tradeops sim: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"tradeops sim: cannot bind {host}:{port}: {exc}", err=True)
        raise typer.Exit(1) from None


async def serve(options: SimOptions) -> None:
    """Start, announce the URL on stdout, serve until SIGINT/SIGTERM, close cleanly."""
    import asyncio

    from tradeops.sim.server import start

    running = await start(options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"tradeops sim listening on {running.url}", flush=True)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await running.close()


def register(app: typer.Typer) -> None:
    """Add the `sim` command to the tradeops CLI."""
    app.command("sim")(sim)
