"""`python -m tradeops.gateway --topology FILE --name gateway-BROKER --run-dir DIR [--url URL]`."""

import sys

from tradeops.gateway.main import run_gateway
from tradeops.process.entry import run_role

sys.exit(run_role("gateway", run_gateway))
