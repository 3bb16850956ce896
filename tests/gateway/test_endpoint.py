"""Where a gateway connects for market data."""

from __future__ import annotations

from tradeops.gateway.main import endpoint
from tradeops.topology.model import Broker


def test_an_alpaca_broker_streams_from_alpaca_s_websocket_not_its_rest_host() -> None:
    creds = {"key": "k", "secret": "s"}
    stocks = Broker.model_validate({"adapter": "alpaca", "credentials": creds})
    crypto = Broker.model_validate({"adapter": "alpaca", "feed": "crypto", "credentials": creds})
    assert endpoint(stocks, None) == "wss://stream.data.alpaca.markets/v2/iex"
    assert endpoint(crypto, None) == "wss://stream.data.alpaca.markets/v1beta3/crypto/us"
