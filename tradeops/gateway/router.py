"""Orders in the gateway's loop: from a host's request to the broker and back to its strategy.

Runs on the gateway's loop thread (the sender and the trade stream report through it), so it
needs no locks. It decides who owns what (a host says which process group it is at hello;
only that group's strategies may trade through its connection), applies the risk checks,
queues broker calls within the rate limit, routes every update to the connection that owns
the strategy now (a restarted host takes its strategies' orders over), and applies the
group's `auto_cancel` policy when that connection goes away.

A broker may hold several accounts: each has its own sender (its login, its rate limit, its
trade stream), its own limits and day counters (`accounts.py`), its own reconciliation of
positions with the broker, and may be halted on its own (`tradeops halt BROKER.ACCOUNT`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Protocol

from loguru import logger

from tradeops.gateway import accounts
from tradeops.gateway.accounts import AccountBook, Exposure
from tradeops.gateway.journal import Journal, entries, filled, halts
from tradeops.gateway.orders import (
    OrderDesk,
    OrderRecord,
    UnreadableUpdate,
    Update,
    fill_number,
)
from tradeops.gateway.trading import Job, JobResult
from tradeops.protocol import alpaca_trading as at
from tradeops.topology.model import AccountLimits, Strategy, Topology
from tradeops.topology.plan import groups as groups_of

Client = Hashable
Reply = tuple[Client, dict[str, Any]]
Scope = tuple[str, str]  # ("broker", NAME) | ("account", NAME) | ("strategy", NAME)
#: The fair queue's line for polling look-ups: one line of its own, served in turn with each
#: process's, so polling takes at most its share of the rate limit when orders wait.
POLL = "poll"


def order_config(topology: Topology, broker: str) -> tuple[
        dict[str, Strategy], dict[str, tuple[list[str], str]], dict[str, AccountLimits]]:
    """What a broker's router needs of the topology: its strategies, each group's strategies
    on it with its auto_cancel policy, and its accounts' limits."""
    strategies = {n: s for n, s in topology.strategies.items() if s.broker == broker}
    group_map: dict[str, tuple[list[str], str]] = {
        g.name: ([s for s in g.strategies if s in strategies], str(g.settings.auto_cancel))
        for g in groups_of(topology)
    }
    spec = topology.brokers[broker]
    return strategies, group_map, {a: acc.limits for a, acc in spec.trading_accounts.items()}


def utc_today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())


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
        senders: Mapping[str, Sender],
        journal: Journal,
        groups: Mapping[str, tuple[list[str], str]],
        price: Callable[[str], float | None],
        on_limit: str = "queue",
        no_orders_reason: str = "",
        limits: Mapping[str, AccountLimits] | None = None,
        today: Callable[[], str] = utc_today,
        market_tif: str = "day",
        tifs: tuple[str, ...] | None = None,
        tif_why: str = "",
        polled: bool = False,
    ) -> None:
        self.desk = desk
        self.senders = dict(senders)  # account → its order transport
        self.journal = journal
        self.groups = groups  # group → (its strategies on this broker, auto_cancel policy)
        self.price = price
        self.on_limit = on_limit
        self.no_orders_reason = no_orders_reason
        self.today = today
        self.market_tif = market_tif  # flatten's market orders (crypto wants gtc)
        self.tifs = tifs  # the times in force the broker has (None: every one the desk has)
        self.tif_why = tif_why  # why only those, for the refusal
        # No trade-updates stream (OpenAlgo): working orders are polled (`poll`), and a
        # cancel the broker accepted is looked up at once to be confirmed.
        self.polled = polled
        self.polls = 0  # order-status look-ups made by polling (metrics, tests)
        #: account → why the broker refused its login (401/403), until it accepts it again
        self.auth_rejected: dict[str, str] = {}
        self.account_of = {s: cfg.account for s, cfg in desk.strategies.items()}
        names = set(self.account_of.values()) | set(self.senders) | set(limits or {})
        self.books = {a: AccountBook(a, (limits or {}).get(a) or AccountLimits())
                      for a in sorted(names)}
        self.owner: dict[str, Client] = {}  # strategy → the connection that runs it now
        self.group_of: dict[Client, str] = {}
        self.unknown_group: dict[Client, str] = {}  # said hello as a group not (yet) known
        self.unrouted: deque[dict[str, Any]] = deque(maxlen=200)
        self.rejected_by: dict[str, int] = {}  # "strategy:cause" → count (metrics)
        self.auto_cancels = 0  # times an auto_cancel policy fired (alerts)
        # Positions, the accounts' day and halts survive a restart of this gateway: rebuilt
        # from the journal.
        members = {s for names_, _ in groups.values() for s in names_}
        log = list(entries(journal.path))  # read once for all of these
        #: routing id → the broker's order id, as the journal knows them (a broker without
        #: client order ids, OpenAlgo, needs them to find orders placed before a restart)
        self.broker_ids = {str(e["client_order_id"]): str(e["broker_order_id"]) for e in log
                           if e.get("client_order_id") and e.get("broker_order_id")}
        self.desk.restore(filled(log, members))
        accounts.replay(self.books, self.account_of, log)
        for book in self.books.values():
            book.roll(today())
        self.halts: dict[Scope, str] = halts(log, desk.broker)
        #: account → symbol → (our strategies' total, the broker's) while they differ: the
        #: account's new orders are refused until a person acknowledges
        #: (`tradeops orders --ack BROKER.ACCOUNT`).
        self.mismatch: dict[str, dict[str, tuple[float, float]]] = {}

    def sender_of(self, strategy: str) -> Sender | None:
        return self.senders.get(self.account_of.get(strategy, ""))

    # -- hosts -----------------------------------------------------------------------------------
    def hello(self, client: Client, group: str) -> list[Reply]:
        """A host of `group` connected: it owns its strategies' orders from now on, and learns
        the orders that survived its previous incarnation, and its positions."""
        if group not in self.groups:
            self.unknown_group[client] = group  # a reload may bring it (`tradeops apply`)
            return []
        self.unknown_group.pop(client, None)
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
            account=self.account_of.get(strategy),
        )
        reason = self._refusal(client, strategy, record)
        sender = self.sender_of(strategy)
        if reason is None and sender is not None:
            account = self.account_of[strategy]
            job = Job(
                "submit",
                at.submit(symbol, side, qty, limit, tif, record.client_order_id),
                client,
                record.client_order_id,
                account,
            )
            reason = sender.admit(job, reject_when_spent=self.on_limit == "reject")
            if reason is None:
                self.books[account].sent(self.today())
                return []
        rejected = self.desk.rejected(record, reason or "no order transport")
        return self._routed(self._journal_updates([rejected], refused=True))

    def _refusal(self, client: Client, strategy: str, record: OrderRecord) -> str | None:
        if self.no_orders_reason:
            return self.no_orders_reason
        group = self.group_of.get(client)
        if group is None or strategy not in self.groups[group][0]:
            return f"this connection does not run strategy '{strategy}'"
        halted = self.halted(strategy)
        if halted:
            return halted
        if self.tifs is not None and record.tif not in self.tifs:
            return (f"time in force '{record.tif}' is not available on broker "
                    f"'{self.desk.broker}'{self.tif_why}; send tif="
                    f"{' or '.join(repr(t) for t in self.tifs)}")
        account = self.account_of.get(strategy, "")
        differ = self.mismatch.get(account)
        if differ:
            shown = ", ".join(f"{sym} ours {ours:g}, broker {theirs:g}"
                              for sym, (ours, theirs) in sorted(differ.items()))
            return (f"positions of account '{account}' differ from the broker's ({shown}); "
                    f"check the account, then `tradeops orders --ack "
                    f"{self.desk.broker}.{account}`")
        price = self.price(record.symbol)
        reason = self.desk.check(
            strategy,
            record.symbol,
            record.side,
            record.qty,
            record.limit,
            record.tif,
            price,
            checking=record.client_order_id,
        )
        book = self.books.get(account)
        if reason is None and book is not None and book.limited:
            # Walked only for an account with limits: every order's check stays cheap.
            open_orders, exposure = self._account_exposure(account, record.client_order_id)
            reason = book.refusal(
                self.today(), record.symbol, record.side, record.qty,
                record.limit if record.limit is not None else price, open_orders, exposure,
                self.price)
        return reason

    def _account_exposure(self, account: str, besides: str) -> tuple[int, dict[str, Exposure]]:
        """An account's working orders (but `besides`) and its exposure per symbol."""
        exposure: dict[str, Exposure] = {}
        for (strategy, symbol), qty in self.desk.positions.items():
            if self.account_of.get(strategy) == account and qty:
                exposure.setdefault(symbol, Exposure()).position += qty
        open_orders = 0
        for o in self.desk.orders.values():
            if not o.live or o.client_order_id == besides or self.account_of.get(
                    o.strategy) != account:
                continue
            open_orders += 1
            remaining = max(0.0, o.qty - o.filled_qty)
            e = exposure.setdefault(o.symbol, Exposure())
            if o.side == "buy":
                e.buys += remaining
            else:
                e.sells += remaining
        return open_orders, exposure

    # -- halt, resume, flatten ------------------------------------------------------------
    def scope_of(self, target: str) -> Scope | None:
        """What `tradeops halt TARGET` means on this broker: the broker, one of its accounts
        (BROKER.ACCOUNT), or one of its strategies; None when TARGET is none of these."""
        broker = self.desk.broker
        if target in ("", broker):
            return ("broker", broker)
        if target.startswith(broker + ".") and target[len(broker) + 1:] in self.books:
            return ("account", target[len(broker) + 1:])
        if target in self.desk.strategies:
            return ("strategy", target)
        return None

    def targets(self) -> list[str]:
        broker = self.desk.broker
        return [broker, *(f"{broker}.{a}" for a in self.books), *sorted(self.desk.strategies)]

    def halted(self, strategy: str) -> str | None:
        """Why `strategy` may not send new orders because of a halt, or None."""
        account = self.account_of.get(strategy, "")
        for scope, label in ((("strategy", strategy), strategy),
                             (("account", account), f"{self.desk.broker}.{account}"),
                             (("broker", self.desk.broker), self.desk.broker)):
            if scope in self.halts:
                return (f"{label} is halted (since {self.halts[scope]}); "
                        f"`tradeops resume {label}` reopens it")
        return None

    def halt(self, scope: Scope) -> list[Reply]:
        """Block new orders in `scope` and cancel its working ones; the journal records when
        (and a restarted gateway reads the halt back)."""
        kind, target = scope
        if scope not in self.halts:
            self.journal.write("halt", broker=self.desk.broker, scope=kind, target=target)
            self.halts[scope] = _now()
        logger.warning("halted {} {}: new orders refused, working orders cancelled", kind, target)
        if kind == "strategy":
            return self._routed(self._journal_updates(
                [u for o in self.desk.working(target) for u in self._cancel(o)]))
        names = list(self.books) if kind == "broker" else [target]
        return self._routed(self._journal_updates(
            [u for account in names for u in self._cancel_account(account, None)]))

    def resume(self, scope: Scope) -> bool:
        if self.halts.pop(scope, None) is None:
            return False
        self.journal.write("resume", broker=self.desk.broker, scope=scope[0], target=scope[1])
        logger.info("resumed {} {}: new orders accepted", *scope)
        return True

    def flatten(self, strategy: str) -> tuple[list[dict[str, Any]], list[Reply]]:
        """Close `strategy`'s positions with market orders, after cancelling its working
        orders. Neither a halt nor the strategy's limits stop it: it only reduces."""
        updates = [u for o in self.desk.working(strategy) for u in self._cancel(o)]
        sender = self.sender_of(strategy)
        placed: list[dict[str, Any]] = []
        if sender is None:
            return placed, self._routed(self._journal_updates(updates))
        account = self.account_of[strategy]
        for symbol, qty in sorted(self.desk.positions_of(strategy).items()):
            side = "sell" if qty > 0 else "buy"
            record = self.desk.new(strategy, "", symbol, side, abs(qty), None, self.market_tif)
            self.journal.write("submit", strategy=strategy, order_id=record.local_id,
                               client_order_id=record.client_order_id, symbol=symbol,
                               side=side, qty=abs(qty), limit=None, tif=self.market_tif,
                               account=account, flatten=True)
            job = Job("submit", at.submit(symbol, side, abs(qty), None, self.market_tif,
                                          record.client_order_id),
                      self.owner.get(strategy), record.client_order_id, account)
            reason = sender.admit(job, reject_when_spent=False)
            if reason is None:
                self.books[account].sent(self.today())
            else:
                updates.append(self.desk.rejected(record, reason))
            placed.append(record.to_json() | {"refused": reason or ""})
        return placed, self._routed(self._journal_updates(updates))

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
        sender = self.sender_of(record.strategy)
        if (
            record.status == "new"
            and sender is not None
            and sender.withdraw(self.owner.get(record.strategy), record.client_order_id)
        ):
            return [self.desk.cancelled_before_sending(record)]
        if record.broker_id and sender is not None:
            sender.put(
                Job(
                    "cancel",
                    at.cancel(record.broker_id),
                    self.owner.get(record.strategy),
                    record.client_order_id,
                    self.account_of[record.strategy],
                )
            )
        # Without a broker id yet, the cancel goes out as soon as the submit's answer comes.
        return []

    def reconfigure(self, strategies: dict[str, Strategy],
                    groups: Mapping[str, tuple[list[str], str]],
                    limits: Mapping[str, AccountLimits]) -> list[Reply]:
        """New strategies, groups and limits from an edited topology (`tradeops apply`),
        without a restart: positions, orders and owners stay; a host that said hello as a
        group this gateway did not know is taken on now."""
        self.desk.strategies = dict(strategies)
        # A group still connected keeps its policy until its host goes (apply stops removed
        # groups first, but a slow stop must not leave its orders without a policy), and a
        # removed strategy's account stays known while it has orders to route.
        kept = {g: self.groups[g] for g in set(self.group_of.values())
                if g not in groups and g in self.groups}
        self.groups = {**groups, **kept}
        self.account_of = {**self.account_of,
                           **{s: cfg.account for s, cfg in strategies.items()}}
        for account, lim in limits.items():
            if account in self.books:
                self.books[account].limits = lim
        logger.info("reloaded: {} strategies in {} groups", len(strategies), len(groups))
        return [r for client, group in list(self.unknown_group.items())
                for r in self.hello(client, group)]

    def client_gone(self, client: Client) -> list[Reply]:
        """A host's connection closed: apply its group's auto_cancel policy."""
        self.unknown_group.pop(client, None)
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
        self.auto_cancels += 1
        if policy == "account":  # only the accounts this group trades on
            return [u for account in sorted({self.account_of[o.strategy] for o in working})
                    for u in self._cancel_account(account, client)]
        return [u for o in working for u in self._cancel(o)]

    def _cancel_account(self, account: str, client: Client) -> list[Update]:
        """Cancel every working order of one account at the broker (one DELETE /v2/orders on
        its login); each of ours is tracked until the broker confirms it (settle_cancels)."""
        sender = self.senders.get(account)
        if sender is None:
            return []
        mine = [o for o in self.desk.orders.values()
                if o.live and self.account_of.get(o.strategy) == account]
        withdrawn: list[Update] = []
        for record in mine:
            if record.status == "new" and sender.withdraw(self.owner.get(record.strategy),
                                                          record.client_order_id):
                withdrawn.append(self.desk.cancelled_before_sending(record))
            else:
                record.cancel_requested = True
        sender.put(Job("cancel_all", at.cancel_all(), client, "", account))
        return withdrawn

    # -- the broker ------------------------------------------------------------------------------
    def on_result(self, result: JobResult) -> list[Reply]:
        job = result.job
        self._login_outcome(job.account, result)
        record = self.desk.orders.get(job.cid) if job.cid else None
        if job.kind == "submit" and record is not None:
            if result.status == 0 or (result.status < 300 and not isinstance(result.body, dict)):
                # It may or may not have reached the broker (no answer), or the broker took it
                # but its answer cannot be read: ask the broker about it.
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
            if result.status < 300 and isinstance(result.body, dict):
                try:
                    avg = result.body.get("filled_avg_price")
                    price = (fill_number(avg, "filled_avg_price", job.cid)
                             if avg not in (None, "") else None)  # fmt: skip
                    return self._apply_update(at.TradeUpdate(
                        _event_of(result.body), result.body, price))
                except UnreadableUpdate as exc:  # asked already: say so, ask no more
                    self._unreadable(record, exc)
            return []
        if job.kind in ("cancel", "cancel_all") and result.status >= 400 and result.status != 404:
            logger.warning("{} failed: {}", job.kind, result.error)
            self.journal.write(f"{job.kind}_failed", client_order_id=job.cid, reason=result.error)
        elif job.kind in ("cancel", "cancel_all") and self.polled and 0 < result.status < 300:
            # No stream will say so: ask now whether the cancel took.
            for o in list(self.desk.orders.values()):
                if o.live and o.cancel_requested and o.broker_id and (
                        o.client_order_id == job.cid if job.kind == "cancel"
                        else self.account_of.get(o.strategy) == job.account):
                    self._lookup(o)
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
            self._reconcile(job.account, {str(o.get("client_order_id")) for o in result.body
                                          if isinstance(o, dict)})
            sender = self.senders.get(job.account)
            if sender is not None:  # after the lookups: the account's positions
                sender.put(Job("positions", at.HttpRequest("GET", "/v2/positions"), None, "",
                               job.account))
        if job.kind == "reconcile":
            self._reconciled(job.cid, result)
        if job.kind == "positions" and result.status == 200 and isinstance(result.body, list):
            self._compare_positions(job.account, result.body)
        return []

    def start(self) -> None:
        """A gateway starting: ask each account for its open orders (taken over, and the
        journal reconciled with them), then for its positions (compared with ours)."""
        for account, sender in self.senders.items():
            sender.put(Job("open_orders", at.open_orders(), None, "", account))

    def _compare_positions(self, account: str, broker_positions: list[Any]) -> None:
        """Our strategies' positions on `account`, summed per symbol, against the broker's: a
        mismatch is logged, journalled, shown in status and blocks the account's new orders
        until acknowledged."""
        theirs = {str(p.get("symbol")): float(p.get("qty") or 0)
                  for p in broker_positions if isinstance(p, dict)}
        ours: dict[str, float] = {}
        for (strategy, symbol), qty in self.desk.positions.items():
            if self.account_of.get(strategy) == account:
                ours[symbol] = ours.get(symbol, 0.0) + qty
        differ = {s: (ours.get(s, 0.0), theirs.get(s, 0.0)) for s in set(ours) | set(theirs)
                  if abs(ours.get(s, 0.0) - theirs.get(s, 0.0)) > 1e-9}
        if not differ:
            self.mismatch.pop(account, None)
            return
        self.mismatch[account] = differ
        label = f"{self.desk.broker}.{account}"
        logger.error("positions of account {} differ from the broker's: {}; its new orders are "
                     "refused until `tradeops orders --ack {}`", label, differ, label)
        self.journal.write("positions_mismatch", broker=self.desk.broker, account=account,
                           symbols={s: {"ours": o, "broker": t} for s, (o, t) in differ.items()})

    def acknowledge(self, account: str | None = None) -> dict[str, dict[str, tuple[float, float]]]:
        """A person checked the account (every account when None): its orders may go again.
        Returns what was differing, per account."""
        names = list(self.mismatch) if account is None else [account]
        was = {a: self.mismatch.pop(a) for a in names if a in self.mismatch}
        for a, differ in was.items():
            self.journal.write("positions_acknowledged", broker=self.desk.broker, account=a,
                               symbols=sorted(differ))
        return was

    # -- after a crash: journal entries without an outcome -------------------------------------
    def _reconcile(self, account: str, open_at_broker: set[str]) -> None:
        """Every submit of `account`'s strategies the journal has no outcome for: still
        working at the broker (say so), or asked about, one request each (`_reconciled`
        writes what happened)."""
        strategies = {s for members, _ in self.groups.values() for s in members
                      if self.account_of.get(s) == account}
        sender = self.senders.get(account)
        for cid, entry in self.journal.open_orders(strategies).items():
            if cid in open_at_broker:
                self.journal.write("working", strategy=entry.get("strategy"),
                                   order_id=entry.get("order_id"), client_order_id=cid,
                                   reconciled=True)
            elif cid not in self.desk.orders and sender is not None:
                request = at.HttpRequest(
                    "GET", f"/v2/orders:by_client_order_id?client_order_id={cid}")
                sender.put(Job("reconcile", request, None, cid, account))

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
        """An update from the broker's stream. One whose fill numbers cannot be read changes
        nothing: it is journaled and logged, and the order is looked up instead."""
        try:
            return self._apply_update(update)
        except UnreadableUpdate as exc:
            record = self.desk.orders.get(update.client_order_id)
            self._unreadable(record, exc)
            if record is not None:
                self._lookup(record)
            return []

    def _unreadable(self, record: OrderRecord | None, exc: UnreadableUpdate) -> None:
        cid = record.client_order_id if record is not None else ""
        logger.error("the broker's update of an order cannot be read ({}); it was not "
                     "applied", exc)
        self.journal.write("unreadable_update", client_order_id=cid, reason=str(exc))

    def _apply_update(self, update: at.TradeUpdate) -> list[Reply]:
        updates = self.desk.on_trade_update(update)
        for strategy, u in updates:  # the account's day: realised P&L of each fill
            account = self.account_of.get(strategy)
            if u.get("fill_qty") and u.get("fill_price") is not None and account in self.books:
                self.books[account].on_fill(self.today(), u["order"]["symbol"],
                                            u["order"]["side"], float(u["fill_qty"]),
                                            float(u["fill_price"]))
        return self._routed(self._journal_updates(updates))

    def poll(self) -> None:
        """Ask the broker about every working order of each account whose sender has nothing
        waiting (a broker without a trade-updates stream); `polls` counts the look-ups."""
        queued = 0
        for account, sender in self.senders.items():
            if sender.pending():
                continue  # orders first; this round waits for the next turn
            for record in list(self.desk.orders.values()):
                if (record.live and record.broker_id
                        and self.account_of.get(record.strategy) == account):
                    self._lookup(record, client=POLL)
                    queued += 1
        self.polls += queued

    def _login_outcome(self, account: str, result: JobResult) -> None:
        """Remember (and say once, clearly) that the broker refused an account's login."""
        # Alpaca answers 403 for refusals of other kinds (buying power); OpenAlgo's 403 is
        # always "Invalid openalgo apikey".
        if result.status == 401 or (self.polled and result.status == 403):
            if account not in self.auth_rejected:
                logger.error("broker '{}' refused the login of account '{}' ({}): check the "
                             "account's credentials", self.desk.broker, account, result.error)
                self.journal.write("auth_rejected", broker=self.desk.broker, account=account,
                                   reason=result.error)
            self.auth_rejected[account] = result.error
        elif 200 <= result.status < 300 and self.auth_rejected.pop(account, None) is not None:
            logger.info("broker '{}' accepts the login of account '{}' again",
                        self.desk.broker, account)

    def resync(self) -> None:
        """The trade stream reconnected: ask the broker about every live order."""
        for record in list(self.desk.orders.values()):
            if record.live and record.broker_id:
                self._lookup(record)

    def _lookup(self, record: OrderRecord, client: Client = None) -> None:
        """Ask the broker about one order (`client`: whose line of the fair queue it waits
        in; by default the owner's)."""
        sender = self.sender_of(record.strategy)
        if sender is not None:
            request = at.HttpRequest(
                "GET", f"/v2/orders:by_client_order_id?client_order_id={record.client_order_id}"
            )
            sender.put(Job("lookup", request,
                           client if client is not None else self.owner.get(record.strategy),
                           record.client_order_id, self.account_of[record.strategy]))

    # -- routing ------------------------------------------------------------------------------
    def _journal_updates(self, updates: list[Update], refused: bool = False) -> list[Update]:
        """Journal each update; `refused`: the desk refused these orders (they never reached
        the broker, so they do not count against the account's orders of the day)."""
        for strategy, u in updates:
            order = u["order"]
            extra: dict[str, Any] = {"refused": True} if refused else {}
            if u.get("fill_qty"):
                extra |= {"fill_qty": u["fill_qty"], "fill_price": u.get("fill_price")}
            self.journal.write(
                u["event"],
                strategy=strategy,
                order_id=order.get("order_id"),
                client_order_id=order.get("client_order_id"),
                broker_order_id=order.get("broker_order_id"),
                filled_qty=order.get("filled_qty"),
                reason=u.get("reason", ""),
                **extra,
            )
        return updates

    def _routed(self, updates: list[Update]) -> list[Reply]:
        replies: list[Reply] = []
        for strategy, update in updates:
            if update["event"] == "rejected":
                key = f"{strategy}:{rejection_cause(str(update.get('reason', '')))}"
                self.rejected_by[key] = self.rejected_by.get(key, 0) + 1
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

    @property
    def rejected(self) -> int:
        """Orders rejected since this gateway started (every cause)."""
        return sum(self.rejected_by.values())

    def status(self) -> dict[str, Any]:
        working = [
            o.to_json() | {"strategy": o.strategy} for o in self.desk.orders.values() if o.live
        ]
        return {
            "working": working,
            "unrouted": list(self.unrouted)[-20:],
            "rejected": self.rejected,
            "rejected_by": dict(self.rejected_by),
            "auto_cancels": self.auto_cancels,
            "queued": sum(s.pending() for s in self.senders.values()),
            "throttled": sum(s.throttled for s in self.senders.values()),
            "positions_mismatch": {
                a: {s: {"ours": o, "broker": t} for s, (o, t) in differ.items()}
                for a, differ in self.mismatch.items()},
            "halted": {f"{kind}:{target}": since for (kind, target), since in self.halts.items()},
            "accounts": {a: book.status() for a, book in self.books.items()},
            "auth_rejected": dict(self.auth_rejected),
            "positions": {f"{s}:{sym}": qty for (s, sym), qty in self.desk.positions.items()
                          if qty},
        }


def rejection_cause(reason: str) -> str:
    """A refusal's reason as a short cause, for counting (metrics): halt, positions_mismatch,
    risk_limit, account_limit, rate_limit, broker, not_owner or other."""
    for needle, cause in (("is halted", "halt"), ("differ from the broker", "positions_mismatch"),
                          ("account '", "account_limit"), ("limits.", "risk_limit"),
                          ("rate limit", "rate_limit"), ("queue", "rate_limit"),
                          ("broker refused", "broker"), ("never received", "broker"),
                          ("does not run strategy", "not_owner")):
        if needle in reason:
            return cause
    return "other"


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _event_of(order: dict[str, Any]) -> str:
    """The trade-update event an order snapshot stands for."""
    return {
        "filled": "fill",
        "partially_filled": "partial_fill",
        "canceled": "canceled",
        "expired": "expired",
        "rejected": "rejected",
    }.get(str(order.get("status")), "new")
