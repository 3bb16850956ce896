"""The key pairs a broker's connections use: market data on the broker's login, orders on
each account's."""

from __future__ import annotations

import json
import os

from tradeops.topology.model import Broker, Credentials

#: Environment variable through which the supervisor hands generated sim key pairs to the sim
#: and gateway processes (never on a command line, where `ps` would show them).
SIM_CREDENTIALS = "TRADEOPS_SIM_CREDENTIALS"


def _pair(creds: Credentials) -> tuple[str, str]:
    if creds.token is not None:  # AllTick: one token
        return creds.token.get_secret_value(), ""
    if creds.api_key is not None:  # OpenAlgo: one API key
        return creds.api_key.get_secret_value(), ""
    return (
        creds.key.get_secret_value() if creds.key else "",
        creds.secret.get_secret_value() if creds.secret else "",
    )


def _generated(label: str) -> tuple[str, str] | None:
    pairs = json.loads(os.environ.get(SIM_CREDENTIALS, "{}"))
    pair = pairs.get(label)
    return (str(pair[0]), str(pair[1])) if pair else None


def broker_credentials(broker_name: str, broker: Broker) -> tuple[str, str] | None:
    """The key pair of a broker's market data: its topology credentials (for AllTick its
    token and an empty secret), else the first account's, else (for a sim broker) the pair
    the supervisor generated for this run, else None (the sim accepts any key)."""
    if broker.credentials is not None:
        return _pair(broker.credentials)
    for account in broker.accounts.values():
        if account.credentials is not None:
            return _pair(account.credentials)
    return _generated(broker_name)


def account_credentials(broker_name: str, broker: Broker, account: str) -> tuple[str, str] | None:
    """The key pair an account's orders go out with: its own credentials, else the broker's,
    else (sim) a pair generated for that account (the broker's when it declares none)."""
    declared = broker.accounts.get(account)
    if declared is not None and declared.credentials is not None:
        return _pair(declared.credentials)
    if broker.credentials is not None:
        return _pair(broker.credentials)
    if declared is not None:
        return _generated(f"{broker_name}.{account}")
    return _generated(broker_name)


def every_login(broker_name: str, broker: Broker) -> dict[str, str]:
    """Every key → secret a broker's desk uses (what its simulated exchange accepts)."""
    pairs = [broker_credentials(broker_name, broker)]
    pairs += [account_credentials(broker_name, broker, a) for a in broker.trading_accounts]
    return {p[0]: p[1] for p in pairs if p is not None}


def generate_sim_credentials(brokers: dict[str, Broker]) -> dict[str, str]:
    """A fresh key pair per sim broker without credentials (and per declared account without
    its own), as environment for the children."""
    labels = [name for name, broker in brokers.items()
              if broker.adapter == "sim" and broker.credentials is None]
    labels += [f"{name}.{account}" for name, broker in brokers.items()
               if broker.adapter == "sim" and broker.credentials is None
               for account, spec in broker.accounts.items() if spec.credentials is None]
    pairs = {label: [f"sim-{os.urandom(6).hex()}", os.urandom(16).hex()] for label in labels}
    return {SIM_CREDENTIALS: json.dumps(pairs)} if pairs else {}
