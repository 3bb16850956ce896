"""`python -m tradeops.gateway --topology FILE --name gateway-BROKER --run-dir DIR [--url URL]`."""

import sys

from tradeops.process.parent import check_parent

check_parent()  # before the heavy imports: die with the supervisor (process/parent.py)

from tradeops.gateway.main import run_gateway  # noqa: E402
from tradeops.process.entry import run_role  # noqa: E402

sys.exit(run_role("gateway", run_gateway))
