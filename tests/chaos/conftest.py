"""Real loopback parts for the chaos tests: an upstream whose accepted connections the test holds,
an in-process fault proxy, its HTTP API, and byte helpers with deadlines."""

from __future__ import annotations

import re
import selectors
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from functools import partial
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing

from chaos.fault_proxy import FaultProxy, open_fault_proxy
from chaos.proxy_api import serve_api


@attrs.frozen
class Upstream:
    """A TCP server on loopback; every accepted connection is handed to the test (server side)."""

    port: int
    accepted: trio.MemoryReceiveChannel[trio.SocketStream]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def next_connection(self, within: float = 5.0) -> trio.SocketStream:
        with trio.fail_after(within):
            return await self.accepted.receive()


@pytest.fixture
async def upstream(nursery: trio.Nursery) -> Upstream:
    send, receive = trio.open_memory_channel[trio.SocketStream](16)

    async def handler(stream: trio.SocketStream) -> None:
        await send.send(stream)
        await trio.sleep_forever()  # the test owns the stream; serve_tcp closes it at teardown

    listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    port: int = listeners[0].socket.getsockname()[1]
    return Upstream(port, receive)


@pytest.fixture
async def fault_proxy() -> AsyncIterator[FaultProxy]:
    async with open_fault_proxy(seed=7) as registry:
        yield registry


@pytest.fixture
async def api_url(nursery: trio.Nursery, fault_proxy: FaultProxy) -> str:
    port = await nursery.start(serve_api, fault_proxy, "127.0.0.1", 0)
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def slow_clock() -> trio.testing.MockClock:
    """Virtual time that jumps only after the loop has been idle 20 ms of real time, so bytes in
    flight on loopback are delivered before any timer fires."""
    return trio.testing.MockClock(autojump_threshold=0.02)


async def connect(port: int, within: float = 5.0) -> trio.SocketStream:
    with trio.fail_after(within):
        return await trio.open_tcp_stream("127.0.0.1", port)


async def receive_exactly(stream: trio.SocketStream, size: int, within: float = 30.0) -> bytes:
    data = bytearray()
    with trio.fail_after(within):
        while len(data) < size:
            chunk = await stream.receive_some(size - len(data))
            if not chunk:
                break
            data += chunk
    return bytes(data)


async def receive_until_eof(stream: trio.SocketStream, within: float = 30.0) -> tuple[bytes, int]:
    """All bytes until the peer closes, and how many reads delivered them."""
    data = bytearray()
    reads = 0
    with trio.fail_after(within):
        while chunk := await stream.receive_some(65536):
            data += chunk
            reads += 1
    return bytes(data), reads


# --- the fault proxy as a separate process (`python -m chaos proxy`) and a threaded echo server

ROOT = Path(__file__).resolve().parents[2]
ANNOUNCE = re.compile(rb"toxiproxy API on http://127\.0\.0\.1:(\d+)")


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo_server() -> Iterator[str]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def start_proxy_process(*extra: str) -> tuple[subprocess.Popen[bytes], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "chaos", "proxy", "--port", "0", *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 20
    line = b""
    while time.monotonic() < deadline:  # wait for the announcement, bounded
        if not selector.select(timeout=deadline - time.monotonic()):
            break
        line = process.stdout.readline()
        if not line or (match := ANNOUNCE.search(line)):
            break
    selector.close()
    if not line or match is None:
        process.kill()
        errors = process.stderr.read() if process.stderr else b""
        raise AssertionError(f"proxy did not start: {line!r} {errors!r}")
    return process, int(match.group(1))


def stop_process(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()


def echo_through(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(payload)
        received = b""
        while len(received) < len(payload):
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
        return received
