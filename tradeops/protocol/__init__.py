"""Wire formats, sans-I/O: the bus's tick record (tick.py) and the broker dialects.

Nothing here opens a socket or a segment: bytes in, values out.
"""

from tradeops.protocol.tick import Tick

__all__ = ["Tick"]
