"""Every `from tradeops... import ...` a reader copies from the docs works.

The docs are where users learn the public names; an import that fails there (a type the
package face does not export) is a bug a user meets first, so each one is imported here.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
_IMPORT = re.compile(
    r"^[ \t]*from[ \t]+(tradeops(?:\.\w+)*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]+)", re.M
)


def _imports() -> list[tuple[str, str, str]]:
    found = []
    for path in DOCS:
        for match in _IMPORT.finditer(path.read_text()):
            names = match.group(2).strip("() \t\n")
            for name in re.split(r"[\s,]+", names):
                if name:
                    found.append((path.name, match.group(1), name.split(" as ")[0]))
    return found


def test_the_docs_import_something() -> None:
    assert any(module == "tradeops" for _, module, _ in _imports())


@pytest.mark.parametrize(("doc", "module", "name"), _imports())
def test_a_documented_import_resolves(doc: str, module: str, name: str) -> None:
    imported = importlib.import_module(module)
    if not hasattr(imported, name):
        importlib.import_module(f"{module}.{name}")  # a submodule: `from tradeops import sim`
    assert hasattr(imported, name), f"{doc}: from {module} import {name}"
