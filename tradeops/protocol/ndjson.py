"""Newline-delimited JSON, sans-I/O: the framing of every control socket we run.

The gateway's socket (its server and `gateway/client.py`, and the proxy's link to it) and the
supervisor's control socket all carry one JSON object per line, each way. JSON because control
traffic is a few messages a second and people debug it with `socat`; ticks never travel on it.
This module is the one copy of that framing: :func:`encode` turns a message into a line and a
:class:`LineDecoder` turns received bytes into messages. Neither touches a socket, so the
blocking, selector and asyncio callers each keep their own I/O and share the rules:

- a line is one JSON *object*; anything else (bad JSON, bad UTF-8, an array) comes out as a
  :class:`Malformed` value in its place, and the caller decides what that costs the peer;
- a line longer than `max_line` bytes is never buffered whole: :attr:`LineDecoder.overflow`
  turns true, and the caller drops the peer (an unbounded line would be unbounded memory).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

#: The longest line a decoder buffers (a request larger than this is malformed).
MAX_LINE: Final = 1 << 20


@dataclass(frozen=True)
class Malformed:
    """A line that is not one JSON object; `reason` says why (for an error reply or a log)."""

    line: bytes
    reason: str


Message = dict[str, Any]


def encode(message: Message) -> bytes:
    """One message as a line: compact JSON and the newline that ends it."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode_line(line: bytes) -> Message | Malformed:
    """One line (without its newline) as a message, or why it is not one."""
    try:
        message = json.loads(line)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        return Malformed(line, str(exc))
    if not isinstance(message, dict):
        return Malformed(line, "not an object")
    return message


class LineDecoder:
    """Bytes in (as they arrive, split anywhere), complete messages out, in order."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Message | Malformed]:
        """The messages `data` completes; a partial last line is kept for the next call."""
        self._buf += data
        out: list[Message | Malformed] = []
        start = 0
        while (end := self._buf.find(b"\n", start)) >= 0:
            out.append(decode_line(bytes(self._buf[start:end])))
            start = end + 1
        del self._buf[:start]
        return out

    @property
    def overflow(self) -> bool:
        """True when the unfinished line is already longer than `max_line`: drop the peer."""
        return len(self._buf) > self.max_line

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line held."""
        return len(self._buf)
