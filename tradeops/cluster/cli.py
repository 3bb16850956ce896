"""`tradeops export systemd|compose|k8s FILE`: write a desk's service files (export.py)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer


def export(
    kind: Annotated[str, typer.Argument(help="systemd, compose or k8s.")],
    file: Annotated[Path, typer.Argument(help="The desk's topology file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write into.")] = Path("."),
    image: Annotated[str, typer.Option(help="compose, k8s: the image with tradeops.")]
    = "tradeops:latest",
    nats: Annotated[bool, typer.Option("--nats", help="Also run a NATS server (clusters).")]
    = False,
) -> None:
    """Write per node the units or manifests that run `tradeops up FILE --node NODE`."""
    from tradeops.cluster.export import KINDS
    from tradeops.cluster.export import export as files_of
    from tradeops.topology.check import CheckOptions
    from tradeops.topology.report import render_text
    from tradeops.topology.validate import validate_file

    if kind not in KINDS:
        typer.echo(f"cannot export {kind!r}: choose one of {', '.join(KINDS)}", err=True)
        raise typer.Exit(2)
    report = validate_file(file, CheckOptions(import_classes=False))
    if report.usage_error:
        typer.echo(report.usage_error, err=True)
        raise typer.Exit(2)
    if report.errors or report.topology is None:
        typer.echo(render_text([report], colour=False), err=True)
        typer.echo("the topology has errors; nothing was written", err=True)
        raise typer.Exit(1)
    tradeops = shutil.which("tradeops") or str(Path(sys.executable).parent / "tradeops")
    written = files_of(report.topology, file.resolve(), kind, tradeops=tradeops, image=image,
                       nats=nats)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in written.items():
        (out / name).write_text(text)
        typer.echo(f"wrote {out / name}")


def register(app: typer.Typer) -> None:
    app.command()(export)
