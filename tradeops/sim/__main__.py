"""`python -m tradeops.sim`: the `tradeops sim` command on its own."""

import typer

from tradeops.sim.cli import register

app = typer.Typer(add_completion=False)
register(app)

if __name__ == "__main__":
    app()
