"""Shared test helpers."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[..., Path]:
    """Write a dedented YAML text to a file in tmp_path and return its path."""

    def write(text: str, name: str = "topology.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write
