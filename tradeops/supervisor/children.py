"""One supervised child process: how it is started, and what it says on its two pipes.

A child runs `python -m tradeops.ROLE ...` in a session of its own (so a stop signals its
whole process group), started without a `preexec_fn` so Python can use vfork (a start costs
under a millisecond, not a fork of the supervisor); the child sets `PR_SET_PDEATHSIG` itself
as its first act (process/parent.py), so it dies with the supervisor, however the supervisor
dies. Its stdout and stderr go to one pipe that the supervisor prefixes with the child's
name; a second pipe is its report channel: one ready line, then a line for each problem that
degrades it (a disk it cannot write) and for its end (a fatal reason, which makes it `fatal`
instead of restarted).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tradeops.process import child as contract
from tradeops.process.paths import RunPaths
from tradeops.process.spec import ROLE_MODULES, ProcessSpec
from tradeops.runtime.config import CONFIG_FD
from tradeops.supervisor.lifecycle import Proc

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
#: The largest configuration handed over on a pipe (Linux's default pipe-max-size).
CONFIG_MAX = 1 << 20


@dataclass
class Child:
    """A process of the desk: its spec, its lifecycle state, and its pipes while it runs."""

    spec: ProcessSpec
    proc: Proc
    popen: subprocess.Popen[bytes] | None = None
    ready_r: int | None = None
    out: bytearray = field(default_factory=bytearray)
    reports: bytearray = field(default_factory=bytearray)  # a partial report line
    detail: dict[str, Any] = field(default_factory=dict)  # from its ready line
    problems: dict[str, str] = field(default_factory=dict)  # area -> why it is degraded
    fatal: str = ""  # why it cannot work, said just before it exits


def role_argv(spec: ProcessSpec, topology_file: str, paths: RunPaths,
              sim_url: str | None, port: int | None) -> list[str]:
    """The command line of a role: `python -m tradeops.ROLE --topology ... --name ...`."""
    argv = [sys.executable, "-m", ROLE_MODULES[spec.role], "--topology", topology_file,
            "--name", spec.name, "--run-dir", str(paths.run_dir)]
    if spec.role == "gateway" and sim_url:
        argv += ["--url", sim_url]
    if spec.role == "sim" and port:
        argv += ["--port", str(port)]  # a restarted sim keeps its address
    if spec.node:
        argv += ["--node", spec.node]
    return argv


def start(c: Child, argv: list[str], env: Mapping[str, str], config: bytes | None = None
          ) -> subprocess.Popen[bytes]:
    """Start `c` (OSError when it cannot be); its pipes are left non-blocking on `c`.

    `config` (a strategy host's resolved configuration, runtime/config.py) is handed over on
    a pipe named by TRADEOPS_CONFIG_FD, written whole before the child starts; when the pipe
    cannot hold it, the child is started without it (and reads the topology file itself)."""
    ready_r, ready_w = os.pipe()
    extra = {contract.READY_FD: str(ready_w), contract.SUPERVISOR_PID: str(os.getpid()),
             "PYTHONUNBUFFERED": "1"}
    config_r = _config_pipe(config) if config is not None else None
    if config_r is not None:
        extra[CONFIG_FD] = str(config_r)
    try:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(ready_w,) if config_r is None else (ready_w, config_r),
            env={**env, **extra},
            start_new_session=True,
        )
    except OSError:
        os.close(ready_r)
        raise
    finally:
        os.close(ready_w)
        if config_r is not None:
            os.close(config_r)
    c.popen, c.ready_r = popen, ready_r
    assert popen.stdout is not None
    os.set_blocking(popen.stdout.fileno(), False)
    os.set_blocking(ready_r, False)
    return popen


def _config_pipe(data: bytes) -> int | None:
    """The read end of a pipe holding all of `data` and then its end; None when the pipe
    cannot hold it (the supervisor never blocks on a child)."""
    if len(data) > CONFIG_MAX:
        return None
    r, w = os.pipe()
    try:
        if len(data) > 65536:
            with contextlib.suppress(OSError):  # up to /proc/sys/fs/pipe-max-size (1 MiB)
                fcntl.fcntl(w, F_SETPIPE_SZ, len(data))
        os.set_blocking(w, False)
        if os.write(w, data) != len(data):
            os.close(r)
            return None
    except OSError:  # BlockingIOError: larger than the pipe
        os.close(r)
        return None
    finally:
        os.close(w)
    return r


def read_output(c: Child, console: Callable[[str], None]) -> bool:
    """Pass on the child's complete output lines, prefixed; False once its pipe has closed."""
    assert c.popen is not None and c.popen.stdout is not None
    try:
        data = os.read(c.popen.stdout.fileno(), 65536)
    except BlockingIOError:
        return True
    except OSError:
        data = b""
    if not data:
        if c.out:
            console(f"{c.spec.name} | {c.out.decode(errors='replace')}")
            c.out.clear()
        return False
    c.out += data
    while (end := c.out.find(b"\n")) >= 0:
        console(f"{c.spec.name} | {c.out[:end].decode(errors='replace')}")
        del c.out[: end + 1]
    return True


def read_reports(c: Child) -> tuple[bool, bool]:
    """Read the report pipe: (the child said it is ready, the pipe has closed).

    The ready line's details are kept in `c.detail`; problem lines update `c.problems`."""
    assert c.ready_r is not None
    try:
        data = os.read(c.ready_r, 65536)
    except BlockingIOError:
        return False, False
    except OSError:
        data = b""
    c.reports += data
    ready = False
    while (end := c.reports.find(b"\n")) >= 0:
        line = bytes(c.reports[:end])
        del c.reports[: end + 1]
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if not isinstance(message, dict):
            continue
        if message.get("ready"):
            c.detail.update(message)
            ready = True
        elif "problem" in message:
            c.problems[str(message["problem"])] = str(message.get("reason", ""))
        elif "fatal" in message:
            c.fatal = str(message["fatal"])
        elif "cleared" in message:
            c.problems.pop(str(message["cleared"]), None)
        elif isinstance(message.get("detail"), dict):
            c.detail.update(message["detail"])
    return ready, not data


def killpg(pid: int, sig: int) -> None:
    """Signal a child's whole process group (the child itself when the group is gone)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def kill_now(c: Child) -> None:
    """SIGKILL a child's group and wait for it (the supervisor is leaving)."""
    if c.popen is not None and c.popen.poll() is None:
        killpg(c.popen.pid, signal.SIGKILL)
        c.popen.wait(5)
