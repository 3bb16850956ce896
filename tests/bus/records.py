"""Records as a gateway's ring holds them, for tests of what copies them (mirrors, NATS)."""

from __future__ import annotations

from tradeops.bus.reader import RingReader
from tradeops.bus.ring import TickRing


def ring_records(ns: str, symbols: list[str]) -> bytes:
    """One trade per symbol written to a ring of bus `ns` (broker "up"), read back raw."""
    ring = TickRing(ns, "up", capacity=64)
    try:
        reader = RingReader(ns, "up", start="newest")
        for i, symbol in enumerate(symbols):
            ring.append("trade", symbol, 1000 + i, 10.0 + i, 1.0)
        ring.publish()
        batch = reader.read_batch(1000)
        reader.close()
        return batch.data
    finally:
        ring.close()
