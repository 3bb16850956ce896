"""`python -m tradeops.runtime --topology FILE --name GROUP --run-dir DIR`: a strategy host."""

import sys

from tradeops.runtime.launch import main

sys.exit(main())
