"""What every supervised process does first, and how it talks back to its supervisor.

The supervisor starts each role as `python -m tradeops.ROLE ...` (see `entry.py`) in a new
session. The child then:

- dies with its supervisor: the child asks for `PR_SET_PDEATHSIG` itself as its first act
  (process/parent.py), which delivers SIGTERM when the supervisor dies, then checks that its
  parent is still the supervisor (it may have died before the child got this far);
- pins itself to its cores (`os.sched_setaffinity`) and sets up its own logging: loguru to
  `run_dir/logs/NAME.log` (rotated) and to stderr, which the supervisor prefixes with the name;
- raises its soft limit on open files to the hard limit (`open_files`), as any process may:
  a soft limit of 1,024 (or lower, in some containers and units) would otherwise stop the
  proxy's `accept` at about that many clients, with nothing in `status`;
- reports ready by writing one line to the file descriptor named by `TRADEOPS_READY_FD`, and
  keeps that pipe as its report channel: a problem that degrades it (a disk it cannot write)
  and its end are further lines there, which `tradeops status` shows. The pipe needs no
  disk, so the report gets through when the run dir is full;
- writes its status for `tradeops status` to `run_dir/state/NAME.json` (atomically). A write
  that fails (a full or read-only disk) is reported and retried on the next call; it never
  raises, so a role that serves data keeps serving.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import resource
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from tradeops.process.parent import SUPERVISOR_PID as SUPERVISOR_PID
from tradeops.process.parent import check_parent as check_parent

if TYPE_CHECKING:
    from loguru import Record

READY_FD = "TRADEOPS_READY_FD"
LOG_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level:<7} | {message}"
CONSOLE_FORMAT = "{level:<7} | {message}"


def pin(cpus: list[int] | None) -> None:
    if not cpus:
        return
    available = os.sched_getaffinity(0)
    usable = [c for c in cpus if c in available]
    if usable:
        os.sched_setaffinity(0, usable)
    if len(usable) < len(cpus):
        logger.warning(
            "cores {} are not available here; pinned to {}",
            sorted(set(cpus) - set(usable)),
            usable or "no change",
        )


def open_files() -> int:
    """Raise this process's soft limit on open files to its hard limit; return the limit now
    (-1: unlimited). Go's runtime does the same at start: past the soft limit a server's
    `accept` fails with EMFILE, and raising it is never worse (a process that would go past
    1,024 files would fail either way)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return -1 if soft == resource.RLIM_INFINITY else soft


def setup_logging(name: str, run_dir: Path, level: str) -> Path:
    """Log to run_dir/logs/NAME.log (rotated at 10 MB, 5 kept) and to stderr.

    The file sink never raises into the code that logs: a line it cannot write (a full
    disk) is counted and reported (`report_problem("log", ...)`), and writing resumes by
    itself when space returns. stderr (a pipe to the supervisor) always gets the line."""
    from tradeops.process.logfile import LogFile

    log_dir = run_dir / "logs"
    with contextlib.suppress(OSError):  # reported by the sink when it cannot open the file
        log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"{name}.log"
    logger.remove()
    logger.add(sys.stderr, level=level, format=_with_strategy(CONSOLE_FORMAT, name),
               colorize=False)
    sink = LogFile(path, on_problem=lambda reason: _problem("log", reason))
    logger.add(sink.write, level=level, format=_with_strategy(LOG_FORMAT, name), colorize=False)
    return path


def _with_strategy(fmt: str, process: str = "") -> Callable[[Record], str]:
    """`fmt`, with the strategy's name before the message when a line is bound to one
    (`strategy.log`, or the host's lines while a strategy's callback runs), so a bundled
    process's lines read `INFO    | momo | message`. A process named after its one strategy
    is not told its own name twice."""
    plain = fmt + "\n{exception}"
    tagged = fmt.replace("{message}", "{extra[strategy]} | {message}") + "\n{exception}"
    return lambda record: (
        tagged if record["extra"].get("strategy") not in (None, process) else plain)


_report_fd: int | None = None
_problems: dict[str, str] = {}


def report_ready(detail: dict[str, Any] | None = None) -> None:
    """Tell the supervisor this process is ready (once; later calls do nothing). The pipe
    stays open as the report channel (`report_problem`)."""
    global _report_fd
    fd = os.environ.pop(READY_FD, None)
    if fd is None:
        return
    _report_fd = int(fd)
    with contextlib.suppress(OSError):  # nothing this process starts may hold the pipe open
        os.set_inheritable(_report_fd, False)
    _report({"ready": True, **(detail or {})})
    for area, reason in _problems.items():  # what went wrong before we were ready
        _report({"problem": area, "reason": reason})


#: The exit status of a process that reported a fatal reason (:func:`report_fatal`).
FATAL_EXIT = 3


def report_fatal(reason: str) -> None:
    """Say that this process cannot work for `reason` and that a restart would not help (a
    disk it must write is full); the role exits right after. The supervisor then shows it
    `fatal` with the reason and leaves it down until `tradeops start` or `restart`. Works
    before `report_ready` too."""
    global _report_fd
    _stderr(f"fatal: {reason}")
    fd = os.environ.pop(READY_FD, None)
    if fd is not None and _report_fd is None:
        _report_fd = int(fd)
    _report({"fatal": reason})


def report_problem(area: str, reason: str | None) -> None:
    """Say that `area` (state, log, journal) is degraded for `reason`, or with None that it
    works again. Only changes are sent; each goes to stderr too."""
    _problem(area, reason)


def report_detail(**fields: Any) -> None:
    """Tell the supervisor something it keeps with this process (e.g. the orders a stopping
    gateway could not get cancelled), over the report pipe."""
    _report({"detail": fields})


def problems() -> dict[str, str]:
    """This process's degraded areas and why (for its own status)."""
    return dict(_problems)


def _problem(area: str, reason: str | None) -> None:
    if reason is None:
        if _problems.pop(area, None) is not None:
            _stderr(f"{area} works again")
            _report({"cleared": area})
    elif _problems.get(area) != reason:
        _problems[area] = reason
        _stderr(f"degraded: {area}: {reason}")
        _report({"problem": area, "reason": reason})


def _stderr(message: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"WARNING | {message}\n")
        sys.stderr.flush()


def _report(message: dict[str, Any]) -> None:
    global _report_fd
    if _report_fd is None:
        return
    try:
        os.write(_report_fd, (json.dumps(message) + "\n").encode())
    except OSError:  # the supervisor went away; PDEATHSIG will end us
        with contextlib.suppress(OSError):
            os.close(_report_fd)
        _report_fd = None


def write_state(run_dir: Path, name: str, state: dict[str, Any]) -> bool:
    """Publish this process's status for `tradeops status` (atomic replace). Never raises:
    False when it could not be written (reported as the `state` problem; the next call
    tries again, and a success clears the problem)."""
    directory = run_dir / "state"
    tmp = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
        with os.fdopen(fd, "w") as f:
            json.dump(state, f)
        os.replace(tmp, directory / f"{name}.json")
    except OSError as exc:
        if tmp is not None:  # a half-written file must not take the space that is left
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        _problem("state", f"cannot write {directory}: {exc.strerror or exc}")
        return False
    _problem("state", None)
    return True


def read_state(run_dir: Path, name: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((run_dir / "state" / f"{name}.json").read_text())
        return data
    except (OSError, ValueError):
        return {}


_stop_fd: int | None = None


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set `stop` (the role's loop notices and shuts down cleanly), and
    make `stop_wakeup()` readable. SIGUSR1 prints every thread's stack to the log, for a
    process that seems stuck."""
    global _stop_fd
    faulthandler.register(signal.SIGUSR1, all_threads=True)

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    if _stop_fd is None and threading.current_thread() is threading.main_thread():
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        _stop_fd = r


def stop_wakeup() -> int | None:
    """A file descriptor that becomes readable when a stop signal arrives: a loop that sleeps
    in poll() waits on it too, so a stop ends the sleep at once instead of at its timeout
    (Python retries an interrupted poll after running the handler). None before
    `stop_on_signals`."""
    return _stop_fd
