"""`python -m tradeops.recorder --topology FILE --name recorder --run-dir DIR`."""

import sys

from tradeops.process.parent import check_parent

check_parent()  # before the heavy imports: die with the supervisor (process/parent.py)

from tradeops.process.entry import run_role  # noqa: E402
from tradeops.recorder.main import run_recorder  # noqa: E402

sys.exit(run_role("recorder", run_recorder))
