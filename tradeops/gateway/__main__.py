"""`python -m tradeops.gateway --topology FILE --name gateway-BROKER --run-dir DIR [--url URL]`."""

import sys

from tradeops.supervisor.role import main

sys.exit(main(["gateway", *sys.argv[1:]]))
