"""Reconnect delays: exponential with jitter, capped, slower for causes that do not clear fast.

Pure: time and randomness are injected, so tests check the schedule without sleeping.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

# Why an upstream session ended. `auth`, `subscription` and `connection-limit` will not go
# away by retrying at once: they get the slow schedule and are shown as the reason in status.
Cause = Literal[
    "network", "dropped", "silent", "protocol", "auth", "subscription", "connection-limit"
]
SLOW_CAUSES: frozenset[str] = frozenset({"auth", "subscription", "connection-limit"})


@dataclass(frozen=True)
class BackoffPolicy:
    base: float = 0.5  # first delay after a network failure
    cap: float = 30.0  # longest network delay
    slow_base: float = 30.0  # first delay after auth / subscription failures
    slow_cap: float = 300.0
    connection_limit: float = 90.0  # Alpaca frees a connection slot after about 90 s
    jitter: float = 0.2  # ± fraction, so many gateways do not reconnect in step


@dataclass
class Backoff:
    policy: BackoffPolicy = field(default_factory=BackoffPolicy)
    rand: Callable[[], float] = random.random
    attempts: int = 0

    def next_delay(self, cause: Cause) -> float:
        """The delay before the next attempt after a session that ended for `cause`."""
        p = self.policy
        self.attempts += 1
        if cause == "connection-limit":
            base, cap = p.connection_limit, max(p.connection_limit, p.slow_cap)
        elif cause in SLOW_CAUSES:
            base, cap = p.slow_base, p.slow_cap
        else:
            base, cap = p.base, p.cap
        delay: float = min(cap, base * 2.0 ** (self.attempts - 1))
        return max(0.0, delay * (1.0 + p.jitter * (2.0 * self.rand() - 1.0)))

    def reset(self) -> None:
        """A session that authenticated and carried data resets the schedule."""
        self.attempts = 0
