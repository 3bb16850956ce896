"""tradeops's own settings, read from `TRADEOPS_*` environment variables.

These are the tool's defaults, not a desk's: a desk is described by its topology file. The
command line reads them (`current()`); an option given on the command line wins.

| variable | default | meaning |
|---|---|---|
| `TRADEOPS_RUN_DIR` | `.tradeops` | where commands look for a desk given by `--name` (or none) |
| `TRADEOPS_TOPOLOGY` | `tradeops.yaml`, `topology.yaml` | the topology when none is given |
| `TRADEOPS_LOG_LEVEL` | `INFO` | the lowest level `tradeops up` prints in the foreground |
| `TRADEOPS_COLOUR` | `auto` | `auto` (on a terminal), `always` or `never` |

pydantic-settings does the reading so a wrong value is an error naming the variable and the
values it accepts, as the topology's own errors are, rather than a silent fallback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_TOPOLOGIES = ("tradeops.yaml", "topology.yaml")
Level = Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]
LEVELS: tuple[Level, ...] = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")


class SettingsError(Exception):
    """A `TRADEOPS_*` variable holds a value tradeops cannot use."""


class ToolSettings(BaseSettings):
    """The defaults of the `tradeops` command, from the environment."""

    model_config = SettingsConfigDict(
        env_prefix="TRADEOPS_", extra="ignore", frozen=True, case_sensitive=False
    )

    run_dir: Path = Path(".tradeops")
    topology: str | None = None
    log_level: Level = "INFO"
    colour: Literal["auto", "always", "never"] = "auto"

    def topology_names(self) -> tuple[str, ...]:
        """The file names a command looks for in the current directory, in order."""
        return (self.topology,) if self.topology else DEFAULT_TOPOLOGIES

    def default_topology(self, cwd: Path | None = None) -> Path | None:
        """The first of `topology_names()` that exists in `cwd` (the current directory)."""
        base = cwd or Path.cwd()
        for name in self.topology_names():
            if (base / name).is_file():
                return base / name
        return None

    def colour_for(self, is_tty: bool) -> bool:
        return self.colour == "always" or (self.colour == "auto" and is_tty)

    def shows(self, level: str) -> bool:
        """Whether a line of `level` passes `log_level` (unknown levels always do)."""
        if level not in LEVELS:
            return True
        return LEVELS.index(level) >= LEVELS.index(self.log_level)


def current() -> ToolSettings:
    """The settings of this process; SettingsError naming the variable when one is wrong."""
    try:
        return ToolSettings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            variable = "TRADEOPS_" + "_".join(str(p) for p in error["loc"]).upper()
            problems.append(f"{variable}: {error['msg']}")
        raise SettingsError("; ".join(problems)) from None
