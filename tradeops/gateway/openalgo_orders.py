"""Orders through an OpenAlgo server (I/O): the router's requests carried out over OpenAlgo's
REST API, and the polling that stands in for a trade-updates stream.

- `OpenAlgoTransport` is the sender's transport for an OpenAlgo account: each request the
  router makes (in Alpaca's vocabulary) becomes the OpenAlgo call that does it
  (`protocol/openalgo_trading.py`), POSTed with the API key in the body; the answer comes
  back in the router's vocabulary. It goes through the sender like any request, so it counts
  against the broker's rate limit, waits its turn in the fair queue, and a 429 pauses it.
- `Poller`: OpenAlgo pushes no order updates, so every `orders.poll_interval` the gateway asks
  `orderstatus` about each working order (`OrderRouter.poll`); a round starts only when the
  account's sender has nothing waiting, so polling never delays an order and never piles up.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from tradeops.gateway.trading import RestTransport
from tradeops.protocol import alpaca_trading as at
from tradeops.protocol.openalgo_trading import Answer, OpenAlgoOrders


class OpenAlgoTransport:
    """One account's OpenAlgo REST calls, through one keep-alive connection."""

    def __init__(self, base_url: str, orders: OpenAlgoOrders, timeout: float = 10.0) -> None:
        self.orders = orders
        self._http = RestTransport(base_url, "", "", timeout, auth_headers=False)

    def call(self, request: at.HttpRequest) -> tuple[int, dict[str, str], bytes]:
        plan = self.orders.call_for(request)
        if isinstance(plan, Answer):
            return plan.status, {}, plan.encoded()
        status, headers, data = self._http.call(at.HttpRequest("POST", plan.path, plan.body))
        if status == 429:  # the sender pauses and sends it again
            return status, headers, data
        body: Any = None
        if data:
            with suppress(ValueError):
                body = json.loads(data)
        answer = self.orders.answer(request, plan, status, body)
        return answer.status, headers, answer.encoded()

    def close(self) -> None:
        self._http.close()


class Poller:
    """A thread that asks the gateway's loop to poll its working orders every `interval`."""

    def __init__(self, interval: float, post: Callable[[], None]) -> None:
        self.interval = interval
        self._post = post
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="order-poll", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._post()
