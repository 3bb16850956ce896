"""One desk over several nodes joined by NATS (docs/cluster.md).

`subjects.py` and `wire.py` are pure (names and bytes); `link.py` connects to NATS (nats-py,
imported only here, so a single-machine desk never needs it); `bridge.py` runs beside a
gateway and `remote.py` in a gateway's place on another node.
"""
