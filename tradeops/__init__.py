"""tradeops: run an algorithmic trading desk from one YAML topology.

The names exported here are the public API; ``tests/test_public_api.py`` pins them.
"""

from tradeops.protocol.tick import Tick
from tradeops.runtime.strategy import Strategy

__version__ = "0.1.0"

__all__ = ["Strategy", "Tick", "__version__"]
