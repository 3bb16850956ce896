"""`python -m tradeops.sim`: the stand-alone `tradeops sim` command, or, given `--topology`,
the sim role of a desk (`--topology FILE --name sim-BROKER --run-dir DIR [--port PORT]`)."""

import sys

if "--topology" in sys.argv[1:]:
    from tradeops.process.parent import check_parent

    check_parent()  # before the heavy imports: die with the supervisor (process/parent.py)

    from tradeops.process.entry import run_role
    from tradeops.sim.role import run_sim

    sys.exit(run_role("sim", run_sim))

import typer

from tradeops.sim.cli import register

app = typer.Typer(add_completion=False)
register(app)

if __name__ == "__main__":
    app()
