"""Subscription modes: what each one delivers, and how they combine. The one home of the idea.

A subscription names a mode. Its *base* is ``trade`` (trades), ``quote`` (trades and quotes)
or ``depth`` (trades, quotes and order books); the bases nest, depth ⊇ quote ⊇ trade. Bars are
an *extra* on top of any base, spelled ``trade+bars``, ``quote+bars``, ``depth+bars``: a
subscription receives bar ticks only when its mode carries ``+bars``, so nobody subscribes
a broker's bar channel unless some client asked for bars, and a strategy that never asked for
bars never sees one in ``on_tick``.

The six modes form a lattice, not a chain: ``quote`` and ``trade+bars`` are incomparable,
and the least mode that serves both is their :func:`join`, ``quote+bars``. :func:`covers`
is the lattice's order (the base at least as strong, the bars if wanted), :func:`strongest`
the join of many. The gateway asks its broker for the join of what its clients hold, the proxy
asks its gateway the same way, and a host dispatches a tick to every strategy whose mode
receives its kind. All of them read the rules here, so the topology's ``mode:`` and
``bars:`` keys, the gateway protocol and every dialect agree on what a mode means.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, Literal, cast

BaseMode = Literal["trade", "quote", "depth"]
Mode = Literal["trade", "quote", "depth", "trade+bars", "quote+bars", "depth+bars"]
#: The bases, weakest first (what the topology's ``mode:`` key takes).
BASE_MODES: Final[tuple[BaseMode, ...]] = ("trade", "quote", "depth")
#: Every mode: the bases, then each base with bars.
MODES: Final[tuple[Mode, ...]] = (
    "trade", "quote", "depth", "trade+bars", "quote+bars", "depth+bars",
)  # fmt: skip
#: The suffix that adds bars to a base.
BARS: Final = "+bars"
#: How strong each base is: a base serves every base of lower or equal strength.
STRENGTH: Final[Mapping[str, int]] = {mode: rank for rank, mode in enumerate(BASE_MODES, 1)}
#: The weakest mode that receives each kind of tick (the kinds of protocol/tick.py).
KIND_NEEDS: Final[Mapping[str, Mode]] = {
    "trade": "trade",
    "bar": "trade+bars",
    "quote": "quote",
    "depth": "depth",
}


def base(mode: Mode) -> BaseMode:
    """The mode without its extras: ``quote+bars`` → ``quote``."""
    return cast(BaseMode, mode[: -len(BARS)] if mode.endswith(BARS) else mode)


def has_bars(mode: Mode | None) -> bool:
    """True when a subscription at ``mode`` receives bars."""
    return mode is not None and mode.endswith(BARS)


def make(base_mode: BaseMode, bars: bool) -> Mode:
    """The mode of a base with or without bars: ``make("quote", True)`` is ``quote+bars``."""
    return cast(Mode, base_mode + BARS if bars else base_mode)


def covers(have: Mode | None, want: Mode) -> bool:
    """True when a subscription at `have` (None: none) delivers everything `want` needs."""
    return (
        have is not None
        and STRENGTH[base(have)] >= STRENGTH[base(want)]
        and (has_bars(have) or not has_bars(want))
    )


def join(a: Mode | None, b: Mode | None) -> Mode | None:
    """The least mode that serves both (None: not subscribed, below every mode). Not always
    one of the two: ``join("quote", "trade+bars")`` is ``quote+bars``."""
    if a is None:
        return b
    if b is None:
        return a
    ba, bb = base(a), base(b)
    return make(ba if STRENGTH[ba] >= STRENGTH[bb] else bb, has_bars(a) or has_bars(b))


def strongest(modes: Iterable[Mode]) -> Mode | None:
    """The join of `modes`: the least mode serving them all; None when there are none."""
    best: Mode | None = None
    for mode in modes:
        best = join(best, mode)
    return best


def receives(mode: Mode, kind: str) -> bool:
    """True when a subscription at `mode` receives ticks of `kind` (an unknown kind: no)."""
    needs = KIND_NEEDS.get(kind)
    return needs is not None and covers(mode, needs)


def kinds_of(mode: Mode) -> frozenset[str]:
    """Every tick kind a subscription at `mode` receives."""
    return frozenset(kind for kind in KIND_NEEDS if receives(mode, kind))
