"""The commands that run and drive a desk, one module per command family.

`common.py` holds what they share (options, finding a desk, failing plainly); `up.py` starts
a desk; `drive.py` asks a running one (status, restart, stop, start, down); `orders.py` and
`logs.py` read what it wrote;
`halt.py` holds the kill switch (halt, resume, flatten). `tradeops/cli.py` registers them
on the typer app.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    # Imported here, not above: `tradeops restart` imports drive.py alone (tradeops/cli.py).
    from tradeops.supervisor.cli import apply, drive, halt, logs, orders, top, up

    app.command()(up.up)
    drive.register(app)
    logs.register(app)
    orders.register(app)
    halt.register(app)
    apply.register(app)
    top.register(app)
