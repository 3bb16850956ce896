"""Every shipped example and every full topology in docs/ validates; docs cover every key;
the shipped JSON Schema is the one the model produces."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from tests.conftest import REPO
from tradeops.topology.check import CheckOptions
from tradeops.topology.load import _model_in
from tradeops.topology.model import Topology
from tradeops.topology.schema import topology_schema
from tradeops.topology.validate import validate_file

EXAMPLES = sorted((REPO / "examples").rglob("*.yaml"))
FAKE_ENV = {"ALPACA_KEY": "k", "ALPACA_SECRET": "s", "ALLTICK_TOKEN": "t",
            "OPENALGO_API_KEY": "o", "APCA_API_KEY_ID": "k", "APCA_API_SECRET_KEY": "s"}


def test_the_required_examples_exist() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"quickstart.yaml", "alpaca-paper.yaml", "alltick.yaml", "many-strategies.yaml"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in FAKE_ENV.items():
        monkeypatch.setenv(key, value)
    report = validate_file(path, CheckOptions(cpu_count=2), strict=True)
    assert report.findings == [], "\n".join(f"{f.line}: {f.message}" for f in report.findings)


def _doc_topologies() -> Iterator[tuple[str, str]]:
    for doc in [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md"]:
        blocks = re.findall(r"```yaml\n(.*?)```", doc.read_text(), flags=re.S)
        for i, block in enumerate(blocks):
            if block.lstrip().startswith("version:"):
                yield f"{doc.name}#{i}", block


@pytest.mark.parametrize(("where", "text"), list(_doc_topologies()), ids=lambda v: str(v)[:30])
def test_every_topology_in_the_docs_validates(where: str, text: str, tmp_path: Path) -> None:
    path = tmp_path / "doc.yaml"
    path.write_text(text)
    report = validate_file(path, CheckOptions(cpu_count=2))
    assert report.findings == [], f"{where}: {[f.message for f in report.findings]}"


def _keys(cls: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, info in cls.model_fields.items():
        path = prefix + (info.alias or name)
        yield path
        nested = _model_in(info.annotation)
        if nested is not None:
            sep = {"brokers": ".NAME.", "strategies": ".NAME.", "processes": ".NAME.",
                   "brokers.NAME.accounts": ".ACCOUNT.", "settings.alerts": "[].",
                   "settings.cluster.nodes": ".NODE."}.get(path, ".")
            yield from _keys(nested, path + sep)


def test_docs_describe_every_key() -> None:
    doc = (REPO / "docs" / "topology.md").read_text()
    missing = [k for k in _keys(Topology) if f"`{k}`" not in doc]
    assert missing == [], f"docs/topology.md lacks {missing}"


def test_docs_list_every_finding_code() -> None:
    doc = (REPO / "docs" / "topology.md").read_text()
    sources = "".join(p.read_text() for p in (REPO / "tradeops" / "topology").glob("*.py"))
    codes = set(re.findall(r'(?:E|W|Severity\.ERROR|Severity\.WARNING),\s*"([a-z-]+)"', sources))
    assert len(codes) > 20
    assert [c for c in sorted(codes) if f"`{c}`" not in doc] == []


def test_shipped_schema_matches_the_model() -> None:
    shipped = json.loads((REPO / "docs" / "topology.schema.json").read_text())
    assert shipped == topology_schema(), "run: tradeops schema > docs/topology.schema.json"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates_with_no_environment(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI validates the examples without their secrets: unset variables are only warnings."""
    for key in [*FAKE_ENV, "TRADEOPS_PROXY_TOKEN"]:
        monkeypatch.delenv(key, raising=False)
    report = validate_file(path, CheckOptions(cpu_count=2))
    assert report.errors == 0, [f.message for f in report.findings]
    assert {f.code for f in report.findings} <= {"env-missing"}
