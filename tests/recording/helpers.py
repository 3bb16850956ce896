"""Ticks and recordings for the recording tests, written by the real writer."""

from __future__ import annotations

from pathlib import Path

from tradeops.protocol.tick import Tick
from tradeops.recording import files, layout

T0 = 1_777_000_000 * 10**9  # 2026-04-24 UTC


def ticks(n: int, first_seq: int = 1, start_ns: int = T0, symbols: tuple[str, ...] = ("AAPL",),
          ) -> list[Tick]:
    """n alternating quotes and trades, 1 ms apart, over `symbols` in turn."""
    out = []
    for i in range(n):
        seq = first_seq + i
        symbol = symbols[i % len(symbols)]
        at = start_ns + i * 1_000_000
        if i % 2:
            out.append(Tick.make("trade", symbol, seq=seq, exchange_ns=at, receive_ns=at + 5,
                                 price=100 + i / 100, size=i + 1))
        else:
            out.append(Tick.make("quote", symbol, seq=seq, exchange_ns=at, receive_ns=at + 5,
                                 bid=99 + i / 100, bid_size=100, ask=101 + i / 100,
                                 ask_size=200))
    return out


def write_file(root: Path, broker: str, batch: list[Tick], session: int = 7) -> Path:
    """One closed file of `batch`, as the recorder writes it."""
    day = layout.day_of(batch[0].exchange_ns)
    part = files.PartFile(root / layout.partition(broker, day),
                          layout.stem(session, batch[0].seq), broker)
    part.append(layout.to_table(batch, session))
    final = part.close()
    assert final is not None
    return final
