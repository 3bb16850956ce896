"""Which strategies get a tick, in which order: a pure table, rebuilt when interest changes.

A strategy subscribed at `quote` receives trades and quotes; at `trade`, trades; at `depth`,
trades, quotes and books (depth ⊇ quote ⊇ trade); a mode with `+bars` receives bars too,
and likewise daily and updated bars, statuses and LULD bands (protocol/modes.py). The host
hands bars to `on_bar`, books to `on_book`, statuses to `on_status`, bands to `on_luld`,
trades and quotes to `on_tick`; corrections and cancel/errors reach no strategy. Within
one process a tick goes to critical strategies first, then high, normal, low; ties keep the
topology's order.

The host looks a tick up by its raw fields (:meth:`DispatchTable.by_raw`: the 32-byte symbol
field and the kind code, as the ring holds them), so a tick costs one dict lookup and no
str decode of its symbol or kind (two property calls per tick before, issue 13).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from tradeops.protocol.modes import KIND_NEEDS, Mode, receives, strongest
from tradeops.protocol.tick import KIND_CODES, STRATEGY_KINDS, SymbolError, encode_symbol
from tradeops.runtime.config import PRIORITY_ORDER


@dataclass
class DispatchTable:
    """(broker, symbol, kind) → strategy names in dispatch order."""

    priority: dict[str, int] = field(default_factory=dict)  # strategy → rank
    order: dict[str, int] = field(default_factory=dict)  # strategy → topology position
    _subs: dict[tuple[str, str], dict[str, Mode]] = field(default_factory=lambda: defaultdict(dict))
    _table: dict[tuple[str, str, str], tuple[str, ...]] = field(default_factory=dict)
    # broker -> (symbol field, kind code) -> names: the same table keyed as the ring's bytes.
    _raw: dict[str, dict[tuple[bytes, int], tuple[str, ...]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    # broker -> the symbol fields some strategy receives anything of (updated in place)
    _wanted: dict[str, set[bytes]] = field(default_factory=lambda: defaultdict(set))

    def add_strategy(self, name: str, priority: str) -> None:
        self.priority[name] = PRIORITY_ORDER[priority]
        self.order[name] = len(self.order)

    def subscribe(self, strategy: str, broker: str, symbol: str, mode: Mode) -> None:
        self._subs[(broker, symbol)][strategy] = mode
        self._rebuild(broker, symbol)

    def unsubscribe(self, strategy: str, broker: str, symbol: str) -> None:
        self._subs[(broker, symbol)].pop(strategy, None)
        self._rebuild(broker, symbol)

    def drop(self, strategy: str) -> list[tuple[str, str]]:
        """Remove a strategy everywhere; returns the (broker, symbol) it held."""
        held = [key for key, subs in self._subs.items() if strategy in subs]
        for broker, symbol in held:
            self.unsubscribe(strategy, broker, symbol)
        return held

    def symbols(self, broker: str) -> list[str]:
        """Every symbol some strategy holds on `broker`."""
        return [sym for (b, sym), subs in self._subs.items() if b == broker and subs]

    def strongest(self, broker: str, symbol: str) -> Mode | None:
        return strongest(self._subs.get((broker, symbol), {}).values())

    def targets(self, broker: str, symbol: str, kind: str) -> tuple[str, ...]:
        return self._table.get((broker, symbol, kind), ())

    def by_raw(self, broker: str) -> dict[tuple[bytes, int], tuple[str, ...]]:
        """(32-byte symbol field, kind code) -> strategy names in dispatch order, for
        ``broker``: what :meth:`targets` answers, keyed by a tick's raw fields. The same dict
        object for the broker's lifetime, updated in place."""
        return self._raw[broker]

    def wanted(self, broker: str) -> set[bytes]:
        """The 32-byte symbol fields of ``broker`` some strategy receives anything of: the
        host reads only these from the ring. The same set object for the broker's lifetime,
        updated in place as strategies subscribe and unsubscribe."""
        return self._wanted[broker]

    def _rebuild(self, broker: str, symbol: str) -> None:
        subs = self._subs.get((broker, symbol), {})
        try:
            raw: bytes | None = encode_symbol(symbol)
        except SymbolError:
            raw = None  # the bus cannot carry it: no tick will ask
        by_raw = self._raw[broker]
        received = False  # some strategy receives some kind of it
        for kind in KIND_NEEDS:
            if kind not in STRATEGY_KINDS:  # market events for the proxy's clients only
                continue
            names = [s for s, mode in subs.items() if receives(mode, kind)]
            names.sort(key=lambda s: (self.priority[s], self.order[s]))
            key = (broker, symbol, kind)
            raw_key = (raw, KIND_CODES[kind]) if raw is not None else None
            if names:
                received = True
                self._table[key] = tuple(names)
                if raw_key is not None:
                    by_raw[raw_key] = tuple(names)
            else:
                self._table.pop(key, None)
                if raw_key is not None:
                    by_raw.pop(raw_key, None)
        if raw is not None:
            if received:
                self._wanted[broker].add(raw)
            else:
                self._wanted[broker].discard(raw)
