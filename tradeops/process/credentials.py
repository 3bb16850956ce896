"""The key pair a simulated broker and its gateway share."""

from __future__ import annotations

import json
import os

from tradeops.topology.model import Broker

#: Environment variable through which the supervisor hands generated sim key pairs to the sim
#: and gateway processes (never on a command line, where `ps` would show them).
SIM_CREDENTIALS = "TRADEOPS_SIM_CREDENTIALS"


def broker_credentials(broker_name: str, broker: Broker) -> tuple[str, str] | None:
    """The key pair a broker's connections use: its topology credentials (for AllTick its
    token and an empty secret), else (for a sim broker) the pair the supervisor generated for
    this run, else None (the sim accepts any key)."""
    creds = broker.credentials
    if creds is not None:
        if creds.token is not None:
            return creds.token.get_secret_value(), ""
        return (
            creds.key.get_secret_value() if creds.key else "",
            creds.secret.get_secret_value() if creds.secret else "",
        )
    pairs = json.loads(os.environ.get(SIM_CREDENTIALS, "{}"))
    pair = pairs.get(broker_name)
    return (str(pair[0]), str(pair[1])) if pair else None


def generate_sim_credentials(brokers: dict[str, Broker]) -> dict[str, str]:
    """A fresh key pair per sim broker without credentials, as environment for the children."""
    pairs = {
        name: [f"sim-{os.urandom(6).hex()}", os.urandom(16).hex()]
        for name, broker in brokers.items()
        if broker.adapter == "sim" and broker.credentials is None
    }
    return {SIM_CREDENTIALS: json.dumps(pairs)} if pairs else {}
