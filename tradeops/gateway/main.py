"""A gateway process: the broker's bus (ring + latest-value table), its socket, its loop.

Started by the supervisor as `python -m tradeops.gateway --topology FILE --name gateway-BROKER
--run-dir DIR [--url URL]`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from loguru import logger

from tradeops.bus.books import BookTable
from tradeops.bus.ring import TickRing
from tradeops.bus.shm import BusSpaceError
from tradeops.bus.space import broker_bus, create_bus
from tradeops.bus.table import TableReader
from tradeops.gateway.backfill import Backfiller, Outages
from tradeops.gateway.journal import Journal, journal_path
from tradeops.gateway.openalgo_orders import OpenAlgoTransport, Poller
from tradeops.gateway.orders import OrderDesk
from tradeops.gateway.pool import Pool
from tradeops.gateway.ratelimit import SlidingWindow
from tradeops.gateway.router import OrderRouter, order_config
from tradeops.gateway.server import GatewayServer
from tradeops.gateway.session import BrokerClock, ClockReading, MarketSession
from tradeops.gateway.trading import Job, OrderSender, RestTransport, TradeStream, Transport
from tradeops.gateway.upstream import UpstreamConfig
from tradeops.process import child
from tradeops.process.credentials import account_credentials, broker_credentials
from tradeops.process.entry import RoleContext
from tradeops.process.paths import RunPaths
from tradeops.protocol.alltick import DEFAULT_URL as ALLTICK_URL
from tradeops.protocol.alltick import AllTickSession
from tradeops.protocol.alpaca import MarketDataSession
from tradeops.protocol.book import MAX_LEVELS
from tradeops.protocol.feed import BookUpdate, FeedSession, MarketData
from tradeops.protocol.hours import WEEKDAYS, WeeklyHours, parse_session
from tradeops.protocol.openalgo_feed import DEFAULT_URL as OPENALGO_URL
from tradeops.protocol.openalgo_feed import OpenAlgoFeed
from tradeops.protocol.openalgo_trading import DEFAULT_URL as OPENALGO_REST
from tradeops.protocol.openalgo_trading import TIFS as OPENALGO_TIFS
from tradeops.protocol.openalgo_trading import OpenAlgoOrders
from tradeops.protocol.tick import DEPTH, FLAG_BACKFILL, RecordRow, decode_symbol, encode_symbol
from tradeops.topology.model import Broker, Topology

ALPACA_STREAM = "wss://stream.data.alpaca.markets"  # live market data (websocket)
ALPACA_PAPER = "https://paper-api.alpaca.markets"
ALPACA_LIVE = "https://api.alpaca.markets"
ALPACA_DATA = "https://data.alpaca.markets"  # historical market data (backfill)
STATE_EVERY = 1.0


def feed_path(broker: Broker) -> str:
    """The Alpaca-dialect path of a broker's feed: /v2/iex, /v2/sip, /v2/test, crypto."""
    feed = broker.effective_feed
    return "/v1beta3/crypto/us" if feed == "crypto" else f"/v2/{feed}"


def endpoint(broker: Broker, sim_url: str | None) -> str:
    if broker.url:
        return broker.url
    if broker.adapter == "alltick":
        return ALLTICK_URL
    if broker.adapter == "openalgo":
        return OPENALGO_URL
    base = sim_url if broker.adapter == "sim" else ALPACA_STREAM
    if base is None:
        raise ValueError("a sim broker's gateway needs --url (the supervisor passes it)")
    return base.rstrip("/") + feed_path(broker)


def session_factory(name: str, broker: Broker) -> Callable[[], FeedSession]:
    """A fresh dialect session per connection attempt, with the broker's credentials."""
    creds = broker_credentials(name, broker)
    key, secret = creds if creds else ("tradeops", "tradeops")
    if broker.adapter == "alltick":
        return lambda: AllTickSession(key)
    if broker.adapter == "openalgo":
        return lambda: OpenAlgoFeed(key)
    depth = broker.book_depth
    return lambda: MarketDataSession(key, secret, "msgpack", depth)


class BusSink:
    """Upstream threads' ticks into the ring, books into the book table (one writer: the
    server serialises calls)."""

    def __init__(self, ring: TickRing, books: BookTable | None = None,
                 depth: int = MAX_LEVELS) -> None:
        self.ring = ring
        self.books = books
        self.depth = depth  # the broker's book_depth: levels a side written

    def write(self, connection: int, ticks: list[RecordRow]) -> None:
        self.ring.extend_records(ticks)

    def write_books(self, books: Sequence[BookUpdate]) -> None:
        """Each book into the book table, then a DEPTH record with its best levels into the
        ring: the change takes its place among the ticks and wakes the readers, who read the
        whole book from the table (docs/bus.md)."""
        table = self.books
        if table is None:
            return
        rows: list[RecordRow] = []
        depth = self.depth
        for book in books:
            raw = encode_symbol(book.symbol)
            table.write(raw, book.exchange_ns, book.receive_ns, book.bids[:depth],
                        book.asks[:depth])
            bid, bid_size = book.bids[0] if book.bids else (0.0, 0.0)
            ask, ask_size = book.asks[0] if book.asks else (0.0, 0.0)
            rows.append((DEPTH, 0, 0, book.exchange_ns, book.receive_ns, raw,
                         bid, bid_size, ask, ask_size))  # fmt: skip
        self.ring.extend_records(rows)

    def write_backfill(self, ticks: list[MarketData]) -> None:
        for tick in ticks:
            self.ring.append_late(*tick, 0, FLAG_BACKFILL)  # receive_ns now, flags
        self.ring.publish()


def run_gateway(ctx: RoleContext) -> int:
    """The gateway role's body: serve one broker until `ctx.stop`."""
    topology, broker_name, paths = ctx.topology, ctx.spec.broker, ctx.paths
    sim_url, stop = ctx.url, ctx.stop
    broker = topology.brokers[broker_name]
    url = endpoint(broker, sim_url)
    try:
        table, books, ring = create_bus(paths.bus, broker_name)
    except BusSpaceError as exc:
        # No room in /dev/shm: restarting cannot mend that, so say it once and stay down.
        logger.error("gateway for broker '{}' cannot create its bus: {}", broker_name, exc)
        child.report_fatal(str(exc))
        return child.FATAL_EXIT
    unreserved = [seg.name for seg in (table, books, ring) if not seg.reserved]
    if unreserved:
        logger.warning(
            "/dev/shm has no room to reserve {} now: the previous gateway's bus still holds "
            "it until its readers move to this one; allocated as written meanwhile. Give "
            "/dev/shm room for one more broker's bus ({:,.1f} MiB) so a restart can reserve "
            "its own", ", ".join(unreserved), sum(broker_bus().values()) / 2**20)
    factory = session_factory(broker_name, broker)
    config = UpstreamConfig(url=url, session=factory, silence_after=broker.silence_after)
    pool = Pool(broker_name, broker.pool.symbols_per_connection, broker.pool.max_connections)
    server = GatewayServer(
        broker_name,
        pool,
        lambda conn: config,
        BusSink(ring, books, broker.book_depth),
        str(paths.gateway_socket(broker_name)),
        stale_after=topology.settings.stale_after,
        bus_info={"ring": ring.name, "table": table.name, "books": books.name},
    )
    last_state = 0.0
    untabled = 0  # symbols the full latest-value table could not take, as last reported

    def publish_state() -> None:
        nonlocal last_state, untabled
        now = time.monotonic()
        if now - last_state >= STATE_EVERY:
            last_state = now
            if len(ring.untabled) != untabled:  # the latest-value table is full
                untabled = len(ring.untabled)
                example = decode_symbol(next(iter(ring.untabled)))
                child.report_problem("table", (
                    f"the latest-value table holds {table.max_symbols} symbols and is full: "
                    f"{untabled} more (such as {example!r}) have no last trade or quote "
                    "there; their ticks flow. Subscribe fewer symbols on this broker"))
            router.journal.flush()  # lines that waited for disk space go out first
            child.write_state(
                paths.run_dir,
                f"gateway-{broker_name}",
                {**server.health(), "readers": len(ring.readers()), "cursor": ring.cursor},
            )

    if broker.backfill:
        server.outages, server.backfiller = Outages(), backfiller(broker_name, broker, sim_url,
                                                                  server)
        server.backfiller.start()
    orders = build_orders(topology, broker_name, paths, sim_url, server)
    router = orders.router
    server.router = router
    server.session, broker_clock = market_session(broker_name, broker, sim_url, server)
    try:
        server.bind()
        logger.info(
            "gateway for broker '{}' ({}) serving {}; upstream {}",
            broker_name,
            broker.adapter,
            server.socket_path,
            url.split("?")[0],
        )
        child.report_ready({"socket": server.socket_path, "ring": ring.name})
        server.serve(stop, on_tick=publish_state)
    finally:
        # What the departing hosts' auto_cancel asked for is seen through.
        router.abandon(orders.withdraw_submits())
        settle_cancels(server, router, orders, broker.orders.cancel_timeout, publish_state)
        orders.stop()
        server.close()
        if server.backfiller is not None:
            server.backfiller.stop()
        if broker_clock is not None:
            broker_clock.stop()
        router.journal.close()
        ring.close()
        table.close()
        books.close()
    return 0


def settle_cancels(server: GatewayServer, router: OrderRouter, orders: OrderSide,
                   timeout: float, on_tick: Callable[[], None]) -> None:
    """Wait, up to `timeout`, until every cancel the auto-cancel policies asked for is
    confirmed by the broker; report what is still working (by order) to the supervisor,
    which `tradeops down` prints."""

    def done() -> bool:
        return not router.cancelling() and not orders.pending()

    if done():
        return
    logger.info("waiting up to {:g}s for {} cancel(s) to be confirmed by the broker",
                timeout, len(router.cancelling()))
    if server.settle(done, timeout, on_tick):
        logger.info("every cancel was confirmed")
        return
    left = [
        {"broker": router.desk.broker, "strategy": o.strategy, "order_id": o.local_id,
         "client_order_id": o.client_order_id, "symbol": o.symbol, "side": o.side,
         "qty": o.qty, "status": o.status}
        for o in router.cancelling()
    ]
    for order in left:
        logger.error("still working at the broker after {:g}s: {} {} {} {:g} ({})", timeout,
                     order["strategy"], order["side"], order["symbol"], order["qty"],
                     order["client_order_id"])
    router.journal.write("shutdown_left_working", orders=[o["client_order_id"] for o in left])
    child.report_detail(left_working=left)


def market_session(
    broker_name: str, broker: Broker, sim_url: str | None, server: GatewayServer
) -> tuple[MarketSession | None, BrokerClock | None]:
    """When the broker's market is in session (gateway/session.py); None: always."""
    hours = broker.hours
    if broker.effective_feed == "crypto" or hours == "24/7":
        return None, None
    if hours is not None:
        return MarketSession(WeeklyHours(
            zone=hours.timezone,
            sessions=tuple(parse_session(s) for s in hours.sessions),
            days=frozenset(WEEKDAYS.index(d) for d in hours.days),
            holidays=frozenset(hours.holidays),
        )), None
    if not broker.takes_orders or broker.adapter == "openalgo":
        return None, None  # no clock to ask: judged by its data alone
    session = MarketSession()
    key, secret = broker_credentials(broker_name, broker) or ("tradeops", "tradeops")
    rest, _ = trading_urls(broker, sim_url)

    def on_reading(reading: ClockReading) -> None:
        server.post(lambda: setattr(session, "reading", reading))

    clock = BrokerClock(RestTransport(rest, key, secret), on_reading, time.time)
    clock.start()
    return session, clock


def backfiller(name: str, broker: Broker, sim_url: str | None,
               server: GatewayServer) -> Backfiller:
    """What fetches an outage's trades: the sim's own history, or Alpaca's market-data API,
    paced by the broker's request budget."""
    base = trading_urls(broker, sim_url)[0] if broker.adapter == "sim" else ALPACA_DATA
    key, secret = broker_credentials(name, broker) or ("tradeops", "-")  # a sim takes any
    headers = {"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": secret}
    rate = broker.orders.rate_limit
    return Backfiller(base, headers, server.write_backfill, max_trades=broker.backfill_max,
                      min_interval=rate.seconds / rate.requests if rate else 0.0,
                      feed=broker.effective_feed if broker.adapter == "alpaca" else None)


def trading_urls(broker: Broker, sim_url: str | None) -> tuple[str, str]:
    """The REST base and the trade-updates stream of a broker that takes orders."""
    if broker.orders.url:
        rest = broker.orders.url.rstrip("/")
    elif broker.adapter == "openalgo":
        rest = OPENALGO_REST
    elif broker.adapter == "sim":
        if sim_url is None:
            raise ValueError("a sim broker's gateway needs --url (the supervisor passes it)")
        rest = "http" + sim_url.rstrip("/").removeprefix("ws")
    else:
        rest = ALPACA_LIVE if broker.orders.live else ALPACA_PAPER
    return rest, "ws" + rest.removeprefix("http") + "/stream"


@dataclass
class OrderSide:
    """The order side of a gateway: the router, and per account its sender (REST within
    the account's rate limit) and its trade-updates stream."""

    router: OrderRouter
    senders: dict[str, OrderSender]
    streams: list[TradeStream]
    poller: Poller | None = None  # a broker without a trade-updates stream (OpenAlgo)

    def pending(self) -> int:
        return sum(s.pending() for s in self.senders.values())

    def withdraw_submits(self) -> list[Job]:
        return [job for s in self.senders.values() for job in s.withdraw_submits()]

    def stop(self) -> None:
        if self.poller is not None:
            self.poller.stop()
        for sender in self.senders.values():
            sender.stop()
        for stream in self.streams:
            stream.stop()


def build_orders(
    topology: Topology,
    broker_name: str,
    paths: RunPaths,
    sim_url: str | None,
    server: GatewayServer,
) -> OrderSide:
    """The order side of a gateway: risk book, and per account a rate-limited sender and a
    trade-updates stream on that account's login."""
    broker = topology.brokers[broker_name]
    strategies, group_map, limits = order_config(topology, broker_name)
    desk = OrderDesk(broker_name, strategies)
    journal = Journal(
        journal_path(paths.run_dir), on_problem=lambda r: child.report_problem("journal", r),
        fsync_every=topology.settings.journal_fsync,
    )
    prices = _price_lookup(paths.bus, broker_name)
    if not broker.takes_orders:
        reason = (f"broker '{broker_name}' ({broker.adapter}) is a market-data feed here; "
                  "it takes no orders")
        router = OrderRouter(desk, {}, journal, group_map, prices, no_orders_reason=reason)
        return OrderSide(router, {}, [])
    rest, stream_url = trading_urls(broker, sim_url)
    rate = broker.orders.rate_limit
    openalgo = broker.adapter == "openalgo"
    senders: dict[str, OrderSender] = {}
    logins: dict[str, tuple[str, str]] = {}
    translations: list[OpenAlgoOrders] = []
    for account in broker.trading_accounts:
        key, secret = account_credentials(broker_name, broker, account) or ("tradeops",
                                                                              "tradeops")
        logins[account] = (key, secret)
        window = SlidingWindow(rate.requests, rate.seconds) if rate else None
        transport: Transport
        if openalgo:  # the API key goes in each request's body
            translations.append(OpenAlgoOrders(key, broker.orders.product or "MIS"))
            transport = OpenAlgoTransport(rest, translations[-1])
        else:
            transport = RestTransport(rest, key, secret)
        senders[account] = OrderSender(transport, window, broker.orders.queue_size)
    router = OrderRouter(
        desk, senders, journal, group_map, prices, on_limit=broker.orders.on_limit,
        limits=limits,
        market_tif="gtc" if broker.effective_feed == "crypto" else "day",
        tifs=OPENALGO_TIFS if openalgo else None,
        tif_why=" (OpenAlgo orders are DAY orders)" if openalgo else "",
        polled=openalgo,
    )
    if openalgo:
        for translation in translations:  # orders placed before a restart stay findable
            for cid, order_id in router.broker_ids.items():
                translation.know(cid, order_id)
        for sender in senders.values():
            sender.start(on_result=lambda r: server.post_replies(lambda: router.on_result(r)))
        poller = Poller(broker.orders.poll_interval,
                        lambda: server.post(router.poll))
        poller.start()
        router.start()
        return OrderSide(router, senders, [], poller)
    streams = [
        TradeStream(
            stream_url,
            key,
            secret,
            on_update=lambda u: server.post_replies(lambda: router.on_trade_update(u)),
            on_state=lambda state, cause: server.post(router.resync if state == "live"
                                                      else _noop),
            name=f"trade-updates-{account}",
        )
        for account, (key, secret) in logins.items()
    ]
    for sender in senders.values():
        sender.start(on_result=lambda r: server.post_replies(lambda: router.on_result(r)))
    for stream in streams:
        stream.start()
    router.start()  # orders that outlived a previous gateway, then positions, per account
    return OrderSide(router, senders, streams)


def _noop() -> None:
    pass


def _price_lookup(bus: str, broker: str) -> Callable[[str], float | None]:
    """The latest price of a symbol from the broker's latest-value table (for max_notional)."""
    reader: list[TableReader] = []

    def price(symbol: str) -> float | None:
        if not reader:
            try:
                reader.append(TableReader(bus, broker))
            except FileNotFoundError:
                return None
        trade = reader[0].last_trade(symbol)
        if trade is not None and trade.price:
            return float(trade.price)
        quote = reader[0].last_quote(symbol)
        if quote is not None and quote.bid and quote.ask:
            return float(quote.bid + quote.ask) / 2
        return None

    return price
