"""Subscription modes: what each one delivers, and how they nest. The one home of the idea.

A subscription names a mode: ``trade`` (trades and bars), ``quote`` (trades, quotes, bars)
or ``depth`` (everything, order books included). Modes nest, depth ⊇ quote ⊇ trade, so a
stronger subscription serves every weaker one: the gateway asks its broker for the strongest
mode any client holds, the proxy asks its gateway the same way, and a host dispatches a tick
to every strategy whose mode receives its kind. All of them read the rules here, so the
topology's `mode:` key, the gateway protocol and every dialect agree on what a mode means.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, Literal

Mode = Literal["trade", "quote", "depth"]
#: Every mode, weakest first.
MODES: Final[tuple[Mode, ...]] = ("trade", "quote", "depth")
#: How strong each mode is: a mode serves every mode of lower or equal strength.
STRENGTH: Final[Mapping[str, int]] = {mode: rank for rank, mode in enumerate(MODES, 1)}
#: The weakest mode that receives each kind of tick (the kinds of protocol/tick.py).
KIND_NEEDS: Final[Mapping[str, Mode]] = {
    "trade": "trade",
    "bar": "trade",
    "quote": "quote",
    "depth": "depth",
}


def covers(have: Mode | None, want: Mode) -> bool:
    """True when a subscription at `have` (None: none) delivers everything `want` needs."""
    return have is not None and STRENGTH[have] >= STRENGTH[want]


def stronger(a: Mode | None, b: Mode | None) -> Mode | None:
    """The stronger of two modes (None: not subscribed, weaker than any)."""
    if a is None:
        return b
    if b is None:
        return a
    return a if STRENGTH[a] >= STRENGTH[b] else b


def strongest(modes: Iterable[Mode]) -> Mode | None:
    """The strongest of `modes`; None when there are none."""
    best: Mode | None = None
    for mode in modes:
        best = stronger(best, mode)
    return best


def receives(mode: Mode, kind: str) -> bool:
    """True when a subscription at `mode` receives ticks of `kind` (an unknown kind: no)."""
    needs = KIND_NEEDS.get(kind)
    return needs is not None and covers(mode, needs)


def kinds_of(mode: Mode) -> frozenset[str]:
    """Every tick kind a subscription at `mode` receives."""
    return frozenset(kind for kind in KIND_NEEDS if receives(mode, kind))
