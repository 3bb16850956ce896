"""`python -m tradeops.proxy --topology FILE --name proxy --run-dir DIR`."""

import sys

from tradeops.process.entry import run_role
from tradeops.proxy.main import run_proxy

sys.exit(run_role("proxy", run_proxy))
