"""`python -m tradeops.runtime --topology FILE --name GROUP --run-dir DIR`: a strategy host."""

import sys

from tradeops.process.entry import run_role
from tradeops.runtime.host import run_host

sys.exit(run_role("host", run_host))
