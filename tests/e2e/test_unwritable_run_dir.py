"""A run dir that fills up, or cannot be written at all, on a real desk.

A small tmpfs is mounted as the desk's run dir, which needs permission to mount (root, as on
the project's machines); without it these tests are skipped with that reason.
"""

from __future__ import annotations

import contextlib
import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.desk import Desk
from tests.e2e.test_desk import desk_body, recorder
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]


def _mount(where: Path, options: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True, check=False)
    return done.returncode == 0


@contextlib.contextmanager
def tmpfs(where: Path, options: str) -> Iterator[None]:
    if not _mount(where, options):
        pytest.skip("mounting a tmpfs needs privileges this machine does not give")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def fill(directory: Path) -> Path:
    """Write until the file system is full; the file that fills it."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    with contextlib.suppress(OSError), filler.open("ab", buffering=0) as f:
        while True:  # the last few bytes
            f.write(b"\0")
    return filler


def test_a_full_run_dir_leaves_the_desk_serving_and_it_recovers(
    make_desk: object, tmp_path: Path
) -> None:
    desk: Desk = make_desk("e2efull", desk_body(tmp_path, recorder("rec", tmp_path)))  # type: ignore[operator]
    with tmpfs(desk.run_dir, "size=8m"):
        desk.up()
        gateway = desk.proc("gateway-sim")
        wait_for(lambda: len(desk.lines("rec")) > 10, what="first ticks")
        filler = fill(desk.run_dir)
        wait_for(lambda: "state" in desk.proc("gateway-sim")["problems"], timeout=30,
                 what="the gateway to report that it cannot write its state")
        count = len(desk.lines("rec"))
        wait_for(lambda: len(desk.lines("rec")) > count + 20, timeout=30,
                 what="ticks to keep reaching the strategy while the disk is full")
        now = desk.proc("gateway-sim")
        assert now["pid"] == gateway["pid"] and now["restarts"] == 0, "the gateway restarted"
        assert desk.proc("rec")["restarts"] == 0, "the host restarted"
        text = desk.cli("status", "--file", str(desk.file)).stdout
        assert "DEGRADED" in text and "state" in text
        filler.unlink()  # space returns
        wait_for(lambda: not any(desk.proc(n)["problems"] for n in ("gateway-sim", "rec")),
                 timeout=30, what="the problems to clear once space returned")
        assert desk.down().returncode == 0


def test_a_read_only_run_dir_is_a_one_line_error(make_desk: object, tmp_path: Path) -> None:
    desk: Desk = make_desk("e2eroro", desk_body(tmp_path, recorder("rec", tmp_path)))  # type: ignore[operator]
    with tmpfs(desk.run_dir, "size=1m,ro"):
        for args in (("up", "--detach", str(desk.file)), ("up", str(desk.file))):
            result = desk.cli(*args)
            assert result.returncode == 1, result.stdout + result.stderr
            assert "Traceback" not in result.stderr
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and "cannot use run dir" in lines[0], result.stderr
            assert "Read-only file system" in lines[0]
