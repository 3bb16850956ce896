"""`python -m tradeops.runtime --topology FILE --name GROUP --run-dir DIR`: a strategy host."""

from tradeops.runtime.launch import leave, main

leave(main())
