"""The upstream's frame reader against a real websocket server on loopback that sends frames
byte for byte as a test script says: every length form, fragments with a ping between them,
a frame cut by a timeout, close, and what a server must never send."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
import websocket

from tradeops.gateway.frames import FrameReader

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(30)]
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
ABNF = websocket.ABNF


def frame(opcode: int, payload: bytes, fin: bool = True, mask: bool = False,
          rsv: int = 0) -> bytes:
    """One frame as a server writes it (masked only to test that it is refused)."""
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    size = len(payload)
    bit = 0x80 if mask else 0
    if size < 126:
        head += bytes([bit | size])
    elif size < 1 << 16:
        head += bytes([bit | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([bit | 127]) + size.to_bytes(8, "big")
    if mask:
        key = b"\x01\x02\x03\x04"
        payload = key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + payload


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """One (masked) frame from the client."""
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, "the client closed"
            data += chunk
        return data

    b0, b1 = exactly(2)
    size = b1 & 0x7F
    if size == 126:
        size = int.from_bytes(exactly(2), "big")
    key = exactly(4)
    body = exactly(size)
    return b0 & 0x0F, bytes(b ^ key[i % 4] for i, b in enumerate(body))


class Server:
    """Accepts one websocket client, then runs ``script(sock)`` on a thread."""

    def __init__(self, script: Callable[[socket.socket], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"ws://127.0.0.1:{self.listener.getsockname()[1]}/"
        self.script = script
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            conn, _ = self.listener.accept()
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(4096)
                key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                           if line.lower().startswith(b"sec-websocket-key"))  # fmt: skip
                accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
                conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept
                             + b"\r\n\r\n")  # fmt: skip
                self.script(conn)
        except BaseException as exc:  # reported by the test
            self.error = exc

    def close(self) -> None:
        self.thread.join(10)
        self.listener.close()
        if self.error is not None:
            raise self.error


def serve(script: Callable[[socket.socket], None], timeout: float = 10.0
          ) -> Iterator[tuple[FrameReader, websocket.WebSocket, Server]]:
    server = Server(script)
    ws = websocket.create_connection(server.url, timeout=timeout, enable_multithread=True)
    try:
        yield FrameReader(ws, max_size=1 << 20), ws, server
    finally:
        ws.close()
        server.close()


def test_every_length_form_and_several_frames_in_one_read() -> None:
    sizes = [0, 5, 125, 126, 1000, 65535, 65536, 200_000, 600_000]  # the last > the buffer
    messages = [bytes([i % 251]) * size for i, size in enumerate(sizes)]

    def script(sock: socket.socket) -> None:
        sock.sendall(b"".join(frame(ABNF.OPCODE_BINARY, m) for m in messages)
                     + frame(ABNF.OPCODE_TEXT, "héllo".encode()))  # fmt: skip
        read_frame(sock)  # wait for the client's close

    for reader, _ws, _ in serve(script):
        assert [reader.recv() for _ in sizes] == [(ABNF.OPCODE_BINARY, m) for m in messages]
        assert reader.recv() == (ABNF.OPCODE_TEXT, "héllo".encode())


def test_fragments_are_joined_and_a_ping_between_them_is_answered() -> None:
    pong = threading.Event()
    answered: list[tuple[int, bytes]] = []

    def script(sock: socket.socket) -> None:
        sock.sendall(frame(ABNF.OPCODE_TEXT, b"hel", fin=False)
                     + frame(ABNF.OPCODE_PING, b"are you there")
                     + frame(ABNF.OPCODE_CONT, b"lo", fin=False)
                     + frame(ABNF.OPCODE_CONT, b"!"))  # fmt: skip
        answered.append(read_frame(sock))
        pong.set()
        read_frame(sock)

    for reader, _, _ in serve(script):
        assert reader.recv() == (ABNF.OPCODE_PING, b"are you there")
        assert reader.recv() == (ABNF.OPCODE_TEXT, b"hello!")
        assert pong.wait(10)
        assert answered == [(ABNF.OPCODE_PONG, b"are you there")]


def test_a_frame_cut_by_a_timeout_is_finished_by_the_next_call() -> None:
    go_on = threading.Event()
    whole = frame(ABNF.OPCODE_BINARY, b"x" * 5000)

    def script(sock: socket.socket) -> None:
        sock.sendall(whole[:2000])
        assert go_on.wait(10)
        sock.sendall(whole[2000:])
        read_frame(sock)

    for reader, _, _ in serve(script, timeout=0.3):
        with pytest.raises(websocket.WebSocketTimeoutException):
            reader.recv()
        go_on.set()
        assert reader.recv() == (ABNF.OPCODE_BINARY, b"x" * 5000)


def test_a_close_is_returned_and_answered() -> None:
    replies: list[tuple[int, bytes]] = []

    def script(sock: socket.socket) -> None:
        sock.sendall(frame(ABNF.OPCODE_CLOSE, (1001).to_bytes(2, "big") + b"going away"))
        replies.append(read_frame(sock))

    for reader, ws, server in serve(script):
        assert reader.recv() == (ABNF.OPCODE_CLOSE, (1001).to_bytes(2, "big") + b"going away")
        server.thread.join(10)
        assert replies and replies[0][0] == ABNF.OPCODE_CLOSE
        assert not ws.connected  # its close() sends no second close frame


@pytest.mark.parametrize(("data", "says"), [
    (frame(ABNF.OPCODE_BINARY, b"abc", mask=True), "masked"),
    (frame(ABNF.OPCODE_BINARY, b"abc", rsv=4), "reserved"),
    (frame(3, b"abc"), "unknown opcode"),
    (frame(ABNF.OPCODE_BINARY, b"x" * ((1 << 20) + 1)), "bytes"),
    (frame(ABNF.OPCODE_PING, b"p", fin=False), "control"),
    (frame(ABNF.OPCODE_CONT, b"p"), "continuation of no message"),
    (frame(ABNF.OPCODE_TEXT, b"a", fin=False) + frame(ABNF.OPCODE_TEXT, b"b"), "new message"),
], ids=["masked", "rsv", "opcode", "too-big", "fragmented-ping", "stray-cont", "interleaved"])
def test_what_a_server_must_not_send_is_a_protocol_error(data: bytes, says: str) -> None:
    def script(sock: socket.socket) -> None:
        sock.sendall(data)
        sock.settimeout(5)
        with contextlib.suppress(AssertionError, OSError):
            read_frame(sock)  # the client may close without a close frame

    for reader, _, _ in serve(script):
        with pytest.raises(websocket.WebSocketProtocolException, match=says):
            reader.recv()


def test_a_connection_closed_mid_frame_says_so() -> None:
    def script(sock: socket.socket) -> None:
        sock.sendall(frame(ABNF.OPCODE_BINARY, b"y" * 3000)[:1000])
        sock.shutdown(socket.SHUT_WR)

    for reader, _, _ in serve(script):
        with pytest.raises(websocket.WebSocketConnectionClosedException):
            reader.recv()
