"""Matching the broker's answers to the subscription change in flight on each connection.

A change to one connection may need several requests (an unsubscribe and a subscribe, say),
and the broker answers each. The change is confirmed only when every answer is in; the first
refusal among them decides it was refused. Pure bookkeeping, no I/O: the gateway's loop feeds
it upstream events and acts on the verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass

Refusal = tuple[int, str]  # the broker's code and message


@dataclass(frozen=True)
class Verdict:
    """Every answer to a connection's change is in: acknowledged, or refused (the first)."""

    connection: int
    refusal: Refusal | None = None


class ChangeAnswers:
    def __init__(self) -> None:
        # Per connection: answers still due for the change in flight, and its first refusal.
        self._due: dict[int, tuple[int, Refusal | None]] = {}

    def expect(self, connection: int, due: int) -> None:
        """A change went out on `connection` and `due` answers will come back."""
        if due:
            self._due[connection] = (due, None)

    def reset(self, connection: int) -> None:
        """The connection (re)authenticated: nothing from before is still owed."""
        self._due.pop(connection, None)

    def answer(self, connection: int, refusal: Refusal | None = None) -> Verdict | None:
        """One answer arrived; the verdict once it was the last one due, else None.

        An answer nobody counted on (the change was sent as one request) is its own verdict."""
        due, first = self._due.get(connection, (1, None))
        first = first or refusal
        if due > 1:
            self._due[connection] = (due - 1, first)
            return None
        self._due.pop(connection, None)
        return Verdict(connection, first)
