"""`tradeops validate`: load and check topology files, collecting every finding."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from tradeops.topology.check import CheckOptions, check
from tradeops.topology.findings import Finding, Severity, sort_key
from tradeops.topology.load import load
from tradeops.topology.model import Topology


@dataclass
class FileReport:
    """What validate found in one file; `usage_error` when the file could not be read."""

    file: str
    findings: list[Finding] = field(default_factory=list)
    topology: Topology | None = None
    usage_error: str = ""

    @property
    def errors(self) -> int:
        return sum(f.is_error for f in self.findings) + (1 if self.usage_error else 0)

    @property
    def warnings(self) -> int:
        return sum(not f.is_error for f in self.findings)


def validate_file(
    path: str | os.PathLike[str],
    options: CheckOptions | None = None,
    strict: bool = False,
    env_required: bool = False,
) -> FileReport:
    """Every finding for one file; `strict` turns warnings into errors. An unset `${VAR}` is
    a warning unless `env_required` (`up`, `restart`) or `strict`."""
    file = os.fspath(path)
    try:
        loaded = load(file, env_required=env_required or strict)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return FileReport(file, usage_error=f"cannot read {file}: {reason}")
    except UnicodeDecodeError:
        return FileReport(file, usage_error=f"cannot read {file}: not UTF-8 text")
    check(loaded, options)
    findings = sorted(loaded.findings, key=sort_key)
    if strict:
        findings = [replace(f, severity=Severity.ERROR) for f in findings]
    return FileReport(file, findings, loaded.topology)


def exit_code(reports: list[FileReport]) -> int:
    """0 clean (warnings allowed), 1 when any finding is an error, 2 when a file was unreadable."""
    if any(r.usage_error for r in reports):
        return 2
    return 1 if any(r.errors for r in reports) else 0
