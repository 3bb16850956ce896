"""`python -m tradeops.proxy --topology FILE --name proxy --run-dir DIR`."""

import sys

from tradeops.supervisor.role import main

sys.exit(main(["proxy", *sys.argv[1:]]))
