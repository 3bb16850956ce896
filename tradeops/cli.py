"""The `tradeops` command line. Thin: parse arguments, call the library, print, exit.

Importing this module is cheap: the typer app and every command module are built on first
use of :data:`app` (PEP 562), so ``tradeops --version`` answers after importing only the
package's face (about 40 ms here instead of 0.3-0.7 s: typer, pydantic, asyncio and the
command modules take that long, issue 13). Any other command builds the app as before, and
a command imports its heavy work (the topology model, the supervisor) when it runs.
"""

# No `from __future__ import annotations`: typer reads the commands' annotations, which name
# what _build imports locally, so they must be evaluated where they are written.
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from tradeops import __version__

if TYPE_CHECKING:
    import typer

    app: typer.Typer


def _version(value: bool) -> None:
    import typer

    if value:
        typer.echo(f"tradeops {__version__}")
        raise typer.Exit()


#: Commands that drive a running desk, built alone when one of them is run: `restart` is on
#: the way from the user's Enter to the restarted strategy's first tick (issue 13), and the
#: other command modules (the cluster, recording, sim and proxy commands) are not.
DRIVE_COMMANDS = frozenset({"status", "restart", "stop", "start", "down"})


def _build(only: str | None = None) -> "typer.Typer":
    """The typer app; with `only` one of DRIVE_COMMANDS, an app of those commands alone
    (the same commands, options and help; the root's --help still lists everything)."""
    import typer

    from tradeops.supervisor.cli.common import Format, tool_settings

    built = typer.Typer(
        name="tradeops",
        help="Run an algorithmic trading desk from one YAML topology file.",
        no_args_is_help=True,
        add_completion=True,  # --install-completion / --show-completion (docs/cli.md)
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @built.callback()
    def _root(
        version: Annotated[
            bool,
            typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
        ] = False,
    ) -> None:
        """tradeops: brokers, strategies and processes declared in one topology file."""

    if only in DRIVE_COMMANDS:
        from tradeops.supervisor.cli import drive

        drive.register(built)
        return built

    @built.command()
    def validate(
        files: Annotated[list[Path], typer.Argument(help="Topology files to check.")],
        output: Annotated[
            Format, typer.Option("--format", help="text for people, json for machines.")
        ] = Format.text,
        strict: Annotated[bool, typer.Option(help="Treat warnings as errors.")] = False,
        import_classes: Annotated[
            bool,
            typer.Option(
                "--import/--no-import",
                help="Import each strategy class to prove it exists (--no-import for CI jobs "
                "without the strategies' dependencies).",
            ),
        ] = True,
        cpu_count: Annotated[
            int | None,
            typer.Option(help="Check CPU pins against this many cores instead of this machine's."),
        ] = None,
    ) -> None:
        """Check topology files: exit 0 when clean (warnings allowed), 1 on errors, 2 on bad
        usage."""
        from tradeops.topology.check import CheckOptions
        from tradeops.topology.report import render_json, render_text
        from tradeops.topology.validate import exit_code, validate_file

        options = CheckOptions(import_classes=import_classes, cpu_count=cpu_count)
        reports = [validate_file(f, options, strict) for f in files]
        if output is Format.json:
            typer.echo(render_json(reports))
        else:
            colour = tool_settings().colour_for(sys.stdout.isatty())
            typer.echo(render_text(reports, colour=colour))
        raise typer.Exit(exit_code(reports))

    @built.command()
    def schema() -> None:
        """Print the topology's JSON Schema (for yaml-language-server and other editors)."""
        from tradeops.topology.schema import schema_text

        typer.echo(schema_text(), nl=False)

    from tradeops.cluster import cli as cluster_cli
    from tradeops.recording import cli as data_cli
    from tradeops.sim import cli as sim_cli
    from tradeops.supervisor import cli as desk_cli
    from tradeops.supervisor import proxy_cli

    desk_cli.register(built)
    sim_cli.register(built)
    proxy_cli.register(built)
    data_cli.register(built)
    cluster_cli.register(built)
    return built


def __getattr__(name: str) -> Any:
    if name == "app":
        built = _build()
        globals()["app"] = built  # later lookups skip this function
        return built
    raise AttributeError(f"module 'tradeops.cli' has no attribute {name!r}")


def main() -> None:
    """The console script. `--version` alone is answered without building the app (the same
    line its option prints); anything else runs the app."""
    if sys.argv[1:] == ["--version"]:
        sys.stdout.write(f"tradeops {__version__}\n")
        return
    if len(sys.argv) > 1 and sys.argv[1] in DRIVE_COMMANDS:
        _build(sys.argv[1])()
        return
    __getattr__("app")()


if __name__ == "__main__":
    main()
