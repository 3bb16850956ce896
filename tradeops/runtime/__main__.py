"""`python -m tradeops.runtime --topology FILE --name GROUP --run-dir DIR`: a strategy host."""

from tradeops.process.parent import check_parent

check_parent()  # before the heavy imports: die with the supervisor (process/parent.py)

from tradeops.runtime.launch import leave, main  # noqa: E402

leave(main())
