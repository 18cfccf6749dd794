"""Stand-ins for a mainnet Solana RPC provider, on real sockets.

`SolanaRpcNode` is an ASGI app served by hypercorn's trio worker on 127.0.0.1 (ephemeral port).
It speaks the real Solana JSON-RPC wire format -- request bodies as a validator receives them,
answers shaped as a validator sends them (`{"jsonrpc":"2.0","result":...,"id":...}`, error objects
with the validator's codes and `data`, batches as JSON arrays) -- and records every raw body it
receives, so tests count and compare requests at the server. Faults are data: the next requests
can be answered with an HTTP status, hang, or a JSON-RPC error; the whole node can stall or be
taken off the network (its listener closed) and brought back on the same port.

`HalfHeadersServer` is a raw trio TCP server that reads a request, sends half of the response
headers, and stalls: the node that accepts and then hangs mid-response.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import attrs
import pytest
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction

from tests.asgi_kit import lifespan, read_body

BLOCKHASH = "EkSnNWid2cvwEVnVx9aBqawnmiCNiDgp3gUdkDPTKN1N"
CONTEXT = {"slot": 2792, "apiVersion": "2.0.15"}
SYSTEM_PROGRAM = "11111111111111111111111111111111"
TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
U64_MAX = 18446744073709551615


def signed_transfer(lamports: int = 1000, seed: int = 0) -> Transaction:
    payer = Keypair.from_seed(bytes([seed] * 32))
    to = Keypair.from_seed(bytes([seed + 1] * 32)).pubkey()
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))
    return Transaction([payer], Message([ix], payer.pubkey()), Hash.from_string(BLOCKHASH))


def _account(data: bytes, owner: str, lamports: int) -> dict[str, Any]:
    return {
        "data": [base64.b64encode(data).decode(), "base64"],
        "executable": False,
        "lamports": lamports,
        "owner": owner,
        "rentEpoch": U64_MAX,
        "space": len(data),
    }


def preflight_failure(err: Any, logs: list[str], message: str) -> dict[str, Any]:
    """The error object a validator returns for sendTransaction whose simulation failed."""
    return {
        "code": -32002,
        "message": message,
        "data": {
            "accounts": None,
            "err": err,
            "innerInstructions": None,
            "logs": logs,
            "replacementBlockhash": None,
            "returnData": None,
            "unitsConsumed": 0,
        },
    }


@attrs.frozen
class Fault:
    """What the node does with one request instead of answering it."""

    status: int | None = None  # answer with this HTTP status and a plain-text body
    retry_after: str | None = None  # with this Retry-After header
    hang: bool = False  # accept the request and never answer
    rpc_error: dict[str, Any] | None = None  # answer with this JSON-RPC error object


class SolanaRpcNode:
    """An ASGI app answering Solana JSON-RPC like a validator does (see module docstring)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.bodies: list[bytes] = []
        self.methods: list[str] = []
        self.faults: deque[Fault] = deque()  # consumed one per request, before answering
        self.errors: dict[str, dict[str, Any]] = {}  # method -> JSON-RPC error, every time
        self.stalled = False  # every request hangs, as a node whose RPC threads are stuck
        self.gate: trio.Event | None = None  # when set to an Event, requests wait for it
        self.in_flight = 0
        self.slot = 1000
        self._changed = trio.Event()

    def _note(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def count(self, method: str | None = None) -> int:
        return len(self.methods) if method is None else self.methods.count(method)

    async def wait_until(self, condition: Callable[[], bool], *, timeout: float = 5.0) -> None:
        with trio.fail_after(timeout):
            while not condition():
                await self._changed.wait()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        body = await read_body(receive)
        request = json.loads(body)
        items = request if isinstance(request, list) else [request]
        self.bodies.append(body)
        self.methods.extend(str(item.get("method")) for item in items)
        self.in_flight += 1
        self._note()
        try:
            status, payload, headers = await self._respond(request, items)
        finally:
            self.in_flight -= 1
            self._note()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), *headers]})
        await send({"type": "http.response.body", "body": payload})

    async def _respond(
        self, request: Any, items: list[dict[str, Any]]
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        fault = self.faults.popleft() if self.faults else None
        if self.stalled or (fault is not None and fault.hang):
            await trio.sleep_forever()
        if self.gate is not None:
            await self.gate.wait()
        if fault is not None and fault.status is not None:
            headers = [(b"retry-after", fault.retry_after.encode())] if fault.retry_after else []
            return fault.status, f"upstream said {fault.status}".encode(), headers
        if fault is not None and fault.rpc_error is not None:
            return 200, self._wrap(items[0], error=fault.rpc_error), []
        if isinstance(request, list):
            # A validator may answer a batch in any order: answer it reversed.
            return 200, b"[" + b",".join(self._answer(item) for item in reversed(items)) + b"]", []
        return 200, self._answer(request), []

    def _wrap(self, item: dict[str, Any], *, result: Any = None, error: Any = None) -> bytes:
        out: dict[str, Any] = {"jsonrpc": "2.0", "id": item.get("id")}
        if error is not None:
            out["error"] = error
        else:
            out["result"] = result
        return json.dumps(out).encode()

    def _answer(self, item: dict[str, Any]) -> bytes:
        method = str(item.get("method"))
        if method in self.errors:
            return self._wrap(item, error=self.errors[method])
        params = item.get("params") or []
        return self._wrap(item, result=self._result(method, params))

    def _result(self, method: str, params: list[Any]) -> Any:
        if method == "getHealth":
            return "ok"
        if method == "getSlot":
            self.slot += 1
            return self.slot
        if method == "getBlockHeight":
            return 1200
        if method == "getLatestBlockhash":
            return {"context": CONTEXT, "value": {"blockhash": BLOCKHASH, "lastValidBlockHeight": 1350}}
        if method == "isBlockhashValid":
            return {"context": CONTEXT, "value": params[0] == BLOCKHASH}
        if method == "getBalance":
            return {"context": CONTEXT, "value": 5000}
        if method == "getAccountInfo":
            return {"context": CONTEXT, "value": _account(b"\x01\x02\x03", SYSTEM_PROGRAM, 10**9)}
        if method == "getMultipleAccounts":
            return {"context": CONTEXT, "value": [_account(b"\x01", SYSTEM_PROGRAM, 7), None]}
        if method == "getTokenAccountBalance":
            return {"context": CONTEXT, "value": {
                "amount": "9864", "decimals": 2, "uiAmount": 98.64, "uiAmountString": "98.64"}}
        if method == "getTokenAccountsByOwner":
            return {"context": CONTEXT, "value": [{
                "pubkey": "C2gJg6tKpQs41PRS1nC8aw3ZKNZK3HQQZGVrDFDup5nx",
                "account": _account(bytes(165), TOKEN_PROGRAM, 2039280)}]}
        if method == "getSignaturesForAddress":
            return [{"signature": str(signed_transfer().signatures[0]), "slot": 114, "err": None,
                     "memo": None, "blockTime": 1700000000, "confirmationStatus": "finalized"}]
        if method == "getSignatureStatuses":
            return {"context": CONTEXT, "value": [
                {"slot": 72, "confirmations": None, "err": None, "status": {"Ok": None},
                 "confirmationStatus": "finalized"} if i == 0 else None
                for i in range(len(params[0]))]}
        if method == "getTransaction":
            return self._transaction(params[0])
        if method == "sendTransaction":
            raw = base64.b64decode(params[0])
            return str(VersionedTransaction.from_bytes(raw).signatures[0])
        if method == "simulateTransaction":
            return {"context": CONTEXT, "value": {
                "err": None, "accounts": None, "returnData": None, "unitsConsumed": 150,
                "innerInstructions": None,
                "logs": [f"Program {SYSTEM_PROGRAM} invoke [1]", f"Program {SYSTEM_PROGRAM} success"]}}
        raise AssertionError(f"the stand-in node does not implement {method}")

    def _transaction(self, signature: str) -> Any:
        tx = signed_transfer()
        if signature != str(tx.signatures[0]):
            return None  # unknown to this node: a validator answers null
        return {
            "slot": 430,
            "blockTime": 1700000000,
            "transaction": [base64.b64encode(bytes(tx)).decode(), "base64"],
            "version": "legacy",
            "meta": {
                "err": None, "status": {"Ok": None}, "fee": 5000,
                "preBalances": [1000000, 0, 1], "postBalances": [994000, 1000, 1],
                "innerInstructions": [], "preTokenBalances": [], "postTokenBalances": [],
                "logMessages": [f"Program {SYSTEM_PROGRAM} invoke [1]", f"Program {SYSTEM_PROGRAM} success"],
                "rewards": [], "loadedAddresses": {"writable": [], "readonly": []},
                "computeUnitsConsumed": 150,
            },
        }


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


class NodeServer:
    """Serves a `SolanaRpcNode` with hypercorn; `stop()` closes the listener, `start()` reopens it
    on the same port."""

    def __init__(self, node: SolanaRpcNode, nursery: trio.Nursery, path: str = "/") -> None:
        self.node = node
        self.port = 0
        self.path = path
        self._nursery = nursery
        self._scope: trio.CancelScope | None = None
        self._done = trio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    async def start(self) -> None:
        sock = _bind(self.port)
        self.port = sock.getsockname()[1]
        self._done = trio.Event()
        await self._nursery.start(self._serve, sock)

    async def stop(self) -> None:
        if self._scope is not None:
            self._scope.cancel()
            await self._done.wait()
            self._scope = None

    async def _serve(self, sock: socket.socket, task_status: trio.TaskStatus[None]) -> None:
        config = HypercornConfig()
        config.bind = [f"fd://{sock.detach()}"]
        config.accesslog = None
        config.errorlog = logging.getLogger("tests.rpc.hypercorn")
        config.graceful_timeout = 0.1
        app: Any = self.node
        try:
            with trio.CancelScope() as self._scope:
                await hypercorn_serve(app, config, shutdown_trigger=trio.sleep_forever, mode="asgi",
                                      task_status=_Started(task_status))
        finally:
            self._done.set()


class _Started(trio.TaskStatus[list[str]]):
    def __init__(self, outer: trio.TaskStatus[None]) -> None:
        self._outer = outer

    def started(self, value: list[str] | None = None) -> None:
        self._outer.started()


@asynccontextmanager
async def rpc_nodes(*names: str, path: str = "/") -> AsyncIterator[list[NodeServer]]:
    async with trio.open_nursery() as nursery:
        servers = [NodeServer(SolanaRpcNode(name), nursery, path) for name in names]
        for server in servers:
            await server.start()
        yield servers
        nursery.cancel_scope.cancel()


class HalfHeadersServer:
    """Accepts, reads the whole request, sends half of the response headers, then stalls."""

    def __init__(self) -> None:
        self.requests = 0
        self.port = 0
        self.stalled = trio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def handle(self, stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += await stream.receive_some(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(body) < length:
            body += await stream.receive_some(65536)
        self.requests += 1
        await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Le")
        self.stalled.set()
        await trio.sleep_forever()


@asynccontextmanager
async def half_headers_server() -> AsyncIterator[HalfHeadersServer]:
    server = HalfHeadersServer()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
        server.port = listeners[0].socket.getsockname()[1]
        yield server
        nursery.cancel_scope.cancel()


@pytest.fixture
def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
