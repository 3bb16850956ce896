"""Who wants what: interest in (symbol, mode) reference-counted across clients.

Pure bookkeeping. Each client holds at most one mode per symbol (asking again replaces it);
the upstream is asked for the strongest mode any client holds. Every mutation returns the
symbols whose strongest mode changed, which is exactly what the upstream must hear.

Two roles count interest the same way: the gateway (its clients' interest, for the broker's
pool) and the proxy (its websocket clients' interest, for each gateway). It lives here, below
both, so the proxy needs nothing of the gateway's internals to count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable

from tradeops.protocol.modes import Mode, strongest

Client = Hashable


class Interest:
    def __init__(self) -> None:
        self._by_client: dict[Client, dict[str, Mode]] = {}
        self._counts: dict[str, Counter[Mode]] = {}

    def strongest(self, symbol: str) -> Mode | None:
        return strongest(self._counts.get(symbol, ()))

    def holds(self, client: Client, symbol: str) -> Mode | None:
        return self._by_client.get(client, {}).get(symbol)

    def add(self, client: Client, symbol: str, mode: Mode) -> dict[str, Mode | None]:
        """Client wants `symbol` at `mode`; returns {symbol: new strongest} if that changed."""
        before = self.strongest(symbol)
        held = self._by_client.setdefault(client, {})
        old = held.get(symbol)
        if old == mode:
            return {}
        if old is not None:
            self._release(symbol, old)
        held[symbol] = mode
        self._counts.setdefault(symbol, Counter())[mode] += 1
        after = self.strongest(symbol)
        return {symbol: after} if after != before else {}

    def remove(self, client: Client, symbol: str) -> dict[str, Mode | None]:
        """Client no longer wants `symbol`; returns {symbol: new strongest} if that changed."""
        held = self._by_client.get(client)
        if not held or symbol not in held:
            return {}
        before = self.strongest(symbol)
        self._release(symbol, held.pop(symbol))
        after = self.strongest(symbol)
        return {symbol: after} if after != before else {}

    def drop(self, client: Client) -> dict[str, Mode | None]:
        """The client went away: release everything it held."""
        changed: dict[str, Mode | None] = {}
        for symbol in list(self._by_client.get(client, {})):
            changed.update(self.remove(client, symbol))
        self._by_client.pop(client, None)
        return changed

    def _release(self, symbol: str, mode: Mode) -> None:
        counts = self._counts[symbol]
        counts[mode] -= 1
        if counts[mode] <= 0:
            del counts[mode]
        if not counts:
            del self._counts[symbol]

    def clients(self) -> list[Client]:
        return list(self._by_client)

    def symbols_of(self, client: Client) -> dict[str, Mode]:
        return dict(self._by_client.get(client, {}))

    def wanted(self) -> dict[str, Mode]:
        """Every symbol anyone wants, at its strongest mode."""
        return {s: m for s in self._counts if (m := self.strongest(s)) is not None}
