"""A bundled process's log lines say which strategy wrote them."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from tradeops import Strategy
from tradeops.process import child


@pytest.fixture
def process_log(tmp_path: Path) -> Iterator[Path]:
    path = child.setup_logging("bundle", tmp_path, "INFO")
    yield path
    logger.remove()
    logger.add(sys.stderr)


def test_a_strategy_s_own_lines_carry_its_name(process_log: Path) -> None:
    Strategy("momo").log.info("bought {}", "AAPL")
    logger.info("host line")
    lines = process_log.read_text().splitlines()
    assert lines[0].endswith("| INFO    | momo | bought AAPL")
    assert lines[1].endswith("| INFO    | host line")


def test_lines_logged_while_a_strategy_s_callback_runs_carry_its_name(
    process_log: Path,
) -> None:
    with logger.contextualize(strategy="ticklog"):  # as the host runs each callback
        logger.warning("subscribing {} was refused", "XYZ")
    last = process_log.read_text().rstrip()
    assert last.endswith("| WARNING | ticklog | subscribing XYZ was refused")



def test_a_process_named_after_its_one_strategy_does_not_repeat_the_name(
    tmp_path: Path,
) -> None:
    path = child.setup_logging("ticklog", tmp_path, "INFO")
    try:
        Strategy("ticklog").log.info("logging every 50th tick")
    finally:
        logger.remove()
        logger.add(sys.stderr)
    assert path.read_text().rstrip().endswith("| INFO    | logging every 50th tick")
