"""Orders in the gateway's loop: from a host's request to the broker and back to its strategy.

Runs on the gateway's loop thread (the sender and the trade stream report through it), so it
needs no locks. It decides who owns what (a host says which process group it is at hello;
only that group's strategies may trade through its connection), applies the risk checks,
queues broker calls within the rate limit, routes every update to the connection that owns
the strategy now (a restarted host takes its strategies' orders over), and applies the
group's `auto_cancel` policy when that connection goes away.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Protocol

from loguru import logger

from tradeops.gateway.journal import Journal, filled
from tradeops.gateway.orders import OrderDesk, OrderRecord, Update
from tradeops.gateway.trading import Job, JobResult
from tradeops.protocol import alpaca_trading as at

Client = Hashable
Reply = tuple[Client, dict[str, Any]]


#: The broker's final order states as journal outcomes (anything else: still working).
RECONCILED = {"filled": "filled", "canceled": "cancelled", "expired": "cancelled",
              "done_for_day": "cancelled", "rejected": "rejected"}


class Sender(Protocol):
    """What the router asks of the order transport (`trading.OrderSender`; a fake in tests)."""

    throttled: int

    def put(self, job: Job) -> bool: ...
    def admit(self, job: Job, reject_when_spent: bool) -> str | None: ...
    def withdraw(self, client: Hashable, cid: str) -> bool: ...
    def pending(self) -> int: ...


class OrderRouter:
    def __init__(
        self,
        desk: OrderDesk,
        sender: Sender | None,
        journal: Journal,
        groups: Mapping[str, tuple[list[str], str]],
        price: Callable[[str], float | None],
        on_limit: str = "queue",
        no_orders_reason: str = "",
    ) -> None:
        self.desk = desk
        self.sender = sender
        self.journal = journal
        self.groups = groups  # group → (its strategies on this broker, auto_cancel policy)
        self.price = price
        self.on_limit = on_limit
        self.no_orders_reason = no_orders_reason
        self.owner: dict[str, Client] = {}  # strategy → the connection that runs it now
        self.group_of: dict[Client, str] = {}
        self.unrouted: deque[dict[str, Any]] = deque(maxlen=200)
        self.rejected = 0
        # Positions survive a restart of this gateway: rebuilt from the journal's fills.
        members = {s for names, _ in groups.values() for s in names}
        self.desk.restore(filled(journal.path, members))
        #: symbol -> (our strategies' total, the broker's) while they differ: new orders are
        #: refused until a person acknowledges (`tradeops orders --ack BROKER`).
        self.mismatch: dict[str, tuple[float, float]] = {}

    # -- hosts -----------------------------------------------------------------------------------
    def hello(self, client: Client, group: str) -> list[Reply]:
        """A host of `group` connected: it owns its strategies' orders from now on, and learns
        the orders that survived its previous incarnation, and its positions."""
        if group not in self.groups:
            return []
        self.group_of[client] = group
        replies: list[Reply] = []
        for strategy in self.groups[group][0]:
            self.owner[strategy] = client
            replies.append(
                (
                    client,
                    {
                        "op": "orders",
                        "strategy": strategy,
                        "working": [o.to_json() for o in self.desk.working(strategy)],
                        "positions": self.desk.positions_of(strategy),
                    },
                )
            )
        return replies

    def order(self, client: Client, msg: dict[str, Any]) -> list[Reply]:
        strategy, local_id = str(msg.get("strategy", "")), str(msg.get("order_id", ""))
        symbol, side = str(msg.get("symbol", "")), str(msg.get("side", ""))
        tif = str(msg.get("tif", "day"))
        try:
            qty = float(msg.get("qty", 0))
            limit = float(msg["limit"]) if msg.get("limit") is not None else None
        except (TypeError, ValueError):
            qty, limit = 0.0, None
        record = self.desk.new(strategy, local_id, symbol, side, qty, limit, tif)
        self.journal.write(
            "submit",
            strategy=strategy,
            order_id=local_id,
            client_order_id=record.client_order_id,
            symbol=symbol,
            side=side,
            qty=qty,
            limit=limit,
            tif=tif,
        )
        reason = self._refusal(client, strategy, record)
        if reason is None and self.sender is not None:
            job = Job(
                "submit",
                at.submit(symbol, side, qty, limit, tif, record.client_order_id),
                client,
                record.client_order_id,
            )
            reason = self.sender.admit(job, reject_when_spent=self.on_limit == "reject")
            if reason is None:
                return []
        rejected = self.desk.rejected(record, reason or "no order transport")
        return self._routed(self._journal_updates([rejected]))

    def _refusal(self, client: Client, strategy: str, record: OrderRecord) -> str | None:
        if self.no_orders_reason:
            return self.no_orders_reason
        if self.mismatch:
            shown = ", ".join(f"{sym} ours {ours:g}, broker {theirs:g}"
                              for sym, (ours, theirs) in sorted(self.mismatch.items()))
            return (f"positions differ from the broker's ({shown}); check the account, then "
                    f"`tradeops orders --ack {self.desk.broker}`")
        group = self.group_of.get(client)
        if group is None or strategy not in self.groups[group][0]:
            return f"this connection does not run strategy '{strategy}'"
        reason = self.desk.check(
            strategy,
            record.symbol,
            record.side,
            record.qty,
            record.limit,
            record.tif,
            self.price(record.symbol),
            checking=record.client_order_id,
        )
        return reason

    def cancel(self, client: Client, strategy: str, local_id: str) -> list[Reply]:
        record = self.desk.find(strategy, local_id)
        if record is None or self.owner.get(strategy) != client:
            return [
                (
                    client,
                    {
                        "op": "order_update",
                        "strategy": strategy,
                        "event": "rejected",
                        "order": {"order_id": local_id},
                        "reason": f"no working order {local_id} of strategy {strategy}",
                    },
                )
            ]
        return self._routed(self._journal_updates(self._cancel(record)))

    def cancel_all(self, client: Client, strategy: str) -> list[Reply]:
        if self.owner.get(strategy) != client:
            return []
        return self._routed(self._journal_updates(
            [u for o in self.desk.working(strategy) for u in self._cancel(o)]))

    def _cancel(self, record: OrderRecord) -> list[Update]:
        if not record.live or record.cancel_requested:
            return []
        record.cancel_requested = True
        self.journal.write(
            "cancel",
            strategy=record.strategy,
            order_id=record.local_id,
            client_order_id=record.client_order_id,
        )
        if (
            record.status == "new"
            and self.sender is not None
            and self.sender.withdraw(self.owner.get(record.strategy), record.client_order_id)
        ):
            return [self.desk.cancelled_before_sending(record)]
        if record.broker_id and self.sender is not None:
            self.sender.put(
                Job(
                    "cancel",
                    at.cancel(record.broker_id),
                    self.owner.get(record.strategy),
                    record.client_order_id,
                )
            )
        # Without a broker id yet, the cancel goes out as soon as the submit's answer comes.
        return []

    def client_gone(self, client: Client) -> list[Reply]:
        """A host's connection closed: apply its group's auto_cancel policy."""
        group = self.group_of.pop(client, None)
        if group is None:
            return []
        strategies, policy = self.groups[group]
        working = [o for s in strategies for o in self.desk.working(s)]
        # The cancels first, while the owner is known: a submit still queued for the rate
        # limit is withdrawn from its owner's line and never goes out.
        updates = self._auto_cancel(client, group, policy, working)
        for s in strategies:
            if self.owner.get(s) == client:
                del self.owner[s]
        return self._routed(self._journal_updates(updates))

    def _auto_cancel(self, client: Client, group: str, policy: str,
                     working: list[OrderRecord]) -> list[Update]:
        if policy == "none" or not working:
            return []
        logger.info(
            "group '{}' disconnected: auto_cancel={} for {} working order(s)",
            group,
            policy,
            len(working),
        )
        self.journal.write("auto_cancel", group=group, policy=policy, orders=len(working))
        if policy == "account" and self.sender is not None:
            for record in working:  # tracked until the broker confirms each (settle_cancels)
                record.cancel_requested = True
            self.sender.put(Job("cancel_all", at.cancel_all(), client))
            return []
        return [u for o in working for u in self._cancel(o)]

    # -- the broker ------------------------------------------------------------------------------
    def on_result(self, result: JobResult) -> list[Reply]:
        job = result.job
        record = self.desk.orders.get(job.cid) if job.cid else None
        if job.kind == "submit" and record is not None:
            if result.status == 0:  # it may or may not have reached the broker: ask it
                self._lookup(record)
                return []
            updates = self.desk.on_submitted(
                job.cid, result.body if result.status < 300 else None, result.error
            )
            self._journal_updates(updates)
            if record.cancel_requested and record.live and record.broker_id:
                record.cancel_requested = False
                updates += self._cancel(record)
            return self._routed(updates)
        if job.kind == "lookup" and record is not None:
            if result.status == 404:
                return self._routed(
                    self._journal_updates(
                        [self.desk.rejected(record, "the broker never received it")]
                    )
                )
            if isinstance(result.body, dict):
                return self.on_trade_update(at.TradeUpdate(_event_of(result.body), result.body))
            return []
        if job.kind in ("cancel", "cancel_all") and result.status >= 400 and result.status != 404:
            logger.warning("{} failed: {}", job.kind, result.error)
            self.journal.write(f"{job.kind}_failed", client_order_id=job.cid, reason=result.error)
        if job.kind == "open_orders" and isinstance(result.body, list):
            adopted = self.desk.adopt_open(result.body)
            if adopted:
                logger.info(
                    "took over {} open order(s) placed before this gateway started", adopted
                )
            for o in result.body:
                if isinstance(o, dict):  # fills the journal missed count once
                    self.desk.fill_missed(str(o.get("client_order_id")),
                                          float(o.get("filled_qty") or 0))
            self._reconcile({str(o.get("client_order_id")) for o in result.body
                             if isinstance(o, dict)})
            if self.sender is not None:  # after the lookups: the account's positions
                self.sender.put(Job("positions", at.HttpRequest("GET", "/v2/positions")))
        if job.kind == "reconcile":
            self._reconciled(job.cid, result)
        if job.kind == "positions" and result.status == 200 and isinstance(result.body, list):
            self._compare_positions(result.body)
        return []

    def _compare_positions(self, broker_positions: list[Any]) -> None:
        """Our strategies' positions, summed per symbol, against the broker's account: a
        mismatch is logged, journalled, shown in status and blocks new orders until ack."""
        theirs = {str(p.get("symbol")): float(p.get("qty") or 0)
                  for p in broker_positions if isinstance(p, dict)}
        ours: dict[str, float] = {}
        for (_, symbol), qty in self.desk.positions.items():
            ours[symbol] = ours.get(symbol, 0.0) + qty
        self.mismatch = {s: (ours.get(s, 0.0), theirs.get(s, 0.0))
                         for s in set(ours) | set(theirs)
                         if abs(ours.get(s, 0.0) - theirs.get(s, 0.0)) > 1e-9}
        if self.mismatch:
            logger.error("positions differ from the broker's: {}; new orders are refused until "
                         "`tradeops orders --ack {}`", self.mismatch, self.desk.broker)
            self.journal.write("positions_mismatch", broker=self.desk.broker,
                               symbols={s: {"ours": o, "broker": t}
                                        for s, (o, t) in self.mismatch.items()})

    def acknowledge(self) -> dict[str, tuple[float, float]]:
        """A person checked the account: orders may go again. Returns what was differing."""
        was, self.mismatch = self.mismatch, {}
        if was:
            self.journal.write("positions_acknowledged", broker=self.desk.broker,
                               symbols=sorted(was))
        return was

    # -- after a crash: journal entries without an outcome -------------------------------------
    def _reconcile(self, open_at_broker: set[str]) -> None:
        """Every submit the journal has no outcome for: still working at the broker (say so),
        or asked about, one request each (`_reconciled` writes what happened)."""
        strategies = {s for members, _ in self.groups.values() for s in members}
        for cid, entry in self.journal.open_orders(strategies).items():
            if cid in open_at_broker:
                self.journal.write("working", strategy=entry.get("strategy"),
                                   order_id=entry.get("order_id"), client_order_id=cid,
                                   reconciled=True)
            elif cid not in self.desk.orders and self.sender is not None:
                request = at.HttpRequest(
                    "GET", f"/v2/orders:by_client_order_id?client_order_id={cid}")
                self.sender.put(Job("reconcile", request, None, cid))

    def _reconciled(self, cid: str, result: JobResult) -> None:
        strategy = at.owner_of(cid)
        if result.status == 404:
            self.journal.write("rejected", strategy=strategy, client_order_id=cid,
                               reason="the broker never received it", reconciled=True)
            return
        if result.status != 200 or not isinstance(result.body, dict):
            logger.warning("could not reconcile {} with the broker: {}", cid, result.error)
            return
        order = result.body
        self.desk.fill_missed(cid, float(order.get("filled_qty") or 0))
        event = RECONCILED.get(str(order.get("status")), "working")
        self.journal.write(event, strategy=strategy, client_order_id=cid,
                           broker_order_id=order.get("id"), filled_qty=order.get("filled_qty"),
                           reason=f"found {order.get('status')} at the broker", reconciled=True)

    def cancelling(self) -> list[OrderRecord]:
        """Orders whose cancel was asked for and is not confirmed yet (still live)."""
        return [o for o in self.desk.orders.values() if o.cancel_requested and o.live]

    def abandon(self, jobs: list[Job]) -> None:
        """Submits that never left because the gateway stopped: journal them as cancelled."""
        for job in jobs:
            record = self.desk.orders.get(job.cid)
            if record is not None and record.live:
                self._journal_updates([self.desk.cancelled_before_sending(record)])

    def on_trade_update(self, update: at.TradeUpdate) -> list[Reply]:
        return self._routed(self._journal_updates(self.desk.on_trade_update(update)))

    def resync(self) -> None:
        """The trade stream reconnected: ask the broker about every live order."""
        for record in list(self.desk.orders.values()):
            if record.live and record.broker_id:
                self._lookup(record)

    def _lookup(self, record: OrderRecord) -> None:
        if self.sender is not None:
            request = at.HttpRequest(
                "GET", f"/v2/orders:by_client_order_id?client_order_id={record.client_order_id}"
            )
            self.sender.put(
                Job("lookup", request, self.owner.get(record.strategy), record.client_order_id)
            )

    # -- routing ------------------------------------------------------------------------------
    def _journal_updates(self, updates: list[Update]) -> list[Update]:
        for strategy, u in updates:
            order = u["order"]
            self.journal.write(
                u["event"],
                strategy=strategy,
                order_id=order.get("order_id"),
                client_order_id=order.get("client_order_id"),
                broker_order_id=order.get("broker_order_id"),
                filled_qty=order.get("filled_qty"),
                reason=u.get("reason", ""),
            )
        return updates

    def _routed(self, updates: list[Update]) -> list[Reply]:
        replies: list[Reply] = []
        for strategy, update in updates:
            if update["event"] == "rejected":
                self.rejected += 1
            client = self.owner.get(strategy)
            if client is None:
                logger.warning(
                    "update for {} with no live owner: {} {}",
                    strategy,
                    update["event"],
                    update["order"].get("client_order_id"),
                )
                self.unrouted.append(update)
            else:
                replies.append((client, update))
        return replies

    def status(self) -> dict[str, Any]:
        working = [
            o.to_json() | {"strategy": o.strategy} for o in self.desk.orders.values() if o.live
        ]
        return {
            "working": working,
            "unrouted": list(self.unrouted)[-20:],
            "rejected": self.rejected,
            "queued": self.sender.pending() if self.sender else 0,
            "throttled": self.sender.throttled if self.sender else 0,
            "positions_mismatch": {s: {"ours": o, "broker": t}
                                   for s, (o, t) in self.mismatch.items()},
        }


def _event_of(order: dict[str, Any]) -> str:
    """The trade-update event an order snapshot stands for."""
    return {
        "filled": "fill",
        "partially_filled": "partial_fill",
        "canceled": "canceled",
        "expired": "expired",
        "rejected": "rejected",
    }.get(str(order.get("status")), "new")
