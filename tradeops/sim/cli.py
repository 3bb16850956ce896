"""The `tradeops sim` command (placeholder until the simulated exchange lands)."""

import typer


def register(app: typer.Typer) -> None:
    """Add the `sim` command to the tradeops CLI."""
