"""A local exchange speaking the Alpaca v2 dialect, with limits and faults on demand.

    from tradeops.sim import SimOptions, SimThread, start

`start(options)` (async) returns a `RunningSim`; `SimThread(options)` runs one on a thread for
synchronous code. See docs/sim.md. The server (and aiohttp) is imported on first use, so
importing `SimOptions` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tradeops.sim.options import SimConfigError, SimOptions

if TYPE_CHECKING:
    from tradeops.sim.server import RunningSim, SimThread, start

__all__ = ["RunningSim", "SimConfigError", "SimOptions", "SimThread", "start"]


def __getattr__(name: str) -> Any:
    if name in ("RunningSim", "SimThread", "start"):
        from tradeops.sim import server

        return getattr(server, name)
    raise AttributeError(f"module 'tradeops.sim' has no attribute {name!r}")
