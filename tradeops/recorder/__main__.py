"""`python -m tradeops.recorder --topology FILE --name recorder --run-dir DIR`."""

import sys

from tradeops.process.entry import run_role
from tradeops.recorder.main import run_recorder

sys.exit(run_role("recorder", run_recorder))
