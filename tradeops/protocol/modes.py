"""Subscription modes: what each one delivers, and how they combine. The one home of the idea.

A subscription names a mode. Its *base* is ``trade`` (trades), ``quote`` (trades and quotes)
or ``depth`` (trades, quotes and order books); the bases nest, depth ⊇ quote ⊇ trade. On top
of a base a mode may carry *extras*, each a kind of market event nobody gets unless they
asked: ``bars`` (minute bars), ``daily_bars``, ``updated_bars``, ``statuses`` (trading
statuses: halts, resumes) and ``lulds`` (limit up / limit down bands), spelled after the base
in that order: ``trade+bars``, ``quote+bars+statuses``. So nobody subscribes a broker's bar
channel unless some client asked for bars, and a strategy that never asked for bars never
sees one in ``on_tick``. Corrections and cancel/errors of trades come with trades, as Alpaca
sends them.

The modes form a lattice, not a chain: ``quote`` and ``trade+bars`` are incomparable, and
the least mode that serves both is their :func:`join`, ``quote+bars``. :func:`covers` is the
lattice's order (the base at least as strong, every extra wanted held), :func:`strongest` the
join of many. The gateway asks its broker for the join of what its clients hold, the proxy
asks its gateway the same way, and a host dispatches a tick to every strategy whose mode
receives its kind. All of them read the rules here, so the topology's ``mode:`` and
``bars:`` keys, the gateway protocol and every dialect agree on what a mode means.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, Literal, cast

BaseMode = Literal["trade", "quote", "depth"]
#: A mode: a base and its extras joined by "+" (``quote+bars``); :func:`is_mode` checks one.
Mode = str
#: The bases, weakest first (what the topology's ``mode:`` key takes).
BASE_MODES: Final[tuple[BaseMode, ...]] = ("trade", "quote", "depth")
#: The extras, in the order a mode spells them.
EXTRAS: Final = ("bars", "daily_bars", "updated_bars", "statuses", "lulds")
#: The suffix that adds bars to a base.
BARS: Final = "+bars"
#: The modes most clients use: the bases, then each base with bars (others: any extras).
MODES: Final[tuple[Mode, ...]] = (
    "trade", "quote", "depth", "trade+bars", "quote+bars", "depth+bars",
)  # fmt: skip
#: How to spell a mode, for error messages.
MODE_HELP: Final = ("a base of trade, quote, depth, then any of +bars, +daily_bars, "
                    "+updated_bars, +statuses, +lulds in that order (quote+bars)")
#: How strong each base is: a base serves every base of lower or equal strength.
STRENGTH: Final[Mapping[str, int]] = {mode: rank for rank, mode in enumerate(BASE_MODES, 1)}
#: The weakest mode that receives each kind of tick (the kinds of protocol/tick.py).
KIND_NEEDS: Final[Mapping[str, Mode]] = {
    "trade": "trade",
    "bar": "trade+bars",
    "quote": "quote",
    "depth": "depth",
    "daily_bar": "trade+daily_bars",
    "updated_bar": "trade+updated_bars",
    "status": "trade+statuses",
    "luld": "trade+lulds",
    "correction": "trade",
    "cancel_error": "trade",
}

_PARSED: dict[str, tuple[BaseMode, frozenset[str]] | None] = {}
_RANK: Final = {extra: rank for rank, extra in enumerate(EXTRAS)}


def parse(mode: object) -> tuple[BaseMode, frozenset[str]] | None:
    """(base, extras) of a mode; None when `mode` is not one (an unknown base or extra, an
    extra twice, or out of order)."""
    if not isinstance(mode, str):
        return None
    try:
        return _PARSED[mode]
    except KeyError:
        pass
    base_name, *extras = mode.split("+")
    ranks = [_RANK.get(e, -1) for e in extras]
    parsed: tuple[BaseMode, frozenset[str]] | None = None
    if base_name in STRENGTH and -1 not in ranks and ranks == sorted(set(ranks)):
        parsed = (cast(BaseMode, base_name), frozenset(extras))
    if len(_PARSED) < 4096:
        _PARSED[mode] = parsed
    return parsed


def is_mode(mode: object) -> bool:
    """True for a well-formed mode: a base, then extras of :data:`EXTRAS` in that order."""
    return parse(mode) is not None


def _parts(mode: Mode) -> tuple[BaseMode, frozenset[str]]:
    parsed = parse(mode)
    if parsed is None:
        raise ValueError(f"not a subscription mode: {mode!r} (a base of {', '.join(BASE_MODES)}, "
                         f"then any of +{', +'.join(EXTRAS)} in that order)")
    return parsed


def base(mode: Mode) -> BaseMode:
    """The mode without its extras: ``quote+bars`` → ``quote``."""
    return _parts(mode)[0]


def extras(mode: Mode | None) -> frozenset[str]:
    """The extras a mode carries: ``quote+bars+statuses`` → {bars, statuses}."""
    return frozenset() if mode is None else _parts(mode)[1]


def has_bars(mode: Mode | None) -> bool:
    """True when a subscription at ``mode`` receives (minute) bars."""
    return "bars" in extras(mode)


def make(base_mode: BaseMode, bars: bool = False, more: Iterable[str] = ()) -> Mode:
    """The mode of a base with extras: ``make("quote", True)`` is ``quote+bars``."""
    wanted = set(more) | ({"bars"} if bars else set())
    unknown = wanted - set(EXTRAS)
    if unknown:
        raise ValueError(f"unknown mode extras {sorted(unknown)}; one of {list(EXTRAS)}")
    return base_mode + "".join("+" + e for e in EXTRAS if e in wanted)


def covers(have: Mode | None, want: Mode) -> bool:
    """True when a subscription at `have` (None: none) delivers everything `want` needs."""
    if have is None:
        return False
    hb, he = _parts(have)
    wb, we = _parts(want)
    return STRENGTH[hb] >= STRENGTH[wb] and we <= he


def join(a: Mode | None, b: Mode | None) -> Mode | None:
    """The least mode that serves both (None: not subscribed, below every mode). Not always
    one of the two: ``join("quote", "trade+bars")`` is ``quote+bars``."""
    if a is None:
        return b
    if b is None or a == b:
        return a
    ba, ea = _parts(a)
    bb, eb = _parts(b)
    return make(ba if STRENGTH[ba] >= STRENGTH[bb] else bb, more=ea | eb)


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
