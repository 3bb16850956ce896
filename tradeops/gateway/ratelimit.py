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

    def room(self, now: float) -> int:
        """Requests that may go now: the budget left in the window (0 while a 429 holds)."""
        self.wait(now)  # forgets what left the window
        if self._closed_until > now:
            return 0
        return max(0, self.count - len(self._sent))

    def spent_because(self, now: float, waiting: int) -> str:
        """Why this request may not go now, for a refusal a trader can act on."""
        if self._closed_until > now:
            return (f"the broker answered 429 (too many requests); paused for "
                    f"{self._closed_until - now:.1f}s")
        return (f"{len(self._sent)} sent in the last {self.seconds:g}s and {waiting} queued "
                f"to go use the budget of orders.rate_limit ({self.count}/{self.seconds:g}s); "
                f"a request may go again in {self.wait(now):.1f}s")

    def throttled(self, now: float, retry_after: float) -> None:
        """The broker answered 429: send nothing for `retry_after` seconds."""
        self._closed_until = max(self._closed_until, now + retry_after)


def admission(waiting: int, room: int | None, queue_size: int, reject_when_spent: bool,
              spent: Callable[[], str]) -> str | None:
    """Whether one more order may be queued for the broker: None, or the refusal's reason.

    `waiting`: orders queued and not yet sent; `room`: requests the window allows now (None:
    no rate limit). With `reject_when_spent`, an order is refused only when the window's
    budget is spent by what is already sent and waiting; otherwise `queue_size` bounds only
    the orders that wait for the window (not those the window lets go now)."""
    if room is None:
        if waiting >= queue_size:
            return (f"{waiting} orders already wait for the broker, as many as "
                    "orders.queue_size allows; slow down")
        return None
    beyond = waiting + 1 - room  # this order's place behind the budget (<= 0: it goes now)
    if beyond <= 0:
        return None
    if reject_when_spent:
        return f"rate limit spent: {spent()}; orders.on_limit is reject"
    if beyond > queue_size:
        return (f"{beyond - 1} order(s) already wait for the rate limit, as many as "
                f"orders.queue_size ({queue_size}) allows: {spent()}")
    return None


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
