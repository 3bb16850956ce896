"""The NATS subjects of a desk: one place that names them, for both ends of a bridge.

    tradeops.DESK.tick.BROKER.SYMBOL   batches of a broker's bus records (wire.py); with
                                       settings.cluster.jetstream also kept on JetStream, in
                                       the stream `tradeops-DESK-tick-BROKER` (history.py)
    tradeops.DESK.ctl.BROKER           a remote node's interest: request/reply (JSON)
    tradeops.DESK.health.BROKER        the gateway's liveness, on change and every second
    tradeops.DESK.order.BROKER         a remote host's order message: request/reply (JSON)
    tradeops.DESK.updates.BROKER.NODE.GROUP   what the gateway tells that group's host
    tradeops.DESK.status.NODE          a node's supervisor answers with its processes
    tradeops.DESK.command.NODE         restart, stop, start of one of that node's processes

A symbol becomes one subject token: bytes outside ``[A-Za-z0-9_:/=+-]`` (a dot, which splits
tokens; ``*`` and ``>``, which are wildcards; spaces; ``%`` itself) are written ``%XX``, so
``BRK.B`` is ``BRK%2EB`` and every symbol maps to exactly one token and back.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(rb"[^A-Za-z0-9_:/=+-]")
_ESCAPE = re.compile(r"%([0-9A-F]{2})")


def escape_symbol(symbol: str) -> str:
    """`symbol` as one NATS subject token (the empty symbol of a hole record: `%`)."""
    if not symbol:
        return "%"
    raw = _UNSAFE.sub(lambda m: b"%%%02X" % m.group(0)[0], symbol.encode())
    return raw.decode("ascii")


def unescape_symbol(token: str) -> str:
    if token == "%":
        return ""
    return bytes(_unescape_bytes(token)).decode()


def _unescape_bytes(token: str) -> bytearray:
    out = bytearray()
    pos = 0
    for match in _ESCAPE.finditer(token):
        out += token[pos : match.start()].encode()
        out.append(int(match.group(1), 16))
        pos = match.end()
    out += token[pos:].encode()
    return out


def ticks(desk: str, broker: str, symbol: str | None = None) -> str:
    """The subject of one symbol's ticks; without a symbol, all of the broker's (wildcard)."""
    token = escape_symbol(symbol) if symbol is not None else "*"
    return f"tradeops.{desk}.tick.{broker}.{token}"


def node_ticks(desk: str, broker: str, node: str) -> str:
    """The broker's ticks for one remote node: each ring read's records of the symbols that
    node wants, with the read's whole seq range (so a lost message shows as a gap)."""
    return f"tradeops.{desk}.node.{node}.tick.{broker}"


def all_ticks(desk: str, broker: str) -> str:
    """Every tick subject of the broker, however many tokens (what its stream captures)."""
    return f"tradeops.{desk}.tick.{broker}.>"


def control(desk: str, broker: str) -> str:
    return f"tradeops.{desk}.ctl.{broker}"


def health(desk: str, broker: str) -> str:
    return f"tradeops.{desk}.health.{broker}"


def orders(desk: str, broker: str) -> str:
    return f"tradeops.{desk}.order.{broker}"


def updates(desk: str, broker: str, node: str, group: str | None = None) -> str:
    """What the gateway says to a remote group's host; without a group, all of the node's."""
    return f"tradeops.{desk}.updates.{broker}.{node}." + (group if group is not None else "*")


def status(desk: str, node: str) -> str:
    return f"tradeops.{desk}.status.{node}"


def command(desk: str, node: str) -> str:
    return f"tradeops.{desk}.command.{node}"
