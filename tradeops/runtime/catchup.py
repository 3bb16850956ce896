"""A restarted host's catch-up from its gateway's history (docs/cluster.md, "JetStream").

A host with `resume: replay` may come back to a ring that no longer holds the ticks after its
saved position: it was down longer than the ring's history. On a node where a gateway's
stand-in keeps a history (its hello says `bus.history`: the desk runs with
`settings.cluster.jetstream`), the feed asks the stand-in for the missing seqs, a chunk at a
time, and hands them to the strategies in seq order before anything it reads from the ring.
The ring moves on meanwhile: once the fetched ticks are handed over, it asks again for what
the ring dropped since, until the ring holds the next seq; from there it reads the ring.

Seqs the history does not hold either (its retention dropped them, or they never reached
NATS) are a gap, as they would be without a history: counted as lost and logged with their
ranges, never hidden.
"""

from __future__ import annotations

import base64
from collections import deque

from loguru import logger

from tradeops.bus.reader import RingReader
from tradeops.gateway.client import GatewayClient, GatewayError
from tradeops.protocol.tick import RECORD, RECORD_SIZE, Tick, tick_from_values

#: How long one history answer may take (the stand-in reads JetStream for it).
REQUEST_TIMEOUT = 60.0


class CatchUp:
    """The ticks from `first` on that `reader`'s ring no longer holds, from `client`'s history."""

    def __init__(self, broker: str, client: GatewayClient, reader: RingReader,
                 first: int) -> None:
        self.broker, self.client, self.reader = broker, client, reader
        self.first = first
        self.next = first  # the next seq owed to the strategies
        self.backlog: deque[Tick] = deque()
        self.recovered = 0
        self.gone = 0  # seqs neither the ring nor the history holds
        self.gaps: list[tuple[int, int]] = []
        self.failed = ""

    def take(self, count: int) -> list[Tick] | None:
        """Up to `count` missed ticks, in seq order; None once caught up: the reader is then
        positioned at the next seq, which its ring holds."""
        while not self.backlog:
            edge = self.reader.oldest  # the oldest seq safe to read (a margin to the writer)
            if self.next >= edge:
                self.reader.seek(self.next)
                self._report()
                return None
            self._fetch(edge - 1)
        return [self.backlog.popleft() for _ in range(min(count, len(self.backlog)))]

    def _fetch(self, last: int) -> None:
        """Seqs `self.next`..`last` from the history into the backlog; gaps counted."""
        while self.next <= last:
            if self.failed:
                self._gap(self.next, last)
                return
            try:
                reply = self.client.request({"op": "history", "from": self.next, "to": last},
                                            timeout=REQUEST_TIMEOUT)
            except GatewayError as exc:
                reply = {"ok": False, "error": str(exc)}
            after = reply.get("next")
            if not reply.get("ok") or not isinstance(after, int) or after <= self.next:
                self.failed = str(reply.get("error") or f"a history answer without progress: "
                                                          f"{reply!r:.200}")
                logger.warning("cannot catch up on broker '{}' from its history: {}",
                               self.broker, self.failed)
                continue
            records = base64.b64decode(str(reply.get("records") or ""))
            expected = self.next
            for values in RECORD.iter_unpack(records[: len(records) // RECORD_SIZE
                                                     * RECORD_SIZE]):
                tick = tick_from_values(values)
                if tick.seq < expected or tick.seq >= after:
                    continue  # not asked for: never handed twice, never out of order
                if tick.seq > expected:
                    self._gap(expected, tick.seq - 1)
                self.backlog.append(tick)
                self.recovered += 1
                expected = tick.seq + 1
            if after > expected:
                self._gap(expected, after - 1)
            self.next = after

    def _gap(self, first: int, last: int) -> None:
        self.gone += last - first + 1
        if self.gaps and self.gaps[-1][1] == first - 1:
            self.gaps[-1] = (self.gaps[-1][0], last)
        else:
            self.gaps.append((first, last))
        self.next = max(self.next, last + 1)

    def _report(self) -> None:
        logger.info("caught up on broker '{}' from its history: {} ticks from seq {}, before "
                    "reading the ring from seq {}", self.broker, self.recovered, self.first,
                    self.next)
        if self.gone:
            ranges = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in self.gaps[:20])
            more = f" and {len(self.gaps) - 20} more ranges" if len(self.gaps) > 20 else ""
            logger.warning("{} ticks of broker '{}' are gone (seq {}{}): neither the ring nor "
                           "the history holds them", self.gone, self.broker, ranges, more)
