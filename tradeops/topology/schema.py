"""The topology's JSON Schema, for editors (yaml-language-server) and for docs/."""

from __future__ import annotations

import json
from typing import Any

from tradeops.topology.model import DEFAULT_POOL, Topology

SCHEMA_ID = "https://tradeops.dev/schema/topology-v1.json"


def topology_schema() -> dict[str, Any]:
    schema = Topology.model_json_schema(by_alias=True, mode="validation")
    broker = schema["$defs"]["Broker"]
    # `pool` is filled from the adapter's defaults when left out, so it is not required.
    broker["required"] = [k for k in broker.get("required", []) if k != "pool"]
    defaults = ", ".join(
        f"{a}: {p['symbols_per_connection']}×{p['max_connections']}"
        for a, p in DEFAULT_POOL.items()
    )
    broker["properties"]["pool"]["description"] = f"connection pool limits; defaults {defaults}"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def schema_text() -> str:
    return json.dumps(topology_schema(), indent=2) + "\n"
