"""Keeping a desk under its broker's request budget, fairly. Pure: time is passed in.

`SlidingWindow` allows at most `count` requests in any `seconds`-long window (Alpaca counts
that way; a token bucket would allow a full burst plus a window's refill, twice the budget).
A small margin absorbs the difference between when we send and when the broker counts.
After a 429 the window is closed until the broker's Retry-After has passed.

`FairQueue` holds what waits for the budget, one FIFO per client, served round-robin, so a
strategy that bursts cannot starve its neighbours. It is bounded: past `limit` waiting items
new ones are refused (the caller rejects the order with the reason).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class SlidingWindow:
    count: int
    seconds: float
    margin: float = 0.1
    _sent: deque[float] = field(default_factory=deque)
    _closed_until: float = 0.0

    def wait(self, now: float) -> float:
        """Seconds until the next request may go (0: now)."""
        window = self.seconds + self.margin
        while self._sent and now - self._sent[0] >= window:
            self._sent.popleft()
        blocked = max(0.0, self._closed_until - now)
        if len(self._sent) < self.count:
            return blocked
        return max(blocked, self._sent[0] + window - now)

    def record(self, now: float) -> None:
        self._sent.append(now)

    def throttled(self, now: float, retry_after: float) -> None:
        """The broker answered 429: send nothing for `retry_after` seconds."""
        self._closed_until = max(self._closed_until, now + retry_after)


class FairQueue(Generic[T]):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._queues: OrderedDict[Hashable, deque[T]] = OrderedDict()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def put(self, client: Hashable, item: T, front: bool = False) -> bool:
        """Queue `item` for `client`; False when the queue is full (nothing is queued).
        `front` puts it first in its client's line (a request to retry after a 429)."""
        if self._size >= self.limit and not front:
            return False
        line = self._queues.setdefault(client, deque())
        if front:
            line.appendleft(item)
        else:
            line.append(item)
        self._size += 1
        return True

    def take(self) -> T | None:
        """The next item, from the client whose turn it is."""
        while self._queues:
            client, line = next(iter(self._queues.items()))
            self._queues.move_to_end(client)  # the next client gets the next turn
            if line:
                self._size -= 1
                item = line.popleft()
                if not line:
                    del self._queues[client]
                return item
            del self._queues[client]
        return None

    def remove_all(self, match: Callable[[T], bool]) -> list[T]:
        """Take out every client's items for which `match(item)` is true."""
        return [item for client in list(self._queues) for item in self.remove(client, match)]

    def remove(self, client: Hashable, match: Callable[[T], bool]) -> list[T]:
        """Take out the client's items for which `match(item)` is true (cancelled orders)."""
        line = self._queues.get(client)
        if not line:
            return []
        kept: deque[T] = deque()
        removed: list[T] = []
        for item in line:
            if match(item):
                removed.append(item)
            else:
                kept.append(item)
        self._queues[client] = kept
        self._size -= len(removed)
        return removed
