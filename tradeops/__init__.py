"""tradeops: run an algorithmic trading desk from one YAML topology.

The names exported here are the public API; ``tests/test_public_api.py`` pins them.

They are resolved lazily (PEP 562): ``import tradeops.protocol.tick`` must not start the
strategy runtime (loguru, sockets, the bus) just because Python imports this package first.
A tool that reads the bus's tick layout, or a test of a wire format, pays only for what it
uses; ``from tradeops import Strategy`` still works as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tradeops.protocol.book import Book
    from tradeops.protocol.tick import Tick
    from tradeops.runtime.orders import Order, OrderUpdate
    from tradeops.runtime.strategy import Strategy

__version__ = "0.1.0"

__all__ = ["Book", "Order", "OrderUpdate", "Strategy", "Tick", "__version__"]

#: Where each public name lives: imported on first use.
_HOMES: dict[str, str] = {
    "Book": "tradeops.protocol.book",
    "Order": "tradeops.runtime.orders",
    "OrderUpdate": "tradeops.runtime.orders",
    "Strategy": "tradeops.runtime.strategy",
    "Tick": "tradeops.protocol.tick",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'tradeops' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
