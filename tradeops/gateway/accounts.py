"""What each trading account has done today, and its limits. Pure: no sockets, no clocks.

A broker may hold several accounts (`brokers.NAME.accounts`); every strategy trades on one.
Besides each strategy's own limits (`orders.py`), the gateway checks the account's:

- `max_open_orders`: working orders of the account's strategies at once;
- `max_orders_per_day`: orders that left for the broker this UTC day (an order the desk
  refused does not count; one the broker rejected does: it reached the broker);
- `max_daily_loss`: realised loss of today's fills (average cost per symbol, over the
  account's fills since the journal began); past it, only orders that reduce a position go;
- `max_gross_notional`: Σ over symbols of the worst case of |position + working buys| and
  |position − working sells|, times the symbol's price, with the new order counted.

`AccountBook.replay` rebuilds the counters from the journal, so a gateway restart does not
reset the day.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tradeops.topology.model import AccountLimits

EPSILON = 1e-9


@dataclass
class Exposure:
    """One symbol of an account: position, and the remaining quantity of working orders."""

    position: float = 0.0
    buys: float = 0.0
    sells: float = 0.0

    def gross(self) -> float:
        return max(abs(self.position + self.buys), abs(self.position - self.sells))


@dataclass
class AccountBook:
    name: str
    limits: AccountLimits = field(default_factory=AccountLimits)
    day: str = ""  # the UTC date (YYYY-MM-DD) the day counters are for
    orders_today: int = 0
    realised_today: float = 0.0
    lots: dict[str, tuple[float, float]] = field(default_factory=dict)  # symbol → (qty, cost)

    @property
    def limited(self) -> bool:
        """Whether any limit is set (else there is nothing to check)."""
        return self.limits != AccountLimits()

    def roll(self, day: str) -> None:
        """A new day starts the day counters again."""
        if day != self.day:
            self.day, self.orders_today, self.realised_today = day, 0, 0.0

    def sent(self, day: str, count: int = 1) -> None:
        self.roll(day)
        self.orders_today += count

    def on_fill(self, day: str, symbol: str, side: str, qty: float, price: float) -> float:
        """A fill of the account: moves its average cost; returns the P&L it realised."""
        self.roll(day)
        position, cost = self.lots.get(symbol, (0.0, 0.0))
        signed = qty if side == "buy" else -qty
        realised = 0.0
        if abs(position) < EPSILON or (position > 0) == (signed > 0):  # opens or adds
            new = position + signed
            cost = (abs(position) * cost + qty * price) / abs(new)
            position = new
        else:  # reduces, closes, or flips
            closing = min(qty, abs(position))
            realised = closing * (price - cost) * (1.0 if position > 0 else -1.0)
            new = position + signed
            if abs(new) < EPSILON:
                new, cost = 0.0, 0.0
            elif (new > 0) != (position > 0):  # flipped: the rest opened at this price
                cost = price
            position = new
        self.lots[symbol] = (position, cost)
        self.realised_today += realised
        return realised

    def refusal(
        self,
        today: str,
        symbol: str,
        side: str,
        qty: float,
        at: float | None,
        open_orders: int,
        exposure: Mapping[str, Exposure],
        price: Callable[[str], float | None],
    ) -> str | None:
        """Why this account's limits refuse the order, or None. `at`: the order's price
        (its limit, else the symbol's latest); `open_orders`: the account's working orders
        besides this one; `exposure`: the account's symbols without this order."""
        self.roll(today)
        lim, name = self.limits, self.name
        if lim.max_open_orders is not None and open_orders + 1 > lim.max_open_orders:
            return (f"account '{name}' has {open_orders} working order(s), "
                    f"limits.max_open_orders {lim.max_open_orders}")
        if lim.max_orders_per_day is not None and self.orders_today + 1 > lim.max_orders_per_day:
            return (f"account '{name}' sent {self.orders_today} order(s) today (UTC), "
                    f"limits.max_orders_per_day {lim.max_orders_per_day}; more tomorrow")
        mine = exposure.get(symbol, Exposure())
        if lim.max_daily_loss is not None and -self.realised_today >= lim.max_daily_loss:
            signed = qty if side == "buy" else -qty
            reduces = mine.position * signed < 0 and qty <= abs(mine.position) + EPSILON
            if not reduces:
                return (f"account '{name}' lost {-self.realised_today:,.2f} today (realised), "
                        f"limits.max_daily_loss {lim.max_daily_loss:,.2f}: only orders that "
                        "reduce a position are accepted until tomorrow (UTC)")
        if lim.max_gross_notional is not None:
            return self._gross_refusal(symbol, side, qty, at, exposure, price)
        return None

    def _gross_refusal(self, symbol: str, side: str, qty: float, at: float | None,
                       exposure: Mapping[str, Exposure], price: Callable[[str], float | None]
                       ) -> str | None:
        limit = self.limits.max_gross_notional
        assert limit is not None
        after = dict(exposure)
        mine = after.get(symbol, Exposure())
        after[symbol] = Exposure(mine.position, mine.buys + (qty if side == "buy" else 0.0),
                                 mine.sells + (qty if side == "sell" else 0.0))
        gross = 0.0
        for sym, exp in after.items():
            size = exp.gross()
            if size < EPSILON:
                continue
            p = (at if sym == symbol and at is not None else price(sym)) or self.lots.get(
                sym, (0.0, 0.0))[1]
            if not p:
                return f"no price for {sym} yet to check limits.max_gross_notional; retry later"
            gross += size * p
        if gross > limit:
            return (f"account '{self.name}' would hold {gross:,.2f} gross notional (positions "
                    f"and working orders), beyond limits.max_gross_notional {limit:,.2f}")
        return None

    def status(self) -> dict[str, Any]:
        return {"day": self.day, "orders_today": self.orders_today,
                "realised_today": round(self.realised_today, 6)}


def replay(books: Mapping[str, AccountBook], account_of: Mapping[str, str],
           entries: Iterable[dict[str, Any]]) -> None:
    """Rebuild the books from the journal's lines: orders sent per day, and every fill
    (the day is the line's UTC date)."""
    orders: dict[str, tuple[str, str, str]] = {}  # cid → (account, symbol, side)
    for entry in entries:
        account = account_of.get(str(entry.get("strategy")))
        cid = str(entry.get("client_order_id") or "")
        if account is None or account not in books or not cid:
            continue
        book, day, event = books[account], str(entry.get("time", ""))[:10], entry.get("event")
        if event == "submit":
            orders[cid] = (account, str(entry.get("symbol", "")), str(entry.get("side", "")))
            book.sent(day)
        elif event == "rejected" and entry.get("refused") and cid in orders:
            book.sent(day, -1)  # refused by the desk: it never reached the broker
        elif event in ("filled", "partially_filled") and cid in orders:
            qty, price = entry.get("fill_qty"), entry.get("fill_price")
            if isinstance(qty, int | float) and isinstance(price, int | float) and qty > 0:
                _, symbol, side = orders[cid]
                book.on_fill(day, symbol, side, float(qty), float(price))
