"""The strategy host: one process group's strategies on one thread.

The host reads the bus of every broker its strategies use, hands each tick to the strategies
that subscribed it (in priority order), fires timers, and keeps the gateway informed of what
it wants through one connection per broker (the connection is the lease: if the host dies,
the gateway releases everything). A strategy that raises is stopped alone, with its
traceback logged; its neighbours keep running.

Waiting: with `busy_poll` the loop spins; otherwise it sleeps on the bus's doorbell until a
tick arrives or a timer is due.
"""

from __future__ import annotations

import importlib
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from tradeops.gateway.client import GatewayClient, GatewayError
from tradeops.process import child
from tradeops.process.paths import RunPaths
from tradeops.process.spec import ProcessSpec
from tradeops.protocol.modes import MODE_HELP, Mode, is_mode
from tradeops.protocol.tick import BAR, DAILY_BAR, DEPTH, LULD, STATUS, UPDATED_BAR
from tradeops.runtime.config import HostConfig
from tradeops.runtime.context import HostContext
from tradeops.runtime.dispatch import DispatchTable
from tradeops.runtime.feed import BrokerFeed
from tradeops.runtime.gate import broker_gate, symbol_gate
from tradeops.runtime.host_orders import HostOrders
from tradeops.runtime.host_stats import STATS_EVERY, HostStats, StuckReports, publish_stats
from tradeops.runtime.resume import Resume
from tradeops.runtime.strategy import Strategy
from tradeops.runtime.watchdog import Watchdog

GATEWAY_WAIT = 30.0  # how long a starting host waits for its gateways
#: The callback of each kind of record past trades and quotes (books: on_book, below).
_CALLBACKS: dict[int, str] = {BAR: "on_bar", DAILY_BAR: "on_bar", UPDATED_BAR: "on_bar",
                              STATUS: "on_status", LULD: "on_luld"}


@dataclass
class _Slot:
    """One strategy inside the host."""

    name: str
    broker: str
    strategy: Strategy
    timer: float | None
    next_timer: float = 0.0
    running: bool = True
    error: str = ""
    stuck: str = ""  # "stuck in on_tick for 12 s" while the watchdog sees it blocked


class Host:
    def __init__(
        self,
        config: HostConfig,
        spec: ProcessSpec,
        paths: RunPaths,
        topology_dir: Path,
        clock: Callable[[], float] = time.time,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        connect: Callable[[str], BrokerFeed] | None = None,
    ) -> None:
        """`clock` is what strategies read as `now()`; `monotonic` times their timers and the
        stats; `connect(broker)` opens a broker's feed (by default: its gateway and bus).
        Tests pass fakes for the last two to drive the loop without processes. `config` is
        the group's part of the topology, resolved (runtime/config.py)."""
        self.config = config
        self.topology_dir = topology_dir
        self.spec = spec
        self.paths = paths
        self.clock = clock
        self.monotonic = monotonic
        self._open_feed = connect or self._connect
        self.stopping = threading.Event()  # `run`'s stop: a wait for a gateway gives way to it
        self.busy_poll = config.busy_poll
        self.resume = config.resume
        self.callback_timeout = config.callback_timeout
        self.on_stuck = config.on_stuck
        self.stale_after_symbol = config.stale_after_symbol
        self.watchdog: Watchdog | None = None
        self._refusals: list[tuple[str, str, str]] = []  # (strategy, symbol, reason) to tell
        self.refused: dict[str, str] = {}  # symbol -> why the broker refused it (for status)
        self.resumes = Resume(self.resume, paths.run_dir, spec.name)
        self.table = DispatchTable()
        self.slots: dict[str, _Slot] = {}
        self.feeds: dict[str, BrokerFeed] = {}
        self.stats = HostStats(rate=(monotonic(), 0, 0.0))
        self.last_stats = 0.0
        self.trading = HostOrders(self)  # this host's orders, as the gateway reports them

    # -- setup --------------------------------------------------------------------------------
    def start(self) -> None:
        """Connect to every gateway, load strategies, subscribe their symbols, call on_start."""
        brokers = sorted({self.config.strategies[s].broker for s in self.spec.strategies})
        self.resumes.open(brokers)
        for broker in brokers:
            self._attach(broker, self.resumes.previous(broker))
        for strategy_name in self.spec.strategies:
            self._load(strategy_name)
        self._await_order_snapshots()
        for slot in list(self.slots.values()):
            cfg = self.config.strategies[slot.name]
            for symbol in cfg.symbols:
                self.table.subscribe(slot.name, slot.broker, symbol, cfg.subscription)
        self._subscribe_configured()
        for slot in list(self.slots.values()):
            self._call(slot, "on_start")
            if slot.timer:
                slot.next_timer = self.monotonic() + slot.timer

    def _await_order_snapshots(self, timeout: float = 2.0) -> None:
        """The gateway answers a host's hello with each strategy's surviving orders; take
        them in before on_start, so `self.orders()` shows them there."""
        waiting = {s for s in self.spec.strategies}
        deadline = time.monotonic() + timeout
        while waiting and time.monotonic() < deadline:
            for broker, feed in self.feeds.items():
                for message in feed.client.poll(0.05):
                    if message.get("op") == "orders":
                        waiting.discard(str(message.get("strategy")))
                    self._gateway_message(broker, message)

    def _connect(self, broker: str) -> BrokerFeed:
        socket_path = str(self.paths.gateway_socket(broker))
        deadline = time.monotonic() + GATEWAY_WAIT
        said = False
        while True:
            try:
                client = GatewayClient(socket_path, f"host:{self.spec.name}", group=self.spec.name)
                break
            except GatewayError as exc:
                if time.monotonic() > deadline or self.stopping.is_set():
                    raise
                if not said:
                    logger.info("waiting up to {:.0f} s for gateway-{}: {}", GATEWAY_WAIT,
                                broker, exc)
                    said = True
                self.stopping.wait(0.1)
        start_after = self.resumes.start_after.get(broker) if self.resumes.replay else None
        return BrokerFeed.open(
            self.paths.bus, broker, client, start_after=start_after, busy_poll=self.busy_poll
        )

    # -- bus epochs and exact resume -------------------------------------------------------------
    def _attach(self, broker: str, previous: tuple[int, int] | None) -> None:
        """Open `broker`'s feed, following `previous` (epoch, seq) with resume: replay; a
        feed of a new epoch is announced to the strategies (`on_feed_restart`)."""
        if previous is not None:
            self.resumes.start_after[broker] = previous
        feed = self.feeds[broker] = self._open_feed(broker)
        feed.symbols = self.table.wanted(broker)  # the ring's other symbols are not decoded
        self.resumes.attached(broker, feed.epoch, feed.cursor, previous)

    def _load(self, name: str) -> None:
        cfg = self.config.strategies[name]
        module_name, _, class_name = cfg.class_path.partition(":")
        # Strategy modules import as validate imports them: from the topology's folder too.
        if str(self.topology_dir) not in sys.path:
            sys.path.insert(0, str(self.topology_dir))
        cls = getattr(importlib.import_module(module_name), class_name)
        strategy: Strategy = cls(name, cfg.params, HostContext(self, name))
        self.table.add_strategy(name, cfg.priority)
        self.slots[name] = _Slot(name, cfg.broker, strategy, cfg.timer)

    # -- the loop -----------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        self.stopping = stop
        self.watchdog = self.watchdog or self._watchdog(stop)
        try:
            while not stop.is_set():
                worked = self.step()
                if not worked and not self.busy_poll:
                    self._wait(self._idle_timeout())
        finally:
            self.watchdog.close()

    def _watchdog(self, stop: threading.Event) -> Watchdog:
        """Started before any callback runs (so a blocked on_start is seen too)."""
        reports = StuckReports(self)
        watchdog = Watchdog(self.callback_timeout, stop, reports.stuck, reports.still_stuck,
                            reports.free)
        watchdog.start()
        return watchdog

    def step(self) -> bool:
        """One pass: ticks from every feed, due timers, gateway messages, stats."""
        worked = False
        resumes = self.resumes
        if resumes.restarted:
            self._tell_restarts()
        cursors = resumes.cursors
        for broker, feed in self.feeds.items():
            ticks = feed.read()
            self.stats.ticks += feed.passed  # read too, for other strategies' symbols
            if ticks:
                worked = True
                if resumes.needs_flags(broker):
                    ticks = resumes.flag(broker, ticks)
                if cursors is not None:
                    cursors.handing(broker, ticks[-1].seq)
                self._dispatch(broker, ticks)
                if cursors is not None:
                    cursors.done(broker, ticks[-1].seq)
            self.stats.lost += feed.take_lost()
        for broker, feed in list(self.feeds.items()):
            try:
                messages = feed.client.poll()
            except GatewayError as exc:
                try:
                    self._reconnect(broker, str(exc))
                except GatewayError:
                    if self.stopping.is_set():  # stopping while its gateway is gone too
                        return worked
                    raise
                continue
            for message in messages:
                worked = True
                self._gateway_message(broker, message)
        for name, update in self.trading.take_local():
            self._call(self.slots[name], "on_order_update", update)
            worked = True
        if self._refusals and self._tell_refusals():
            worked = True
        now = self.monotonic()
        for slot in self.slots.values():
            if slot.running and slot.timer and now >= slot.next_timer:
                slot.next_timer = now + slot.timer  # missed periods are skipped, not replayed
                self._call(slot, "on_timer")
                worked = True
        if now - self.last_stats >= STATS_EVERY:
            publish_stats(self, now)
        return worked

    def _dispatch(self, broker: str, ticks: list[Any]) -> None:
        targets = self.table.by_raw(broker).get
        slots = self.slots
        watchdog = self.watchdog
        for tick in ticks:
            code = tick.kind_code
            names = targets((tick.symbol_bytes, code), ())
            if code >= BAR:  # one int compare per tick: bars and books cost no more
                if names:
                    self._bar_or_book(broker, tick, names)
                continue
            for name in names:
                slot = slots[name]
                if watchdog is not None:  # two stores: the watchdog samples them
                    watchdog.current = (name, "on_tick")
                    watchdog.calls += 1
                try:
                    slot.strategy.on_tick(tick)
                except Exception:
                    self._failed(slot, "on_tick")
        if watchdog is not None:
            watchdog.current = None
        self.stats.ticks += len(ticks)
        self.stats.lag_ns = time.time_ns() - ticks[-1].receive_ns

    def _bar_or_book(self, broker: str, tick: Any, names: tuple[str, ...]) -> None:
        """A bar (minute, daily, updated) to `on_bar`, a status to `on_status`, LULD bands to
        `on_luld`; a DEPTH record to `on_book` with the symbol's newest book from the book
        table, once per book version (a host behind the writer skips to the newest)."""
        slots = self.slots
        code = tick.kind_code
        if code != DEPTH:
            callback = _CALLBACKS.get(code)
            if callback is not None:
                for name in names:
                    self._call(slots[name], callback, tick)
            return
        feed = self.feeds[broker]
        symbol = tick.symbol
        book = feed.book(symbol)
        if book is None or book.version <= feed.book_delivered.get(symbol, 0):
            return
        feed.book_delivered[symbol] = book.version
        for name in names:
            self._call(slots[name], "on_book", book)

    def _idle_timeout(self) -> float:
        due = [s.next_timer for s in self.slots.values() if s.running and s.timer]
        until_timer = min(due) - self.monotonic() if due else 0.25
        return max(0.0, min(0.25, until_timer))

    def _wait(self, timeout: float) -> None:
        feeds = list(self.feeds.values())
        stop = child.stop_wakeup()  # a stop signal ends the wait at once (restart is quick)
        also = [] if stop is None else [stop]
        if len(feeds) == 1:  # an order update on the gateway socket ends the wait too
            feeds[0].wait(timeout, [feeds[0].client.fileno(), *also])
        else:
            BrokerFeed.wait_any(feeds, timeout, also)

    # -- strategies ---------------------------------------------------------------------------
    def _call(self, slot: _Slot, method: str, *args: Any) -> None:
        if not slot.running:
            return
        watchdog = self.watchdog
        if watchdog is not None:
            watchdog.current = (slot.name, method)
            watchdog.calls += 1
        try:
            with logger.contextualize(strategy=slot.name):  # the host's lines name it too
                getattr(slot.strategy, method)(*args)
        except Exception:
            self._failed(slot, method)
        finally:
            if watchdog is not None:
                watchdog.current = None

    def _failed(self, slot: _Slot, method: str) -> None:
        """A strategy raised: log it, stop it alone, release its subscriptions."""
        error = traceback.format_exc(limit=8)
        last = error.strip().splitlines()[-1]
        slot.strategy.log.error(
            "{} raised; the strategy is stopped, its neighbours keep running:\n{}", method, error
        )
        slot.running, slot.error = False, f"{method}: {last}"
        self.stats.errors += 1
        self.stats.last_error = f"{slot.name}: {slot.error}"
        for broker, symbol in self.table.drop(slot.name):
            self._sync_subscription(broker, symbol)
        try:
            slot.strategy.on_stop()
        except Exception:
            logger.warning("{}.on_stop raised too; ignored", slot.name)

    def stop(self) -> None:
        for slot in self.slots.values():
            self._call(slot, "on_stop")
            slot.running = False
        publish_stats(self, self.monotonic())
        for feed in self.feeds.values():
            feed.close()
        self.trading.close()
        self.resumes.close()

    # -- subscriptions (also called by strategies through their context) --------------------------
    def _subscribe(self, strategy: str, symbol: str, mode: Mode) -> None:
        if not is_mode(mode):
            raise ValueError(f"subscribe({symbol!r}, {mode!r}): not a mode: {MODE_HELP}")
        broker = self.slots[strategy].broker
        self.table.subscribe(strategy, broker, symbol, mode)
        self._sync_subscription(broker, symbol, strategy)

    def _unsubscribe(self, strategy: str, symbol: str) -> None:
        broker = self.slots[strategy].broker
        self.table.unsubscribe(strategy, broker, symbol)
        self._sync_subscription(broker, symbol)

    def _subscribe_configured(self) -> None:
        """Every symbol the strategies' configs name, one request per broker and mode.

        The gateway turns one request into one change per broker connection. Asked one
        symbol at a time, each waited on, a broker that takes one request a second (AllTick)
        started N symbols in N seconds, 2N in depth mode (trades and book are two requests)."""
        for broker in sorted({slot.broker for slot in self.slots.values()}):
            by_mode: dict[Mode, list[str]] = {}
            for symbol in self.table.symbols(broker):
                mode = self.table.strongest(broker, symbol)
                if mode is not None:
                    by_mode.setdefault(mode, []).append(symbol)
            for mode, symbols in sorted(by_mode.items()):
                reply = self.feeds[broker].client.subscribe(symbols, mode)
                for symbol in symbols:
                    askers = [slot.name for slot in self.slots.values() if slot.broker == broker
                              and symbol in self.config.strategies[slot.name].symbols]
                    self._take_result(broker, symbol, reply, askers)

    def _sync_subscription(self, broker: str, symbol: str, asker: str | None = None) -> None:
        """Tell the gateway the strongest mode this host wants for a symbol. A refusal goes
        to the strategy that asked (`asker`), else to every holder of the symbol."""
        feed = self.feeds[broker]
        mode = self.table.strongest(broker, symbol)
        if mode is None:
            feed.client.unsubscribe([symbol])
            self.refused.pop(symbol, None)
            return
        self._take_result(broker, symbol, feed.client.subscribe([symbol], mode),
                          [asker] if asker else None)

    def _take_result(self, broker: str, symbol: str, reply: dict[str, Any],
                     askers: list[str] | None) -> None:
        """Act on the gateway's answer for one symbol of a subscribe request; a refusal goes
        to `askers` (None: every holder of the symbol)."""
        result = reply.get("results", {}).get(symbol, {})
        if not result.get("ok", False):
            reason = result.get("reason") or reply.get("error", "refused")
            logger.error("subscribing {} on {} was refused: {}", symbol, broker, reason)
            self._refused(broker, symbol, str(reason), askers)
        else:
            self.refused.pop(symbol, None)
            if result.get("queued"):
                logger.warning("{} on {} is queued: {}", symbol, broker, result.get("reason"))

    def _refused(self, broker: str, symbol: str, reason: str, who: list[str] | None) -> None:
        """Remember a final refusal for status and tell the strategies (on the loop, after
        on_start: `on_subscription_refused`)."""
        self.refused[symbol] = reason
        holders = who if who is not None else list(self.table.targets(broker, symbol, "trade"))
        self._refusals += [(name, symbol, reason) for name in holders]

    def _tell_restarts(self) -> None:
        for broker in self.resumes.take_restarted():
            logger.warning("the bus of broker '{}' restarted (a new gateway): seq starts "
                           "again at 1", broker)
            for slot in list(self.slots.values()):
                if slot.broker == broker:
                    self._call(slot, "on_feed_restart", broker)

    def _tell_refusals(self) -> bool:
        refusals, self._refusals = self._refusals, []
        for name, symbol, reason in refusals:
            if name in self.slots:
                self._call(self.slots[name], "on_subscription_refused", symbol, reason)
        return bool(refusals)

    def _reconnect(self, broker: str, why: str) -> None:
        """The gateway went away (it restarts): connect to the new one, resubscribe what the
        strategies hold, and read its new bus (a new epoch: with resume: replay from its
        start, so nothing the new gateway published is skipped). Strategies keep running."""
        logger.warning("lost the gateway of broker '{}' ({}); reconnecting", broker, why)
        old = self.feeds[broker]
        self._attach(broker, (old.epoch, old.cursor))
        old.close()
        for symbol in self.table.symbols(broker):
            self._sync_subscription(broker, symbol)
        logger.info("reconnected to the gateway of broker '{}'", broker)

    def _gateway_message(self, broker: str, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "order_update":
            delivery = self.trading.on_update(message)
            if delivery is not None and delivery[0] in self.slots:
                self._call(self.slots[delivery[0]], "on_order_update", delivery[1])
        elif op == "orders":  # after hello: what survived an earlier incarnation
            self.trading.on_snapshot(message)
        elif op == "event" and message.get("kind") == "lost":
            symbol, reason = str(message.get("symbol")), str(message.get("reason"))
            logger.error("{} on {} was lost: {}", symbol, broker, reason)
            self._refused(broker, symbol, reason, None)
        elif message.get("op") == "health" and not message.get("live"):
            logger.warning("{} is not safe to trade: {}", broker, message.get("reason"))

    def safe_to_trade(self, strategy: str, symbol: str | None = None) -> tuple[bool, str]:
        """The strategy's gate: its broker's feed live, its symbol fresh (with
        `settings.stale_after_symbol`), and the strategy itself not stuck."""
        slot = self.slots[strategy]
        if slot.stuck:
            return False, f"strategy '{strategy}' is {slot.stuck.split(' of ')[0]}"
        feed = self.feeds[slot.broker]
        live, reason = feed.client.live
        ok, why = broker_gate(feed.broker, live, reason, feed.client.last_tick, self.clock())
        if not ok or symbol is None or self.stale_after_symbol is None:
            return ok, why
        tick = feed.last(symbol)
        return symbol_gate(symbol, tick.receive_ns if tick else None, time.time_ns(),
                           self.stale_after_symbol)

def run_host(host: Host, stop: threading.Event) -> int:
    """The host role's body: run one process group's strategies until `stop`."""
    host.stopping = stop  # a stop while it waits for a gateway at start is heard at once
    try:
        host.start()
    except GatewayError:
        if not stop.is_set():
            raise
        logger.info("stopped while waiting for a gateway")
        host.stop()
        return 0
    child.report_ready({"strategies": list(host.spec.strategies)})
    logger.info("running {}", ", ".join(host.spec.strategies))
    try:
        host.run(stop)
    finally:
        host.stop()
    return 0
