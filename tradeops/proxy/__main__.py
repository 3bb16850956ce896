"""`python -m tradeops.proxy --topology FILE --name proxy --run-dir DIR`."""

import sys

from tradeops.process.parent import check_parent

check_parent()  # before the heavy imports: die with the supervisor (process/parent.py)

from tradeops.process.entry import run_role  # noqa: E402
from tradeops.proxy.main import run_proxy  # noqa: E402

sys.exit(run_role("proxy", run_proxy))
