"""Judging whether a desk came up, and the one-line reason when a process did not."""

from __future__ import annotations

import os
from typing import Any

from tradeops.supervisor.console import LastWords, split
from tradeops.supervisor.outcome import judge, reporter, wait_verdict


def row(name: str, state: str, reason: str = "") -> dict[str, Any]:
    return {"name": name, "state": state, "reason": reason}


def test_split_reads_the_prefixes() -> None:
    assert split("proxy | ERROR   | bind failed") == ("proxy", "ERROR", "bind failed")
    said = "OSError: [Errno 98] in use"
    assert split(f"proxy | {said}") == ("proxy", None, said)


def test_the_reason_is_what_the_process_said_last_about_a_problem() -> None:
    shown: list[str] = []
    words = LastWords(shown.append)
    words("proxy | INFO    | starting")
    words("proxy | ERROR   | proxy failed")
    words("proxy | OSError: address 127.0.0.1:8765 already in use")
    words("proxy | WARNING | exited with status 1; restarting in 0.5s")  # the lifecycle's
    words("rec | INFO    | running rec")
    assert len(shown) == 5  # everything still reaches the console
    verdict = judge(
        [row("proxy", "backoff", "exited with status 1"), row("rec", "running")], words.of
    )
    assert not verdict.ok
    assert verdict.problems == ["proxy: backoff: OSError: address 127.0.0.1:8765 already in use"]


def test_a_crash_without_a_word_is_named_by_how_it_ended_not_by_a_warning_before() -> None:
    words = LastWords(lambda line: None)
    words("group | WARNING | sim is not safe to trade: no market data yet")
    words("slow | INFO    | connecting to the gateway")
    verdict = judge([row("group", "backoff", "exited with status 3"), row("slow", "starting")],
                    words.problem, words.last)  # fmt: skip
    assert verdict.problems == ["group: backoff: exited with status 3",
                                "slow: starting: connecting to the gateway"]


def test_without_words_the_lifecycle_reason_is_given() -> None:
    verdict = judge([row("g", "fatal", "exited with status 3; left down")], lambda n: "")
    assert verdict.problems == ["g: fatal: exited with status 3; left down"]


def test_ready_only_when_every_process_runs() -> None:
    assert judge([row("a", "running"), row("b", "running")], lambda n: "").ok


def test_the_verdict_crosses_the_pipe() -> None:
    r, w = os.pipe()
    reporter(w, lambda: judge([row("a", "exited", "exited with status 0")], lambda n: ""))()
    verdict = wait_verdict(r, 5)
    os.close(r)
    assert verdict is not None and verdict.problems == ["a: exited: exited with status 0"]


def test_a_supervisor_that_ends_without_a_verdict_reads_as_none() -> None:
    r, w = os.pipe()
    os.close(w)
    assert wait_verdict(r, 5) is None
    os.close(r)
