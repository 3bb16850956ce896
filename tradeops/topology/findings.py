"""A finding: one problem in a topology file, located and explained.

Leaf module: every checker produces these, every printer consumes them.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

Path = tuple[str | int, ...]


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One problem: where it is, what is wrong, and how to fix it.

    ``path`` is the location inside the document (``("strategies", "momentum", "broker")``),
    ``name`` the offending name a user searches for, ``fix`` one sentence telling what to do.
    """

    severity: Severity
    code: str
    message: str
    fix: str
    file: str
    line: int = 0
    column: int = 0
    path: Path = ()
    name: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def dotted_path(self) -> str:
        return ".".join(str(p) for p in self.path)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        data["path"] = self.dotted_path()
        return data


def sort_key(finding: Finding) -> tuple[str, int, int, str]:
    return (finding.file, finding.line, finding.column, finding.code)


def did_you_mean(word: str, choices: list[str]) -> str:
    """` (did you mean 'x'?)` for the closest of `choices`, or nothing."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
