"""The states a supervised process goes through. A leaf module: it imports nothing of ours.

stopped ──start──▶ starting ──ready──▶ running ──exit──▶ backoff ──delay──▶ starting
                      │                   │                 │
                      └──exit─────────────┴──▶ exited       └── too many ──▶ fatal
running/starting ──stop──▶ stopping ──exit──▶ stopped
"""

from enum import StrEnum


class ProcessState(StrEnum):
    STARTING = "starting"  # spawned, not yet reported ready
    RUNNING = "running"  # reported ready
    BACKOFF = "backoff"  # exited unexpectedly; waiting to be restarted
    STOPPING = "stopping"  # asked to stop; waiting for it to exit
    STOPPED = "stopped"  # stopped on request, or never started
    EXITED = "exited"  # exited and its policy says not to restart
    FATAL = "fatal"  # crashed too often within its window, or said it cannot work; left down

    @property
    def alive(self) -> bool:
        return self in (ProcessState.STARTING, ProcessState.RUNNING, ProcessState.STOPPING)
