"""Who wants what through the proxy, and what the proxy holds at each gateway. Pure.

The proxy is one client of each gateway, so its interest there is one lease: the union of
its websocket clients' interest. This registry counts that interest per (broker, symbol,
mode) across clients (each client holds at most one mode per symbol; asking again replaces
it, as at the gateway) and decides which requests the proxy sends to each gateway:

- the first client on a symbol makes the proxy subscribe it; later ones join for free;
- modes nest (depth ⊇ quote ⊇ trade): a weaker mode under a stronger one costs no gateway
  call; when the strongest holder leaves, the symbol is downgraded; the last one leaving
  (unsubscribe, disconnect, slow client, error) releases it;
- a subscribe is answered once its fate is known: at once when the mode already flows,
  otherwise when the gateway answers. A refusal rolls the clients that asked back to what
  they held before; nobody else is affected;
- while a gateway is unreachable, subscribes are answered ``queued`` and kept; when the link
  returns (a restarted gateway), everything wanted is requested again, and symbols the
  gateway then refuses are reported lost to their holders.

One request per symbol is in flight at a time; what clients change meanwhile is sent when it
answers, as the difference between what the gateway holds and what clients want.

Every mutation returns a :class:`Step`: gateway requests to send, answers for clients, and
subscriptions clients lost. The caller carries them out; nothing here does I/O. Counting
uses :class:`~tradeops.protocol.interest.Interest`, as the gateway does; this module adds what
the proxy needs on top: the gateway's confirmations, and the holders of each symbol for fan-out.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tradeops.protocol.interest import Interest
from tradeops.protocol.modes import Mode, covers

Client = Hashable


@dataclass(frozen=True)
class Request:
    """One request to one gateway: subscribe `symbols` at `mode`, or release them (None)."""

    broker: str
    id: int
    symbols: tuple[str, ...]
    mode: Mode | None

    def message(self) -> dict[str, Any]:
        """The gateway protocol message (docs/gateway.md)."""
        if self.mode is None:
            return {"op": "unsubscribe", "id": self.id, "symbols": list(self.symbols)}
        return {"op": "subscribe", "id": self.id, "symbols": list(self.symbols), "mode": self.mode}


@dataclass(frozen=True)
class Answer:
    """The fate of one client's request for (broker, symbol)."""

    client: Client
    broker: str
    symbol: str
    ok: bool
    queued: bool = False
    reason: str = ""


@dataclass(frozen=True)
class Lost:
    """A client no longer holds (broker, symbol): the gateway dropped it."""

    client: Client
    broker: str
    symbol: str
    reason: str


@dataclass
class Step:
    requests: list[Request] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    lost: list[Lost] = field(default_factory=list)

    def extend(self, other: Step) -> Step:
        self.requests += other.requests
        self.answers += other.answers
        self.lost += other.lost
        return self


@dataclass(frozen=True)
class _Waiter:
    client: Client
    mode: Mode
    previous: Mode | None  # what the client held before asking (restored on refusal)


@dataclass
class _Key:
    """One symbol at one gateway: what the gateway holds for the proxy, what is asked."""

    held: Mode | None = None
    queued: str | None = None  # the gateway accepted it as queued, with this reason
    inflight: tuple[int, Mode | None] | None = None
    waiters: list[_Waiter] = field(default_factory=list)


@dataclass
class _Broker:
    name: str
    interest: Interest = field(default_factory=Interest)
    keys: dict[str, _Key] = field(default_factory=dict)
    holders: dict[str, dict[Client, Mode]] = field(default_factory=dict)
    requests: dict[int, Request] = field(default_factory=dict)
    up: bool = False
    reason: str = "not connected to the gateway yet"


class Registry:
    """Interest of every websocket client, per broker; what to ask each gateway."""

    def __init__(self, brokers: Iterable[str]) -> None:
        self._brokers = {name: _Broker(name) for name in brokers}
        self._next_id = 0

    # -- clients ----------------------------------------------------------------------------------
    def want(self, client: Client, broker: str, symbol: str, mode: Mode | None) -> Step:
        """`client` wants `symbol` of `broker` at `mode` (None: no longer wants it).

        KeyError for a broker the registry does not know. A release is answered at once.
        """
        b = self._brokers[broker]
        step = Step()
        previous = b.interest.holds(client, symbol)
        if mode is None:
            self._set(b, client, symbol, None)
            key = b.keys.get(symbol)
            if key is not None:
                key.waiters = [w for w in key.waiters if w.client != client]
            step.answers.append(Answer(client, broker, symbol, True))
            return step.extend(self._reconcile(b, [symbol]))
        self._set(b, client, symbol, mode)
        key = b.keys.setdefault(symbol, _Key())
        if not b.up:
            step.answers.append(Answer(client, broker, symbol, True, True, b.reason))
        elif covers(key.held, mode) and (key.inflight is None or covers(key.inflight[1], mode)):
            queued = key.queued is not None
            step.answers.append(Answer(client, broker, symbol, True, queued, key.queued or ""))
        else:
            key.waiters = [w for w in key.waiters if w.client != client]
            key.waiters.append(_Waiter(client, mode, previous))
        return step.extend(self._reconcile(b, [symbol]))

    def drop(self, client: Client) -> Step:
        """The client went away (closed, was dropped as slow, broke the protocol): release all."""
        step = Step()
        for b in self._brokers.values():
            symbols = list(b.interest.symbols_of(client))
            for symbol in symbols:
                self._set(b, client, symbol, None)
                key = b.keys.get(symbol)
                if key is not None:
                    key.waiters = [w for w in key.waiters if w.client != client]
            step.extend(self._reconcile(b, symbols))
        return step

    # -- the gateway ------------------------------------------------------------------------------
    def link_up(self, broker: str) -> Step:
        """Connected (again) to the broker's gateway: ask for everything wanted."""
        b = self._brokers[broker]
        b.up, b.reason = True, ""
        return self._reconcile(b, list(dict.fromkeys([*b.interest.wanted(), *b.keys])))

    def link_down(self, broker: str, reason: str) -> Step:
        """The gateway connection is gone, and with it the lease: nothing is held there now.
        Clients keep their interest; those waiting are answered queued."""
        b = self._brokers[broker]
        b.up, b.reason = False, reason
        b.requests.clear()
        step = Step()
        for symbol, key in b.keys.items():
            key.held, key.queued, key.inflight = None, None, None
            for w in key.waiters:
                step.answers.append(Answer(w.client, broker, symbol, True, True, reason))
            key.waiters = []
        return step

    def replied(self, broker: str, request_id: int, reply: Mapping[str, Any]) -> Step:
        """The gateway answered request `request_id` ({"ok", "results": {sym: {...}}})."""
        b = self._brokers[broker]
        request = b.requests.pop(request_id, None)
        step = Step()
        if request is None:  # asked before the link went down: forgotten with the lease
            return step
        results = reply.get("results")
        results = results if isinstance(results, dict) else {}
        fallback = str(reply.get("error") or "the gateway gave no answer for this symbol")
        for symbol in request.symbols:
            key = b.keys.get(symbol)
            if key is None or key.inflight is None or key.inflight[0] != request_id:
                continue
            key.inflight = None
            result = results.get(symbol)
            result = result if isinstance(result, dict) else {"ok": False, "reason": fallback}
            ok = request.mode is None or bool(result.get("ok"))
            reason = str(result.get("reason") or ("" if ok else fallback))
            if ok:
                key.held = request.mode
                key.queued = reason if result.get("queued") else None
            self._settle(b, symbol, key, ok, reason, step)
        return step.extend(self._reconcile(b, list(request.symbols)))

    def lost(self, broker: str, symbol: str, reason: str) -> Step:
        """The gateway dropped `symbol` from the proxy's lease (a broker refusal on resubscribe):
        every holder loses it."""
        b = self._brokers[broker]
        key = b.keys.get(symbol)
        if key is not None:
            key.held, key.queued = None, None
        step = Step()
        for client in list(b.holders.get(symbol, {})):
            waiting = key is not None and any(w.client == client for w in key.waiters)
            self._set(b, client, symbol, None)
            if waiting:
                step.answers.append(Answer(client, broker, symbol, False, reason=reason))
            else:
                step.lost.append(Lost(client, broker, symbol, reason))
        if key is not None:
            key.waiters = []
        return step.extend(self._reconcile(b, [symbol]))

    # -- reading ----------------------------------------------------------------------------------
    def holders(self, broker: str, symbol: str) -> Mapping[Client, Mode]:
        """Clients interested in `symbol` of `broker`, with their modes (empty when none)."""
        b = self._brokers.get(broker)
        return b.holders.get(symbol, _EMPTY) if b is not None else _EMPTY

    def subscriptions(self) -> dict[tuple[str, str, Mode], int]:
        """Clients per (broker, symbol, mode) key."""
        out: dict[tuple[str, str, Mode], int] = {}
        for b in self._brokers.values():
            for symbol, clients in b.holders.items():
                for mode in clients.values():
                    k = (b.name, symbol, mode)
                    out[k] = out.get(k, 0) + 1
        return out

    def symbols(self, broker: str) -> Iterable[str]:
        """The symbols of `broker` at least one client holds."""
        b = self._brokers.get(broker)
        return b.holders.keys() if b is not None else ()

    def held(self, broker: str) -> dict[str, Mode]:
        """What the broker's gateway holds for the proxy (confirmed or queued there)."""
        return {s: k.held for s, k in self._brokers[broker].keys.items() if k.held is not None}

    def wanted(self, broker: str) -> dict[str, Mode]:
        """The strongest mode clients want per symbol of `broker`."""
        return self._brokers[broker].interest.wanted()

    # -- internals --------------------------------------------------------------------------------
    def _set(self, b: _Broker, client: Client, symbol: str, mode: Mode | None) -> None:
        if mode is None:
            b.interest.remove(client, symbol)
            holders = b.holders.get(symbol)
            if holders is not None:
                holders.pop(client, None)
                if not holders:
                    del b.holders[symbol]
        else:
            b.interest.add(client, symbol, mode)
            b.holders.setdefault(symbol, {})[client] = mode

    def _settle(
        self, b: _Broker, symbol: str, key: _Key, ok: bool, reason: str, step: Step
    ) -> None:
        """Answer the waiters the gateway's answer decides; on refusal, roll them back."""
        remaining: list[_Waiter] = []
        for w in key.waiters:
            if covers(key.held, w.mode):
                queued, why = key.queued is not None, key.queued or ""
                step.answers.append(Answer(w.client, b.name, symbol, True, queued, why))
            elif not ok:
                step.answers.append(Answer(w.client, b.name, symbol, False, reason=reason))
                self._set(b, w.client, symbol, w.previous)
            else:
                remaining.append(w)
        key.waiters = remaining
        if ok:
            return
        # Holders nobody is waiting for (asked again after a reconnect) and no longer covered.
        for client, mode in list(b.holders.get(symbol, {}).items()):
            if not covers(key.held, mode):
                self._set(b, client, symbol, None)
                step.lost.append(Lost(client, b.name, symbol, reason))

    def _reconcile(self, b: _Broker, symbols: list[str]) -> Step:
        """Requests that move what the gateway holds to what clients want, for `symbols`
        that have no request in flight; grouped into one request per target mode."""
        step = Step()
        if not b.up:
            return step
        groups: dict[Mode | None, list[str]] = {}
        for symbol in dict.fromkeys(symbols):
            target = b.interest.strongest(symbol)
            key = b.keys.get(symbol)
            if key is None:
                if target is None:
                    continue
                key = b.keys[symbol] = _Key()
            if key.inflight is not None:
                continue
            if target == key.held:
                if target is None and not key.waiters:
                    del b.keys[symbol]
                continue
            groups.setdefault(target, []).append(symbol)
        for target, group in groups.items():
            self._next_id += 1
            request = Request(b.name, self._next_id, tuple(group), target)
            b.requests[request.id] = request
            for symbol in group:
                b.keys[symbol].inflight = (request.id, target)
            step.requests.append(request)
        return step


_EMPTY: Mapping[Client, Mode] = {}
