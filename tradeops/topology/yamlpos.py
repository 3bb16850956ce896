"""YAML to plain data, keeping where every key and value sits in the file.

PyYAML's ``safe_load`` forgets positions and silently keeps the last of two duplicate keys;
a topology checker needs both. We compose the node tree (libyaml's C parser when present)
and build the data ourselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from tradeops.topology.findings import Path
from tradeops.topology.yamlerrors import explain

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Positions:
    """1-based (line, column) of each key and each value, by document path."""

    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def of_key(self, path: Path) -> tuple[int, int]:
        """The key's own position, else the nearest enclosing one that is known."""
        return self._nearest(path, prefer_key=True)

    def of_value(self, path: Path) -> tuple[int, int]:
        return self._nearest(path, prefer_key=False)

    def _nearest(self, path: Path, prefer_key: bool) -> tuple[int, int]:
        p = tuple(path)
        while True:
            first, second = (self.keys, self.values) if prefer_key else (self.values, self.keys)
            if p in first:
                return first[p]
            if p in second:
                return second[p]
            if not p:
                return (1, 1)
            p = p[:-1]


@dataclass(frozen=True)
class DuplicateKey:
    path: Path
    line: int
    column: int
    first_line: int


class YamlSyntaxError(Exception):
    def __init__(self, message: str, line: int, column: int, fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.fix = fix or "fix the YAML at this position (indentation, a missing ':' or quote)"


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def load_with_positions(text: str) -> tuple[Any, Positions, list[DuplicateKey]]:
    """Parse one YAML document; raise YamlSyntaxError with its position on bad syntax."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        said = explain(exc, text)  # plain words, on the line that holds the mistake
        raise YamlSyntaxError(said.message, said.line, said.column, said.fix) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(str(exc), 1, 1) from None
    positions = Positions()
    duplicates: list[DuplicateKey] = []
    if root is None:
        return None, positions, duplicates
    data = _build(root, (), positions, duplicates)
    return data, positions, duplicates


def _build(node: yaml.Node, path: Path, pos: Positions, dups: list[DuplicateKey]) -> Any:
    pos.values[path] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        first_seen: dict[Any, int] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults`
                merges.extend(
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                continue
            key = _key(key_node)
            child: Path = (*path, key)
            if key in first_seen:
                dups.append(DuplicateKey(child, *_mark(key_node), first_line=first_seen[key]))
                continue
            first_seen[key] = _mark(key_node)[0]
            pos.keys[child] = _mark(key_node)
            out[key] = _build(value_node, child, pos, dups)
        # Explicit keys win over merged ones, as in YAML's merge-key rule.
        for merged in merges:
            if not isinstance(merged, yaml.MappingNode):
                continue
            for key_node, value_node in merged.value:
                key = _key(key_node)
                if key not in out:
                    child = (*path, key)
                    pos.keys[child] = _mark(key_node)
                    out[key] = _build(value_node, child, pos, dups)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), pos, dups) for i, item in enumerate(node.value)]
    return _constructor.construct_object(node, deep=True)


def _key(node: yaml.Node) -> str:
    """Mapping keys as strings: `1:` and `true:` name things, they are not numbers."""
    if not isinstance(node, yaml.ScalarNode):
        return str(_constructor.construct_object(node, deep=True))
    return str(node.value)


# A constructor instance resolves scalars (int, float, bool, null, str) as safe_load would.
_constructor = yaml.SafeLoader("")
