"""Printing validate's findings: text for people (grouped by file, coloured on a terminal),
JSON for machines."""

from __future__ import annotations

import json
from typing import Any

import typer

from tradeops.topology.findings import Severity
from tradeops.topology.validate import FileReport

_COLOURS = {Severity.ERROR: "red", Severity.WARNING: "yellow"}


def render_text(reports: list[FileReport], colour: bool) -> str:
    def style(text: str, **kw: Any) -> str:
        return typer.style(text, **kw) if colour else text

    lines: list[str] = []
    for report in reports:
        if report.usage_error:
            lines.append(style(f"{report.file}: {report.usage_error}", fg="red", bold=True))
            continue
        if not report.findings:
            lines.append(f"{style(report.file, bold=True)}: ok{_summary(report)}")
            continue
        lines.append(style(report.file, bold=True))
        for f in report.findings:
            severity = style(f.severity.value, fg=_COLOURS[f.severity], bold=True)
            # file:line:column first, so editors and CI logs make it a link.
            lines.append(f"  {f.file}:{f.line}:{f.column}: {severity}: {f.message} [{f.code}]")
            lines.append(f"      fix: {f.fix}")
    errors = sum(r.errors for r in reports)
    warnings = sum(r.warnings for r in reports)
    files = len(reports)
    verdict = f"{errors} error(s), {warnings} warning(s) in {files} file(s)"
    lines.append(style(verdict, fg="red" if errors else "yellow" if warnings else "green"))
    return "\n".join(lines)


def _summary(report: FileReport) -> str:
    topo = report.topology
    if topo is None:
        return ""
    from tradeops.topology.plan import groups

    return (
        f" ({len(topo.brokers)} broker(s), {len(topo.strategies)} strategies, "
        f"{len(groups(topo))} process(es))"
    )


def render_json(reports: list[FileReport]) -> str:
    return json.dumps(
        {
            "ok": not any(r.errors for r in reports),
            "errors": sum(r.errors for r in reports),
            "warnings": sum(r.warnings for r in reports),
            "files": [
                {
                    "file": r.file,
                    "ok": r.errors == 0,
                    "usage_error": r.usage_error or None,
                    "findings": [f.to_json() for f in r.findings],
                }
                for r in reports
            ],
        },
        indent=2,
    )
