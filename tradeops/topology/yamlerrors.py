"""YAML parser errors in plain words, placed on the line the user has to change.

libyaml speaks of tokens, simple keys and block ends, and often notices a mistake a line
after it was made: a key without its ':' is seen when the next line's ':' arrives, an
unclosed '[' when the next key does. Each known error becomes a sentence saying what is
wrong and how to fix it, at the line that holds the mistake. Unknown errors keep the
parser's words.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml


@dataclass(frozen=True)
class Explained:
    message: str
    fix: str
    line: int  # 1-based
    column: int


def explain(exc: yaml.MarkedYAMLError, text: str) -> Explained:
    problem = exc.problem or exc.context or "invalid YAML"
    context = exc.context or ""
    at = _position(exc.problem_mark or exc.context_mark)
    opened = _position(exc.context_mark) if exc.context_mark is not None else at
    lines = text.splitlines()
    char = _char(lines, at)
    if "cannot start any token" in problem and char == "\t":
        return Explained(
            "a tab character: YAML indents with spaces only",
            "replace the tab with spaces (indent by two per level)",
            *at,
        )
    if "cannot start any token" in problem:
        return Explained(
            f"{char!r} cannot start a value",
            f'put the value in quotes, e.g. "{char}..."',
            *at,
        )
    if "could not find expected ':'" in problem:
        return Explained(
            "this key has no ':' after it",
            "write `key: value` (or start the line with '- ' if it is a list item)",
            *opened,
        )
    if problem.startswith("mapping values are not allowed"):
        return _stray_colon(lines, at)
    if "undefined alias" in problem:
        return Explained(
            "this '*name' refers to an anchor that is not defined above it",
            "define `&name` on an earlier value, or write the value out",
            *at,
        )
    return _in_context(problem, context, at, opened)


def _in_context(
    problem: str, context: str, at: tuple[int, int], opened: tuple[int, int]
) -> Explained:
    """Errors the parser names by what it was reading: a block or flow collection, a quote."""
    if "block mapping" in context and (
        "expected key" in problem or "expected <block end>" in problem
    ):
        return Explained(
            "this line is not indented like the keys around it "
            f"(the mapping it belongs to starts on line {opened[0]})",
            "indent keys of one mapping to the same column, with spaces",
            *at,
        )
    if "block collection" in context:
        return Explained(
            f"this line is indented like an item of the list on line {opened[0]} "
            "but does not start with '- '",
            "start each list item with '- ', or indent the line as the key it is",
            *at,
        )
    if "flow sequence" in context or "flow mapping" in context:
        close = "]" if "sequence" in context else "}"
        return Explained(
            f"the {'[' if close == ']' else '{'} opened here is not closed by '{close}' "
            "(or an item in it lacks its ',')",
            f"close it with '{close}' on the same line, or separate its items with ', '",
            *opened,
        )
    if "quoted scalar" in context:
        return Explained(
            "the quote opened here is never closed",
            "close the quote on the same line",
            *opened,
        )
    return Explained(
        f"YAML syntax: {problem}",
        "fix the YAML at this position (indentation, a missing ':' or quote)",
        *at,
    )


def _stray_colon(lines: list[str], at: tuple[int, int]) -> Explained:
    """A ':' where a value was expected: either a value holding ': ' (quote it), or the key
    on the line before lacks its ':' and ran on into this line."""
    line_no = at[0]
    current = lines[line_no - 1] if 0 < line_no <= len(lines) else ""
    before = current[: at[1] - 1]
    if ": " not in before and not before.lstrip().startswith("- "):
        previous = _previous_content_line(lines, line_no - 1)
        if previous is not None and ":" not in lines[previous - 1]:
            text = lines[previous - 1]
            return Explained(
                "this key has no ':' after it, so it runs on into the next line",
                "write `key:` (or `key: value`)",
                previous,
                len(text) - len(text.lstrip()) + 1,
            )
    return Explained(
        "a second ':' on this line: a value that contains ': ' must be quoted",
        'quote the value, e.g. name: "a: b", or put the key on a line of its own',
        *at,
    )


def _previous_content_line(lines: list[str], before: int) -> int | None:
    """The 1-based number of the last non-blank, non-comment line above line `before`+1."""
    for i in range(before - 1, -1, -1):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            return i + 1
    return None


def _position(mark: yaml.Mark | None) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def _char(lines: list[str], at: tuple[int, int]) -> str:
    line, column = at
    if 0 < line <= len(lines) and 0 < column <= len(lines[line - 1]):
        return lines[line - 1][column - 1]
    return ""
