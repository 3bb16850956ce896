"""The safety gate as a strategy asks it: `safe_to_trade()` and `safe_to_trade(symbol)`.

Pure: it is given what the host knows (the gateway's last health report, the newest tick of
the symbol from the latest-value table) and the time, and answers `(ok, reason)`.

- The broker's gate is the gateway's: closed while a connection that carries symbols is down
  or has delivered no market data (trades, quotes, bars) for `settings.stale_after`. The
  reason names the broker and says how old the newest data is.
- With `settings.stale_after_symbol`, `safe_to_trade(symbol)` also closes for a symbol whose
  own newest tick is older than that, or that has had none. The age is the gateway's receipt
  time, so ticks a host replays from the ring (`resume: replay`) never open it.
"""

from __future__ import annotations


def age_text(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def broker_gate(
    broker: str, live: bool, reason: str, last_tick: float | None, now: float
) -> tuple[bool, str]:
    """The broker's gate from the gateway's health (`last_tick`: wall-clock seconds of its
    newest market data, None when it has had none)."""
    if live:
        return True, ""
    age = f"; newest data {age_text(now - last_tick)} old" if last_tick else ""
    return False, f"broker '{broker}': {reason}{age}"


def symbol_gate(
    symbol: str, tick_receive_ns: int | None, now_ns: int, stale_after: float
) -> tuple[bool, str]:
    """One symbol's gate from the receipt time of its newest tick on the bus."""
    if tick_receive_ns is None:
        return False, f"no tick of {symbol} yet"
    age = (now_ns - tick_receive_ns) / 1e9
    if age > stale_after:
        return False, f"no tick of {symbol} for {age_text(age)} (stale after {stale_after:g}s)"
    return True, ""
