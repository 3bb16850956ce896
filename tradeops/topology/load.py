"""Reading a topology file: YAML (with positions) → `${ENV}` expansion → the pydantic model.

This is the one path every command takes. Problems become located findings instead of
exceptions, so `validate` can report all of them at once; `load_topology` raises when any of
them is an error, for commands that need a model to run.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from tradeops.topology import model as m
from tradeops.topology.env import environment_for, expand
from tradeops.topology.findings import Finding, Path, Severity
from tradeops.topology.yamlpos import Positions, YamlSyntaxError, load_with_positions


@dataclass
class Loaded:
    """A file as read: the model when it is well formed, and every finding on the way."""

    file: str
    topology: m.Topology | None
    findings: list[Finding] = field(default_factory=list)
    positions: Positions = field(default_factory=Positions)
    #: The `${VAR}`s each value came from: errors name them instead of echoing the value.
    variables: dict[tuple[Any, ...], list[str]] = field(default_factory=dict)

    @property
    def base_dir(self) -> FsPath:
        return FsPath(self.file).resolve().parent

    def finding(
        self,
        severity: Severity,
        code: str,
        path: Path,
        message: str,
        fix: str,
        name: str = "",
        at_key: bool = False,
    ) -> Finding:
        line, col = self.positions.of_key(path) if at_key else self.positions.of_value(path)
        return Finding(severity, code, message, fix, self.file, line, col, tuple(path), name)


class TopologyError(Exception):
    """A topology with errors; `findings` holds every one of them."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        errors = [f for f in findings if f.is_error]
        first = errors[0] if errors else None
        where = f"{first.file}:{first.line}:{first.column}: {first.message}" if first else ""
        super().__init__(f"{len(errors)} error(s) in the topology; first: {where}")


def load(
    path: str | os.PathLike[str],
    environ: Mapping[str, str] | None = None,
    env_required: bool = True,
) -> Loaded:
    """Read and validate one topology file.

    Raises FileNotFoundError / IsADirectoryError / PermissionError when the file cannot be
    read (a usage error); every problem with its content is returned as a finding. An unset
    `${VAR}` is an error when `env_required` (starting a desk), else a warning that names it
    (`tradeops validate` in CI, where the secrets are not set).
    """
    file = os.fspath(path)
    text = FsPath(file).read_text(encoding="utf-8")
    loaded = Loaded(file, None)
    data = _parse(loaded, text)
    if data is None:
        return loaded
    env = environment_for(FsPath(file), os.environ if environ is None else environ)
    data = _expand(loaded, data, env, env_required)
    try:
        loaded.topology = m.Topology.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loaded.findings.append(_from_pydantic(loaded, error))
    if any(f.is_error for f in loaded.findings):
        loaded.topology = None
    return loaded


def _parse(loaded: Loaded, text: str) -> dict[str, Any] | None:
    """The YAML as plain data with positions; None (and a finding) when it is not a mapping
    of keys."""
    file = loaded.file
    try:
        data, positions, duplicates = load_with_positions(text)
    except YamlSyntaxError as exc:
        loaded.findings.append(
            Finding(
                Severity.ERROR,
                "yaml-syntax",
                exc.message,
                exc.fix,
                file,
                exc.line,
                exc.column,
            )
        )
        return None
    loaded.positions = positions
    for dup in duplicates:
        loaded.findings.append(
            Finding(
                Severity.ERROR,
                "duplicate-key",
                f"'{dup.path[-1]}' is defined twice (first on line {dup.first_line})",
                "give each entry a unique name, or merge the two definitions",
                file,
                dup.line,
                dup.column,
                dup.path,
                str(dup.path[-1]),
            )
        )
    if not isinstance(data, dict):
        loaded.findings.append(
            loaded.finding(
                Severity.ERROR,
                "not-a-mapping",
                (),
                "a topology must be a mapping of keys (version, name, brokers, ...)",
                "start from examples/configs/quickstart.yaml",
            )
        )
        return None
    return data


def _expand(loaded: Loaded, data: dict[str, Any], env: Mapping[str, str], required: bool
            ) -> Any:
    """`${VAR}`s expanded; each unset variable is a finding that names it."""
    file = loaded.file
    data, missing = expand(data, env, loaded.variables)
    for miss in missing:
        what = "credential" if _is_secret(miss.path) else "value"
        loaded.findings.append(
            loaded.finding(
                Severity.ERROR if required else Severity.WARNING,
                "env-missing",
                miss.path,
                f"{what} {_dotted(miss.path)} needs environment variable {miss.variable}, "
                "which is not set",
                f"export {miss.variable}=... or add it to {FsPath(file).parent / '.env'} "
                f"(keep that file out of git), or write ${{{miss.variable}:-default}}",
                name=miss.variable,
            )
        )
    return data


def load_topology(path: str | os.PathLike[str]) -> m.Topology:
    """The model of a topology file, or TopologyError with every finding."""
    loaded = load(path)
    if loaded.topology is None:
        raise TopologyError(loaded.findings)
    return loaded.topology


# -- pydantic errors as findings ------------------------------------------------------------

_PATTERN_FIX = {
    m.NAME_PATTERN: "names start with a letter and use letters, digits, '_' or '-' (at most 48)",
    m.TOPOLOGY_NAME_PATTERN: "use lower-case letters, digits, '_' or '-' (at most 32): the name "
    "becomes part of file and shared-memory names",
    m.CLASS_PATTERN: "write the class as module.path:ClassName, e.g. recipes.momentum:Momentum",
}


def _from_pydantic(loaded: Loaded, error: ErrorDetails) -> Finding:
    loc = tuple(error["loc"])
    return _structural(loaded, loc, error["type"]) or _bad_value(loaded, loc, error)


def _structural(loaded: Loaded, loc: tuple[Any, ...], kind: str) -> Finding | None:
    """An unknown key, a missing key or an invalid name; None for other errors."""
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _allowed_keys(loc[:-1])
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return loaded.finding(
            Severity.ERROR,
            "unknown-key",
            loc,
            f"unknown key '{key}' in {_where(loc[:-1])}",
            f"{hint}valid keys here: {', '.join(allowed)}",
            name=key,
            at_key=True,
        )
    if kind == "missing":
        key = str(loc[-1])
        return loaded.finding(
            Severity.ERROR,
            "missing-key",
            loc[:-1],
            f"{_where(loc[:-1])} needs '{key}'",
            f"add `{key}:` ({_describe(loc)})",
            name=key,
            at_key=True,
        )
    if loc and loc[-1] == "[key]":
        name = str(loc[-2])
        return loaded.finding(
            Severity.ERROR,
            "invalid-name",
            loc[:-1],
            f"'{name}' is not a valid name",
            _PATTERN_FIX[m.NAME_PATTERN],
            name=name,
            at_key=True,
        )
    return None


def _bad_value(loaded: Loaded, loc: tuple[Any, ...], error: ErrorDetails) -> Finding:
    """A value of the wrong kind, with the choices or the pattern it must follow. The input
    is never shown for a secret."""
    kind = error["type"]
    secret = _is_secret(loc)
    shown = "" if secret else _short(error.get("input"))
    variables = loaded.variables.get(loc)
    if variables and not secret:  # a value from the environment is named, never echoed
        shown = " and ".join(f"the value of ${{{v}}}" for v in variables)
    msg = error["msg"].removeprefix("Value error, ")
    code, fix = "invalid-value", _describe(loc)
    if kind == "literal_error":
        choices = [
            c.strip(" '")
            for c in msg.removeprefix("Input should be ").replace(" or ", ",").split(",")
        ]
        choices = [c for c in choices if c]
        close = difflib.get_close_matches(str(error.get("input")), choices, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close and not secret else ""
        fix = f"use one of: {', '.join(choices)}{hint}"
        msg = f"{shown} is not allowed" if shown else "value not allowed"
    elif kind == "string_pattern_mismatch":
        pattern = str((error.get("ctx") or {}).get("pattern", ""))
        fix = _PATTERN_FIX.get(pattern, f"the value must match {pattern}")
        msg = f"{shown} is not valid here" if shown else "value not valid here"
    elif shown and kind not in {"value_error", "model_type", "dict_type", "list_type"}:
        msg = f"{msg} (got {shown})"
    return loaded.finding(
        Severity.ERROR,
        code,
        loc,
        f"{_dotted(loc)}: {msg}",
        fix,
        name=shown.strip("'") if shown else str(loc[-1]) if loc else "",
    )


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    cls = _model_at(loc)
    if cls is None:
        return []
    return [f.alias or n for n, f in cls.model_fields.items()]


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class a document location falls in (None inside free-form values)."""
    cls: type[BaseModel] = m.Topology
    collections: dict[tuple[Any, ...], type[BaseModel]] = {
        ("brokers",): m.Broker,
        ("strategies",): m.Strategy,
        ("processes",): m.Process,
    }
    i = 0
    while i < len(loc):
        if i == 1 and (loc[0],) in collections:
            cls = collections[(loc[0],)]
            i += 1
            continue
        info = _field(cls, loc[i])
        if info is None:
            return None
        annotation = info.annotation
        nested = _model_in(annotation)
        if nested is None:
            return None
        cls = nested
        i += 1
    return cls


def _field(cls: type[BaseModel], key: Any) -> Any:
    for name, info in cls.model_fields.items():
        if key in (name, info.alias):
            return info
    return None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _describe(loc: tuple[Any, ...]) -> str:
    cls = _model_at(loc[:-1]) if loc else None
    info = _field(cls, loc[-1]) if cls is not None and loc else None
    description = getattr(info, "description", None)
    if description:
        return f"{loc[-1]}: {description}; see docs/topology.md"
    return "see docs/topology.md for this key"


def _where(loc: tuple[Any, ...]) -> str:
    return _dotted(loc) if loc else "the top level"


def _dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _is_secret(path: tuple[Any, ...]) -> bool:
    return "credentials" in path or (len(path) >= 3 and path[:3] == ("settings", "proxy", "token"))


def _short(value: Any) -> str:
    if isinstance(value, (dict, list)) or value is None:
        return ""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
