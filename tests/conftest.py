"""Shared test helpers."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture
def make_desk(tmp_path: Path) -> Iterator[Callable[[str, str], Any]]:
    """Desks a test runs through the CLI (tests/e2e/desk.py); after the test each is taken
    down and nothing of it may remain: no process, no shared memory."""
    from tests.e2e.desk import Desk, processes_mentioning, shm_segments

    desks: list[Desk] = []

    def make(name: str, body: str) -> Desk:
        desk = Desk(tmp_path, name, body)
        desks.append(desk)
        return desk

    yield make
    for desk in desks:
        desk.cleanup()
        assert processes_mentioning(str(desk.file)) == [], "a process outlived the test"
        assert shm_segments(desk.bus) == [], "shared memory outlived the test"
