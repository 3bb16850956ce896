"""A websocket's incoming frames read straight off its socket: the upstream reader's hot path.

websocket-client reads a frame in three or more ``recv`` calls (the 2-byte header, the
extended length, then the payload in pieces of at most 16 KiB), each through a Python helper
that wraps errors and may build a selector. A broker's feed is a stream of frames, so the
reader here takes whatever the socket holds, up to 256 KiB, with one ``recv_into`` its own
buffer, and cuts frames out of it (docs/architecture.md has the measurement).
websocket-client still opens the connection (handshake, TLS) and sends every frame (its lock
serialises the writer thread, the pongs and the close reply sent from here).

What a server may send (RFC 6455): data frames (text, binary), fragmented into continuation
frames or not, and control frames (ping, pong, close) between them. A masked frame, reserved
bits (no extension is negotiated), an unknown opcode, a fragmented control frame or a payload
over ``max_size`` is a protocol error: ``WebSocketProtocolException``, and the caller drops
the connection. A timeout keeps what was read, so the next call continues the frame.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Final

import websocket
from websocket import ABNF

__all__ = ["FrameReader"]

#: The read buffer: several frames of a busy feed at once (a larger frame grows it).
BUFFER_SIZE: Final = 256 * 1024
#: The largest message taken (alpaca-py's own limit is 1 MiB; the sim's frames are far below).
MAX_SIZE: Final = 16 * 1024 * 1024

_CONT, _TEXT, _BINARY = ABNF.OPCODE_CONT, ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY
_CLOSE, _PING, _PONG = ABNF.OPCODE_CLOSE, ABNF.OPCODE_PING, ABNF.OPCODE_PONG


class FrameReader:
    """Reads ``ws``'s messages: :meth:`recv` returns (opcode, payload) as websocket-client's
    ``recv_data(control_frame=True)`` does: a whole message (its fragments joined) or one
    control frame. It answers a ping with a pong and a close with a close, as that does."""

    def __init__(self, ws: websocket.WebSocket, max_size: int = MAX_SIZE) -> None:
        self._ws = ws
        sock = ws.sock
        if sock is None:
            raise websocket.WebSocketConnectionClosedException("the websocket is not open")
        self._sock: socket.socket = sock
        self._max = max_size
        # One buffer for the connection's life, read into: a fresh 256 KiB bytes object per
        # recv costs more than the recv (an mmap and page faults each time).
        self._buf = bytearray(BUFFER_SIZE)
        self._view = memoryview(self._buf)
        self._start = self._end = 0  # the unread bytes are _buf[_start:_end]
        self._parts: list[bytes] = []  # the fragments of a message so far
        self._opcode = 0  # that message's opcode

    def recv(self) -> tuple[int, bytes]:
        while True:
            fin, opcode, payload = self._frame()
            if opcode in (_BINARY, _TEXT):
                if self._parts:
                    raise websocket.WebSocketProtocolException(
                        "a new message began before the last one's final fragment")
                if fin:
                    return opcode, payload
                self._opcode, self._parts = opcode, [payload]
            elif opcode == _CONT:
                if not self._parts:
                    raise websocket.WebSocketProtocolException("a continuation of no message")
                self._parts.append(payload)
                if sum(map(len, self._parts)) > self._max:
                    raise websocket.WebSocketProtocolException(
                        f"a message over {self._max} bytes")
                if fin:
                    parts, self._parts = self._parts, []
                    return self._opcode, b"".join(parts)
            else:  # a control frame: whole, never fragmented, at most 125 bytes
                if not fin or len(payload) > 125:
                    raise websocket.WebSocketProtocolException("a malformed control frame")
                if opcode == _PING:
                    self._ws.pong(payload)
                elif opcode == _CLOSE:
                    with contextlib.suppress(OSError, websocket.WebSocketException):
                        self._ws.send_close()  # the other side may be gone already
                    # The handshake is done: websocket-client's close() must not send a
                    # second close frame or wait for an answer (it never saw this one).
                    self._ws.connected = False
                return opcode, payload

    def _frame(self) -> tuple[bool, int, bytes]:
        """The next frame: (final, opcode, payload)."""
        if self._end - self._start < 2:
            self._fill(2)
        buf, pos = self._buf, self._start
        b0, b1 = buf[pos], buf[pos + 1]
        if b1 & 0x80:
            raise websocket.WebSocketProtocolException("a masked frame from the server")
        if b0 & 0x70:
            raise websocket.WebSocketProtocolException("reserved bits set (no extension)")
        opcode = b0 & 0x0F
        if opcode not in (_CONT, _TEXT, _BINARY, _CLOSE, _PING, _PONG):
            raise websocket.WebSocketProtocolException(f"unknown opcode {opcode}")
        size, head = b1 & 0x7F, 2
        if size == 126:
            if self._end - pos < 4:
                pos = self._fill(4)
            size, head = int.from_bytes(self._buf[pos + 2 : pos + 4], "big"), 4
        elif size == 127:
            if self._end - pos < 10:
                pos = self._fill(10)
            size, head = int.from_bytes(self._buf[pos + 2 : pos + 10], "big"), 10
        if size > self._max:
            raise websocket.WebSocketProtocolException(f"a frame of {size} bytes")
        if self._end - pos < head + size:
            pos = self._fill(head + size)
        end = pos + head + size
        self._start = end
        return bool(b0 & 0x80), opcode, bytes(self._view[pos + head : end])

    def _fill(self, need: int) -> int:
        """Read until ``need`` unread bytes are buffered; return where they start. A timeout
        keeps what was read for the next call."""
        if self._start + need > len(self._buf):  # no room after the unread bytes: move them
            held = self._end - self._start
            if need > len(self._buf):  # a frame larger than the buffer: a larger buffer
                self._view.release()
                grown = bytearray(need)
                grown[:held] = self._buf[self._start : self._end]
                self._buf, self._view = grown, memoryview(grown)
            else:
                self._view[:held] = self._view[self._start : self._end]
            self._start, self._end = 0, held
        view, sock = self._view, self._sock
        while self._end - self._start < need:
            try:
                got = sock.recv_into(view[self._end :])
            except TimeoutError as exc:  # socket.timeout
                raise websocket.WebSocketTimeoutException(str(exc) or "timed out") from None
            if not got:
                raise websocket.WebSocketConnectionClosedException(
                    "the broker closed the connection")
            self._end += got
        return self._start
