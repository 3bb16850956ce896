"""The websocket proxy: outside programs share the desk's feed in the dialect they speak.

See docs/proxy.md. `registry.py` (pure) counts interest; `protocol/native.py`,
`protocol/alpaca_server.py` and `protocol/openalgo.py` are the dialects (sans-I/O);
`link.py`, `connection.py`, `server.py` and `main.py` do the I/O.
"""
