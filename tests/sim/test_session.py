"""The dialect state machines and the exchange core, without sockets: bytes in, frames out."""

from __future__ import annotations

import json
from typing import Any

import msgpack

from tradeops.protocol.codec import Codec
from tradeops.sim.exchange import Exchange
from tradeops.sim.options import SimOptions
from tradeops.sim.session import DataSession, Session, TradeSession

NOW = 1_700_000_000.0


def exchange(**options: Any) -> Exchange:
    return Exchange(SimOptions(**options), NOW)


def said(session: Session) -> list[Any]:
    """Every message the session queued since last asked, decoded, in order."""
    out = []
    for chunk in session.take():
        for item in chunk:
            out.append(msgpack.unpackb(item) if session.codec is Codec.MSGPACK
                       else json.loads(item))
    return out


def authed(x: Exchange, path: str = "/v2/iex", key: str = "k", secret: str = "s",
           codec: Codec = Codec.JSON) -> DataSession:
    session = x.open_session(path, codec, NOW)
    assert isinstance(session, DataSession)
    session.receive(json.dumps({"action": "auth", "key": key, "secret": secret}), NOW)
    assert said(session)[-1] == {"T": "success", "msg": "authenticated"}
    return session


def error(code: int, msg: str) -> dict[str, Any]:
    return {"T": "error", "code": code, "msg": msg}


def test_greeting_comes_first_and_alone() -> None:
    x = exchange()
    session = x.open_session("/v2/iex", Codec.JSON, NOW)
    assert session.take() == [[b'{"T":"success","msg":"connected"}']]
    assert x.take_dirty() == [session]


def test_every_error_code_of_the_data_dialect() -> None:
    x = exchange(keys={"k": "s", "k2": "s2"}, symbols_per_connection=2, max_connections=1,
                 feeds=("iex", "crypto/us"), auth_timeout=1.0)
    s = x.open_session("/v2/iex", Codec.JSON, NOW)
    said(s)
    for raw in ("{not json", json.dumps([1, 2]), json.dumps({"action": "dance"})):
        s.receive(raw, NOW)
        assert said(s) == [error(400, "invalid syntax")]
    s.receive(json.dumps({"action": "subscribe", "trades": ["AAPL"]}), NOW)
    assert said(s) == [error(401, "not authenticated")]
    s.receive(json.dumps({"action": "auth", "key": "k", "secret": "wrong"}), NOW)
    assert said(s) == [error(402, "auth failed")] and s.closing is None  # may try again
    s.receive(json.dumps({"action": "auth", "key": "k", "secret": "s"}), NOW)
    assert said(s) == [{"T": "success", "msg": "authenticated"}]
    s.receive(json.dumps({"action": "auth", "key": "k", "secret": "s"}), NOW)
    assert said(s) == [error(403, "already authenticated")]
    s.receive(json.dumps({"action": "subscribe", "trades": ["A", "B", "C"]}), NOW)
    assert said(s) == [error(405, "symbol limit exceeded")] and s.subs == {}
    s.receive(json.dumps({"action": "subscribe", "orderbooks": ["AAPL"]}), NOW)
    assert said(s) == [error(410, "invalid subscribe action for this feed")]
    for bad in ({"trades": ["aapl"]}, {"trades": "AAPL"}, {"trades": ["BTC/USD"]},
                {"nonsense": ["AAPL"]}):
        s.receive(json.dumps({"action": "subscribe", **bad}), NOW)
        assert said(s) == [error(400, "invalid syntax")], bad
    second = x.open_session("/v2/iex", Codec.JSON, NOW)
    second.receive(json.dumps({"action": "auth", "key": "k", "secret": "s"}), NOW)
    assert said(second)[-1] == error(406, "connection limit exceeded")
    assert second.closing == (1008, "connection limit exceeded")
    sip = x.open_session("/v2/sip", Codec.JSON, NOW)
    sip.receive(json.dumps({"action": "auth", "key": "k2", "secret": "s2"}), NOW)
    assert said(sip)[-1] == error(409, "insufficient subscription") and sip.closing
    late = x.open_session("/v2/iex", Codec.JSON, NOW)
    x.advance(NOW + 0.5)
    assert said(late) == [{"T": "success", "msg": "connected"}]
    x.advance(NOW + 1.0)
    assert said(late) == [error(404, "auth timeout")]
    assert late.closing == (1008, "auth timeout")


def test_subscribe_is_an_idempotent_union_and_unsubscribe_removes_per_channel() -> None:
    x = exchange()
    s = authed(x)
    s.receive(json.dumps({"action": "subscribe", "trades": ["AAPL", "MSFT"],
                          "quotes": ["AAPL"]}), NOW)
    (ack,) = said(s)
    assert ack["T"] == "subscription" and ack["trades"] == ["AAPL", "MSFT"]
    assert ack["quotes"] == ["AAPL"] and ack["bars"] == []
    s.receive(json.dumps({"action": "subscribe", "trades": ["AAPL", "MSFT"],
                          "quotes": ["AAPL"]}), NOW)
    assert said(s) == [ack]
    s.receive(json.dumps({"action": "unsubscribe", "trades": ["MSFT"]}), NOW)
    assert said(s)[0]["trades"] == ["AAPL"]
    assert x.active_symbols == {"AAPL"}
    log = list(x.journal.subscriptions)
    assert [e["added"] for e in log] == [{"trades": ["AAPL", "MSFT"], "quotes": ["AAPL"]}, {},
                                         {}]
    assert log[2]["removed"] == {"trades": ["MSFT"]}


def test_symbol_limit_counts_distinct_symbols_across_channels() -> None:
    x = exchange(symbols_per_connection=2)
    s = authed(x)
    s.receive(json.dumps({"action": "subscribe", "trades": ["A", "B"], "quotes": ["B", "A"],
                          "bars": ["A"]}), NOW)
    assert said(s)[0]["T"] == "subscription"
    s.receive(json.dumps({"action": "subscribe", "quotes": ["C"]}), NOW)
    assert said(s) == [error(405, "symbol limit exceeded")]
    assert x.journal.subscriptions[-1]["result"] == "error"


def test_only_subscribed_symbols_and_channels_are_sent_and_batched() -> None:
    x = exchange(rate=20.0)  # 10 steps/s, each a quote and a trade
    aapl_trades = authed(x)
    msft_quotes = authed(x, codec=Codec.MSGPACK)
    aapl_trades.receive(json.dumps({"action": "subscribe", "trades": ["AAPL"]}), NOW)
    msft_quotes.receive(msgpack.packb({"action": "subscribe", "quotes": ["MSFT"]}), NOW)
    said(aapl_trades), said(msft_quotes)
    for i in range(1, 11):
        x.advance(NOW + i / 10)
    chunks = aapl_trades.take()
    assert len(chunks) == 1  # data queued between control messages goes out together
    messages = [json.loads(item) for item in chunks[0]]
    assert {(m["T"], m["S"]) for m in messages} == {("t", "AAPL")}
    assert len(messages) == 11
    quotes = said(msft_quotes)
    assert {(m["T"], m["S"]) for m in quotes} == {("q", "MSFT")}
    assert isinstance(quotes[0]["t"], msgpack.Timestamp)


def test_wildcard_receives_every_active_symbol_of_its_feed_kind() -> None:
    x = exchange(rate=10.0)
    star = authed(x)
    star.receive(json.dumps({"action": "subscribe", "trades": ["*"]}), NOW)
    crypto = authed(x, path="/v1beta3/crypto/us")
    crypto.receive(json.dumps({"action": "subscribe", "trades": ["BTC/USD"]}), NOW)
    other = authed(x)
    other.receive(json.dumps({"action": "subscribe", "quotes": ["AAPL"]}), NOW)
    said(star), said(crypto), said(other)
    x.advance(NOW + 0.5)
    assert {m["S"] for m in said(star)} == {"AAPL"}  # not BTC/USD: a stock wildcard
    assert {m["S"] for m in said(crypto)} == {"BTC/USD"}


def test_silence_keeps_connections_but_sends_no_data() -> None:
    x = exchange(rate=10.0)
    s = authed(x)
    s.receive(json.dumps({"action": "subscribe", "trades": ["AAPL"]}), NOW)
    said(s)
    x.faults.silence(1.0, NOW)
    x.advance(NOW + 0.9)
    assert said(s) == []
    x.advance(NOW + 1.5)
    assert said(s) and s.closing is None


def test_closing_a_session_releases_its_symbols_and_journals_it() -> None:
    x = exchange()
    s = authed(x)
    s.receive(json.dumps({"action": "subscribe", "quotes": ["AAPL"]}), NOW)
    x.session_closed(s, "client closed (1000)", NOW + 1)
    assert x.active_symbols == set() and x.sessions == {}
    (entry,) = x.journal.connections
    assert entry["reason"] == "client closed (1000)" and entry["auth_attempts"][0]["ok"]


def test_trade_stream_has_no_greeting_and_needs_auth_before_listen() -> None:
    x = exchange(keys={"k": "s"}, auth_timeout=1.0)
    s = x.open_session("/stream", Codec.JSON, NOW)
    assert isinstance(s, TradeSession) and s.take() == []
    s.receive(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}), NOW)
    assert said(s) == [{"stream": "authorization",
                        "data": {"status": "unauthorized", "action": "listen"}}]
    s.receive(json.dumps({"action": "authenticate",
                          "data": {"key_id": "k", "secret_key": "bad"}}), NOW)
    assert said(s)[0]["data"]["status"] == "unauthorized"
    s.receive(json.dumps({"action": "authenticate",
                          "data": {"key_id": "k", "secret_key": "s"}}), NOW)
    assert said(s) == [{"stream": "authorization",
                        "data": {"status": "authorized", "action": "authenticate"}}]
    s.receive(json.dumps({"action": "listen",
                          "data": {"streams": ["trade_updates", "nonsense"]}}), NOW)
    assert said(s) == [{"stream": "listening", "data": {"streams": ["trade_updates"]}}]
    s.receive("{oops", NOW)
    assert said(s) == [{"stream": "listening", "data": {"error": "invalid syntax"}}]
    quiet = x.open_session("/stream", Codec.JSON, NOW)
    x.advance(NOW + 1.0)
    assert quiet.closing == (1008, "auth timeout")
