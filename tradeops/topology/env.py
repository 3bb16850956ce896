"""`${VAR}` and `${VAR:-default}` expansion in topology values.

Values come from the process environment first, then from a `.env` file beside the topology
(read with python-dotenv, the same reader pydantic-settings uses). `$${` writes a literal `${`.
Expansion happens before validation, so a credential's value exists only inside the model's
SecretStr and is never part of a finding.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from dotenv import dotenv_values

from tradeops.topology.findings import Path

_REF = re.compile(r"\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class MissingVariable:
    path: Path
    variable: str


def environment_for(topology_file: FsPath, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables a topology sees: `.env` beside it, overridden by the real environment."""
    merged: dict[str, str] = {}
    dotenv_file = topology_file.parent / ".env"
    if dotenv_file.is_file():
        merged.update({k: v for k, v in dotenv_values(dotenv_file).items() if v is not None})
    merged.update(environ)
    return merged


def expand(
    data: Any, env: Mapping[str, str], sources: dict[Path, list[str]] | None = None
) -> tuple[Any, list[MissingVariable]]:
    """Expand references in every string value; report each unset variable without a default.

    `sources`, when given, is filled with the variables each expanded value came from, so an
    error about that value can name the variable instead of echoing what it held."""
    missing: list[MissingVariable] = []
    return _walk(data, (), env, missing, {} if sources is None else sources), missing


def _walk(data: Any, path: Path, env: Mapping[str, str], missing: list[MissingVariable],
          sources: dict[Path, list[str]]) -> Any:
    if isinstance(data, dict):
        return {k: _walk(v, (*path, k), env, missing, sources) for k, v in data.items()}
    if isinstance(data, list):
        return [_walk(v, (*path, i), env, missing, sources) for i, v in enumerate(data)]
    if isinstance(data, str) and "$" in data:
        names = [m.group(2) for m in _REF.finditer(data) if not m.group(1)]
        if names:
            sources[path] = names
        return _expand_string(data, path, env, missing)
    return data


def _expand_string(
    text: str, path: Path, env: Mapping[str, str], missing: list[MissingVariable]
) -> str:
    def replace(match: re.Match[str]) -> str:
        escaped, name, default = match.group(1), match.group(2), match.group(3)
        if escaped:
            return match.group(0)[1:]
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is not None:
                return default
            missing.append(MissingVariable(path, name))
            return ""
        return value

    return _REF.sub(replace, text)
