"""The topology model: what a desk is made of, as frozen pydantic models.

Every key here is part of the contract users and docs rely on; docs/topology.md describes each
one with its default, and a test keeps the two in step. Unknown keys are rejected. Checks that
span several parts of the file (references, capacity, pins) live in ``check.py``.
"""

from __future__ import annotations

import datetime
import os
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)

from tradeops.protocol.modes import BaseMode, Mode, make
from tradeops.topology.units import Duration, Rate, RateLimit, Size

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,47}$"
TOPOLOGY_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
CLASS_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$"

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Adapter = Literal["alpaca", "alltick", "openalgo", "sim"]
Feed = Literal["iex", "sip", "crypto", "test"]
Priority = Literal["critical", "high", "normal", "low"]
LogLevel = Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]

# One table for the validator and the host (which must not import this module).
from tradeops.runtime.config import PRIORITY_ORDER  # noqa: E402, F401

# What a broker gets when its file leaves `pool` or `orders.rate_limit` out. Alpaca's free plan
# allows one connection of 30 symbols and 200 requests a minute.
DEFAULT_POOL: dict[str, dict[str, int]] = {
    "alpaca": {"symbols_per_connection": 30, "max_connections": 1},
    "alltick": {"symbols_per_connection": 100, "max_connections": 1},
    # OpenAlgo's websocket proxy: 1000 symbols per connection, 3 connections per user.
    "openalgo": {"symbols_per_connection": 1000, "max_connections": 3},
    "sim": {"symbols_per_connection": 1000, "max_connections": 3},
}
DEFAULT_RATE_LIMIT: dict[str, str | None] = {
    # OpenAlgo's ORDER_RATE_LIMIT and API_RATE_LIMIT default to 10 per second.
    "alpaca": "200/min", "alltick": None, "openalgo": "10/s", "sim": None,
}
#: Adapters whose brokers take orders through tradeops; the others are market data only.
TRADING_ADAPTERS = frozenset({"alpaca", "openalgo", "sim"})
#: Adapters whose symbols are `EXCHANGE:CODE`.
QUALIFIED_ADAPTERS = frozenset({"alltick", "openalgo"})


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


LISTEN_PATTERN = r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$"


class Listener(Frozen):
    """A server of the desk's (the proxy, the metrics endpoint): `listen` HOST:PORT and an
    optional `token` (an empty one means none). Subclasses declare both with their own
    defaults and descriptions."""

    listen: str
    token: SecretStr | None

    @field_validator("token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


class ProxySettings(Listener):
    enabled: bool = Field(True, description="start the websocket proxy with the desk")
    listen: str = Field(
        "127.0.0.1:8765",
        description="HOST:PORT the proxy binds; loopback unless a token is set",
        pattern=LISTEN_PATTERN,
    )
    token: SecretStr | None = Field(None, description="clients must present this token")
    exchanges: dict[str, Name] = Field(
        default_factory=dict,
        description="OpenAlgo dialect: exchange code (NSE, NASDAQ, ...) → broker name",
    )
    feeds: dict[Feed, Name] = Field(
        default_factory=dict,
        description="Alpaca dialect: the broker behind /v2/iex, /v2/sip, /v2/test and "
        "/v1beta3/crypto/us (default: the first broker with that feed)",
    )
    slow_client: Literal["drop", "conflate"] = Field(
        "drop", description="a client whose queue is full is dropped, or gets latest values only"
    )
    queue: int = Field(10000, gt=0, description="ticks queued per client before it is slow")
    max_message: int = Field(
        65536, ge=1024, description="largest message a client may send, in bytes"
    )
    max_clients: int = Field(1000, gt=0, description="websocket clients served at once")
    max_symbols: int = Field(1000, gt=0, description="symbols one client may subscribe")
    tls_cert: str | None = Field(None, description="PEM certificate: serve wss:// (with tls_key)")
    tls_key: str | None = Field(None, description="PEM private key of tls_cert")
    node: Name | None = Field(
        None, description="settings.cluster: the node it runs on (default: the first node)"
    )


class MetricsSettings(Listener):
    """Prometheus metrics, served by the supervisor."""

    listen: str = Field(
        "127.0.0.1:9464",
        description="HOST:PORT the metrics endpoint binds; loopback unless a token is set",
        pattern=LISTEN_PATTERN,
    )
    token: SecretStr | None = Field(
        None, description="scrapers must send `Authorization: Bearer TOKEN`"
    )


AlertEvent = Literal[
    "feed_stale", "feed_recovered", "gate_closed", "gate_reopened", "process_crash",
    "crash_loop", "auto_cancel", "orders_rejected", "recorder_lost", "disk_full",
]


class AlertSink(Frozen):
    """Where alerts go: a webhook (JSON, or Slack, Discord or Telegram's format) or a
    command. Exactly one of `webhook` and `command`."""

    webhook: SecretStr | None = Field(
        None, description="URL to POST each alert to (a secret: it often holds a token)"
    )
    format: Literal["json", "slack", "discord", "telegram"] = Field(
        "json", description="the webhook's body: our JSON, or Slack's, Discord's, Telegram's"
    )
    chat_id: str | None = Field(None, description="telegram: the chat the bot posts to")
    command: list[str] | None = Field(
        None, min_length=1, description="program and arguments run per alert (JSON on stdin)"
    )
    events: list[AlertEvent] | None = Field(
        None, description="the events this sink wants (default: all)"
    )
    rate_limit: RateLimit = Field(
        default_factory=lambda: Rate(6, 60.0),
        description="most alerts of one event kind per window (default 6/min); more are "
        "counted and reported with the next one",
    )
    retries: int = Field(3, ge=0, le=10, description="attempts after a failed delivery")
    timeout: Duration = Field(5.0, description="one delivery attempt's time limit")

    @model_validator(mode="after")
    def _one_target(self) -> AlertSink:
        if (self.webhook is None) == (self.command is None):
            raise ValueError("give exactly one of `webhook` and `command`")
        if self.format == "telegram" and not self.chat_id:
            raise ValueError("format: telegram needs `chat_id` (the bot's chat)")
        if self.command is not None and self.format != "json":
            raise ValueError("`format` applies to webhooks; a command gets JSON on stdin")
        return self
TickKind = Literal["trade", "quote", "bar"]
TICK_KINDS: tuple[TickKind, ...] = ("trade", "quote", "bar")


class Record(Frozen):
    """The recorder: ticks from the bus to Parquet files (docs/data.md)."""

    dir: str = Field(
        min_length=1, description="where the recording goes; relative to the topology's folder"
    )
    brokers: list[Name] | None = Field(None, description="brokers to record (default: all)")
    symbols: list[str] | None = Field(
        None,
        description="record only these symbols, and subscribe them so they flow (default: "
        "every symbol the broker carries)",
    )
    kinds: list[TickKind] = Field(
        default_factory=lambda: list(TICK_KINDS), min_length=1,
        description="tick kinds to record",
    )
    flush: Duration = Field(2.0, description="rows reach the disk at least this often")
    roll: Duration = Field(900.0, description="a file is closed and a new one begun this often")
    log_level: LogLevel = "INFO"
    node: Name | None = Field(
        None, description="settings.cluster: the node it runs on (default: the first node)"
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


NATS_URL_PATTERN = r"^(nats|tls)://[A-Za-z0-9.:\[\]-]+:\d{1,5}$"


class ClusterNode(Frozen):
    """One machine (or one share of a machine) of a desk spread over several."""

    cores: int | None = Field(
        None, gt=0, description="cores the node has: pins placed on it must fit"
    )
    ring_capacity: int | None = Field(
        None, description="ticks of history each gateway stand-in's ring on this node keeps "
        "(a power of two, at least 64; default 262144)",
    )

    @field_validator("ring_capacity")
    @classmethod
    def _power_of_two(cls, value: int | None) -> int | None:
        if value is not None and (value < 64 or value & (value - 1)):
            raise ValueError(f"ring_capacity must be a power of two, at least 64 (e.g. 1024 or "
                             f"262144), not {value}")
        return value


#: JetStream's retention when `jetstream: on` names no bound.
JETSTREAM_MAX_AGE = 3600.0
JETSTREAM_MAX_BYTES = 1 << 30


class JetStream(Frozen):
    """A durable, bounded history of a broker's ticks on JetStream (docs/cluster.md)."""

    max_age: Duration | None = Field(
        JETSTREAM_MAX_AGE, description="ticks older than this leave the stream (null: no age "
        "bound)"
    )
    max_bytes: Size | None = Field(
        JETSTREAM_MAX_BYTES, description="the stream of each broker keeps at most this much, "
        "dropping its oldest ticks (null: no size bound)"
    )

    @model_validator(mode="after")
    def _bounded(self) -> JetStream:
        if self.max_age is None and self.max_bytes is None:
            raise ValueError("a JetStream history must be bounded: set max_age (e.g. 1h) "
                             "and/or max_bytes (e.g. 1GiB)")
        if self.max_bytes is not None and self.max_bytes < 1 << 20:
            raise ValueError(f"max_bytes of {self.max_bytes} bytes holds almost nothing; "
                             "give at least 1MiB")
        return self


def _absolute_file(value: str | None, key: str) -> str | None:
    """A file path of the cluster settings, `~` expanded; it must be absolute, since the
    desk's processes run from their own run directory on each node."""
    if value is None or value == "":
        return None
    path = os.path.expanduser(value)
    if not os.path.isabs(path):
        raise ValueError(f"{key} must be an absolute path (or start with ~), not {value!r}: "
                         "each node's processes run from their own directory")
    return path


class ClusterTls(Frozen):
    """TLS to the NATS servers (docs/cluster.md, "Security")."""

    ca: str | None = Field(
        None, description="CA certificate file the servers' certificates must chain to "
        "(default: the system's trusted CAs)"
    )
    cert: str | None = Field(
        None, description="this desk's client certificate file, for servers that verify "
        "clients (with `key`)"
    )
    key: str | None = Field(None, description="the client certificate's private key file")
    hostname: str | None = Field(
        None, description="the name the servers' certificates must carry (default: the host "
        "of each URL)"
    )

    @field_validator("ca", "cert", "key", mode="after")
    @classmethod
    def _absolute(cls, value: str | None, info: Any) -> str | None:
        return _absolute_file(value, f"settings.cluster.tls.{info.field_name}")

    @model_validator(mode="after")
    def _pair(self) -> ClusterTls:
        if (self.cert is None) != (self.key is None):
            raise ValueError("tls.cert and tls.key go together: give both (a client "
                             "certificate and its private key) or neither")
        return self


class Cluster(Frozen):
    """One desk over several nodes, joined by NATS (docs/cluster.md)."""

    nats: str | list[str] = Field(
        description="the NATS server(s): nats://HOST:PORT (tls://HOST:PORT for TLS)"
    )
    token: SecretStr | None = Field(None, description="the NATS server's auth token")
    credentials: str | None = Field(
        None, description="a NATS credentials file (.creds: a user JWT and its NKey seed), "
        "for servers run in operator mode; an absolute path"
    )
    nkey: str | None = Field(
        None, description="a file holding an NKey user seed (SU...), for servers that list "
        "their users by NKey; an absolute path"
    )
    tls: ClusterTls | None = Field(
        None, description="TLS to the servers: {ca, cert, key, hostname}; tls:// URLs use TLS "
        "even without it (the system's CAs)"
    )
    nodes: dict[Name, ClusterNode] = Field(
        min_length=1, description="the desk's nodes; what names no node runs on the first"
    )
    grace: Duration = Field(
        5.0, description="a remote node silent this long loses its subscriptions at a gateway"
    )
    jetstream: JetStream | None = Field(
        None, description="keep each broker's ticks on JetStream too, so a host restarted "
        "with resume: replay on a remote node catches up (on, off, or {max_age, max_bytes})"
    )

    @field_validator("jetstream", mode="before")
    @classmethod
    def _on_off(cls, value: Any) -> Any:
        if value is True or value == "on":
            return {}
        if value is False or value == "off":
            return None
        return value

    @field_validator("token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("credentials", "nkey", mode="after")
    @classmethod
    def _absolute(cls, value: str | None, info: Any) -> str | None:
        return _absolute_file(value, f"settings.cluster.{info.field_name}")

    @model_validator(mode="after")
    def _one_login(self) -> Cluster:
        given = [k for k in ("token", "credentials", "nkey") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"settings.cluster has {' and '.join(given)}: a NATS login is "
                             "one of token, credentials or nkey; keep the one your server uses")
        return self

    @property
    def servers(self) -> list[str]:
        return [self.nats] if isinstance(self.nats, str) else list(self.nats)

    @property
    def default_node(self) -> str:
        return next(iter(self.nodes))


class Settings(Frozen):
    run_dir: str = Field(".tradeops", description="control socket, logs and state")
    stale_after: Duration = Field(30.0, description="no tick for this long closes the safety gate")
    journal_fsync: Duration = Field(
        1.0, description="the order journal reaches the disk at least this often"
    )
    stale_after_symbol: Duration | None = Field(
        None, description="also close safe_to_trade(symbol) when that symbol has no tick this long"
    )
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    metrics: MetricsSettings | None = Field(
        None, description="serve Prometheus metrics (off when left out)"
    )
    alerts: list[AlertSink] = Field(
        default_factory=list, description="where the desk sends alerts (none by default)"
    )
    record: Record | None = Field(None, description="record ticks to Parquet (docs/data.md)")
    cluster: Cluster | None = Field(
        None, description="spread the desk over several nodes joined by NATS (docs/cluster.md)"
    )


class Credentials(Frozen):
    """A broker's login, in the broker's own words: Alpaca (and the sim) take a key id and a
    secret, AllTick one token. Which words a broker needs is checked by `tradeops validate`."""

    key: SecretStr | None = Field(None, description="alpaca, sim: API key id")
    secret: SecretStr | None = Field(None, description="alpaca, sim: API secret")
    token: SecretStr | None = Field(None, description="alltick: the API token")
    api_key: SecretStr | None = Field(None, description="openalgo: the OpenAlgo API key")


class Pool(Frozen):
    symbols_per_connection: int = Field(gt=0, description="broker's symbol cap per websocket")
    max_connections: int = Field(gt=0, description="broker's connection cap per login")

    @property
    def capacity(self) -> int:
        return self.symbols_per_connection * self.max_connections


class Orders(Frozen):
    live: bool = Field(False, description="alpaca: trade the live account, not the paper one")
    url: str | None = Field(
        None, pattern=r"^https?://\S+$", description="override the trading API's base URL"
    )
    rate_limit: RateLimit | None = Field(None, description="broker request budget, e.g. 200/min")
    on_limit: Literal["queue", "reject"] = Field(
        "queue", description="what happens to an order over the rate limit"
    )
    queue_size: int = Field(1000, gt=0, description="orders that may wait for the rate limit")
    cancel_timeout: Duration = Field(
        60.0, description="how long a stopping gateway waits for its cancels to be confirmed"
    )
    product: Literal["MIS", "CNC", "NRML"] | None = Field(
        None, description="openalgo: the product every order goes out with (default MIS: "
        "intraday; CNC: delivery; NRML: carry-forward F&O)"
    )
    poll_interval: Duration = Field(
        1.0, gt=0, description="openalgo: how often working orders' status is asked for "
        "(OpenAlgo pushes no order updates)"
    )


class AccountLimits(Frozen):
    """Limits over everything an account's strategies do, checked beside each strategy's own."""

    max_gross_notional: float | None = Field(
        None, gt=0, description="largest Σ |position + working orders| × price over symbols"
    )
    max_open_orders: int | None = Field(None, gt=0, description="working orders at once")
    max_orders_per_day: int | None = Field(
        None, gt=0, description="orders sent to the broker per UTC day"
    )
    max_daily_loss: float | None = Field(
        None, gt=0, description="realised loss from today's fills (UTC) before only "
        "position-reducing orders are accepted"
    )


class Account(Frozen):
    """One trading account at a broker: its own login, orders, fills, positions and limits."""

    credentials: Credentials | None = Field(
        None, description="the account's login (default: the broker's `credentials`)"
    )
    limits: AccountLimits = Field(default_factory=AccountLimits)


#: The account of a broker that declares none, and of a strategy that names none.
DEFAULT_ACCOUNT = "main"


class Market(Frozen):
    """The simulated market of an `adapter: sim` broker."""

    seed: int = Field(1, description="same seed, same ticks")
    rate: float = Field(5.0, gt=0, description="ticks per second per symbol")
    max_rate: float = Field(50000.0, gt=0, description="ticks per second over all symbols")
    spread_bps: float = Field(5.0, ge=0, description="quoted spread in basis points")
    hours: str = Field("24/7", description='"24/7" or e.g. "09:30-16:00 America/New_York"')
    bar_seconds: Duration = Field(
        60.0, description="length of the sim's bars (60s: Alpaca's minute bars; less in tests)"
    )
    replay: str | None = Field(
        None, description="a recording directory, or a CSV or Parquet file, to replay; "
        "relative to the topology's folder",
    )
    speed: float = Field(1.0, gt=0, description="replay speed multiplier")
    from_: datetime.datetime | None = Field(
        None, alias="from", description="replay a recording from this exchange time (ISO 8601)"
    )
    to: datetime.datetime | None = Field(
        None, description="replay a recording up to this exchange time (ISO 8601, excluded)"
    )
    symbols: list[str] | None = Field(None, description="replay only these symbols")


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WORKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")


class Hours(Frozen):
    """A market's weekly calendar, for brokers whose hours tradeops cannot ask."""

    timezone: str = Field(description="IANA time zone of the sessions, e.g. Asia/Hong_Kong")
    sessions: list[str] = Field(
        min_length=1, description='local trading sessions, e.g. ["09:30-12:00", "13:00-16:00"]'
    )
    days: list[Weekday] = Field(
        default_factory=lambda: list(WORKDAYS), description="days with sessions"
    )
    holidays: list[datetime.date] = Field(
        default_factory=list, description="dates without sessions (YYYY-MM-DD)"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; e.g. America/New_York") from None
        return value

    @field_validator("sessions")
    @classmethod
    def _sessions(cls, value: list[str]) -> list[str]:
        from tradeops.protocol.hours import parse_session

        for session in value:
            parse_session(session)  # ValueError says what is wrong
        return value


class Broker(Frozen):
    adapter: Adapter = Field(description="alpaca | alltick | openalgo | sim")
    feed: Feed | None = Field(None, description="alpaca/sim: iex | sip | crypto | test")
    url: str | None = Field(
        None, pattern=r"^wss?://\S+$", description="override the adapter's endpoint"
    )
    credentials: Credentials | None = Field(
        None, description="the login for market data (and orders, without `accounts`)"
    )
    accounts: dict[Name, Account] = Field(
        default_factory=dict,
        description="trading accounts, each with its own login; default: one account "
        "`main` with the broker's credentials",
    )
    pool: Pool
    orders: Orders = Field(default_factory=Orders)
    node: Name | None = Field(
        None, description="settings.cluster: the node it runs on (default: the first node)"
    )
    market: Market | None = Field(None, description="sim only: the simulated market")
    silence_after: Duration = Field(
        15.0, description="no data for this long on a subscribed connection: reconnect"
    )
    backfill: bool = Field(
        False, description="after a reconnect, fetch the outage's trades from the broker's history"
    )
    backfill_max: int = Field(10000, gt=0, description="most trades backfilled per outage")
    book_depth: int = Field(
        5, ge=1, le=20, description="levels a side of each order book on the bus (mode: depth)"
    )
    hours: Hours | Literal["24/7"] | None = Field(
        None,
        description="the market's sessions; default: alpaca and sim ask the broker's clock, "
        "alltick and crypto feeds trade around the clock",
    )

    @model_validator(mode="before")
    @classmethod
    def _adapter_defaults(cls, data: Any) -> Any:
        """Fill `pool` and `orders.rate_limit` from the adapter's defaults where left out."""
        if not isinstance(data, dict) or data.get("adapter") not in DEFAULT_POOL:
            return data
        adapter = data["adapter"]
        data = dict(data)
        pool = data.get("pool")
        if pool is None or isinstance(pool, dict):
            data["pool"] = {**DEFAULT_POOL[adapter], **(pool or {})}
        orders = data.get("orders")
        default_rate = DEFAULT_RATE_LIMIT[adapter]
        if default_rate and (orders is None or isinstance(orders, dict)):
            data["orders"] = {"rate_limit": default_rate, **(orders or {})}
        return data

    @property
    def trading_accounts(self) -> dict[str, Account]:
        """The accounts orders go to: those declared, else `main` on the broker's login."""
        return dict(self.accounts) or {DEFAULT_ACCOUNT: Account()}

    @property
    def effective_feed(self) -> Feed | None:
        if self.adapter in QUALIFIED_ADAPTERS:
            return None
        return self.feed or "iex"

    @property
    def takes_orders(self) -> bool:
        return self.adapter in TRADING_ADAPTERS

    @property
    def qualified_symbols(self) -> bool:
        """Symbols are `EXCHANGE:CODE` (AllTick, OpenAlgo)."""
        return self.adapter in QUALIFIED_ADAPTERS


class Limits(Frozen):
    max_order_qty: float | None = Field(None, gt=0, description="largest single order")
    max_position: float | None = Field(None, gt=0, description="largest absolute position")
    max_notional: float | None = Field(None, gt=0, description="largest qty × price of an order")
    symbols: list[str] | None = Field(
        None, description="symbols this strategy may trade (default: its `symbols`)"
    )


class Strategy(Frozen):
    class_: str = Field(
        alias="class", pattern=CLASS_PATTERN, description="import path, module:Class"
    )
    broker: Name = Field(description="a key of `brokers`")
    symbols: list[str] = Field(description="subscribed before on_start")
    mode: BaseMode = Field("trade", description="trade | quote | depth")
    bars: bool = Field(False, description="also deliver bars, to on_bar (alpaca and sim brokers)")
    extras: list[Literal["daily_bars", "updated_bars", "statuses", "lulds"]] = Field(
        default_factory=list,
        description="more market events (alpaca and sim stock feeds): daily_bars and "
        "updated_bars to on_bar, statuses (halts, resumes) to on_status, lulds (limit up / "
        "limit down bands) to on_luld",
    )
    priority: Priority = Field("normal", description="tick dispatch order inside a process")
    timer: Duration | None = Field(None, description="on_timer period")
    account: str = Field(
        DEFAULT_ACCOUNT, min_length=1, description="a key of its broker's `accounts`"
    )
    limits: Limits = Field(default_factory=Limits)
    params: dict[str, Any] = Field(default_factory=dict, description="handed to the strategy")

    @property
    def subscription(self) -> Mode:
        """The mode its symbols are subscribed at: `mode`, with bars when `bars` is set and
        its `extras`."""
        return make(self.mode, self.bars, self.extras)


class Restart(Frozen):
    policy: Literal["on-failure", "always", "never"] = "on-failure"
    max_restarts: int = Field(
        5, ge=0, description="more restarts than this within `window` is fatal"
    )
    window: Duration = Field(60.0, description="crash-loop window; a longer run resets backoff")
    backoff: Duration = Field(1.0, description="first restart delay, doubled each time")
    max_backoff: Duration = Field(30.0, description="cap on the restart delay")


class Process(Frozen):
    strategies: list[Name] = Field(min_length=1, description="strategies run in this process")
    cpu: list[Annotated[int, Field(ge=0)]] | None = Field(None, description="cores to pin to")
    busy_poll: bool = Field(False, description="spin instead of sleeping when idle")
    auto_cancel: Literal["none", "strategy", "account"] = Field(
        "strategy", description="orders cancelled when the process disconnects"
    )
    log_level: LogLevel = "INFO"
    restart: Restart = Field(default_factory=Restart)
    resume: Literal["latest", "replay"] = Field(
        "latest", description="after a restart: newest tick, or replay what was missed"
    )
    callback_timeout: Duration = Field(
        5.0, description="a strategy callback running longer than this is reported stuck"
    )
    on_stuck: Literal["report", "restart"] = Field(
        "report", description="a stuck callback: report it, or also restart the process"
    )
    node: Name | None = Field(
        None, description="settings.cluster: the node it runs on (default: the first node)"
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class Topology(Frozen):
    """A whole desk: brokers, strategies and how strategies are grouped into processes."""

    version: Literal[1] = Field(description="format version; 1")
    name: str = Field(
        pattern=TOPOLOGY_NAME_PATTERN,
        description="names the run directory, sockets and shared memory",
    )
    settings: Settings = Field(default_factory=Settings)
    brokers: dict[Name, Broker] = Field(min_length=1)
    strategies: dict[Name, Strategy] = Field(default_factory=dict)
    processes: dict[Name, Process] = Field(default_factory=dict)

    @field_validator("strategies", "processes", mode="before")
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        """`processes:` with nothing under it (YAML null) means none, not an error."""
        return {} if value is None else value
