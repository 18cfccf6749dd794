"""JSON-RPC 2.0 over HTTP for the local chain: hypercorn's trio worker serving a small ASGI app.

Owns: the framing a validator's RPC port has -- POST bodies holding one request or a batch
(a JSON array), notifications (no ``id``) answered with nothing, parse errors (-32700), invalid
requests (-32600), unknown methods (-32601), and ``GET /health``. HTTP parsing, keep-alive and
slow clients are hypercorn's job, not ours.

Failure it contains: a handler that raises something other than ``RpcError`` (a bug, or LiteSVM
refusing something we did not foresee). ``dispatch`` is the one place that catches broadly: it logs
the traceback and answers -32603 for that request only, so one bad request never takes the node
down or poisons the rest of a batch.

May import: the standard library, trio, hypercorn, localnet.chain, localnet.rpc_methods.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Final

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from localnet.chain import Chain
from localnet.rpc_methods import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    MethodTable,
    RpcError,
)

__all__ = [
    "ASGIApp", "bind_port", "build_app", "dispatch", "handle_body", "respond", "serve_asgi", "serve_rpc",
]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 10 * 1024 * 1024
MAX_BATCH: Final = 1000

Scope = Mapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _error(error: RpcError, request_id: object) -> dict[str, object]:
    return {"jsonrpc": "2.0", "error": error.as_json(), "id": request_id}


def dispatch(chain: Chain, methods: MethodTable, request: object) -> dict[str, object] | None:
    """Answer one JSON-RPC request object; None for a notification."""
    if not isinstance(request, dict):
        return _error(RpcError(INVALID_REQUEST, "Invalid request"), None)
    request_id = request.get("id")
    valid_id = request_id is None or (isinstance(request_id, str | int) and not isinstance(request_id, bool))
    method = request.get("method")
    if request.get("jsonrpc") != "2.0" or not isinstance(method, str) or not valid_id:
        return _error(RpcError(INVALID_REQUEST, "Invalid request"), request_id if valid_id else None)
    is_notification = "id" not in request
    handler = methods.get(method)
    try:
        if handler is None:
            raise RpcError(METHOD_NOT_FOUND, "Method not found")
        result = handler(chain, request.get("params"))
    except RpcError as e:
        return None if is_notification else _error(e, request_id)
    except Exception:
        # The dispatcher is the JSON-RPC edge: an unforeseen failure in one handler becomes that
        # request's -32603 (with the traceback in the log), never a dead node.
        logger.exception("internal error answering %s", method)
        return None if is_notification else _error(RpcError(INTERNAL_ERROR, "Internal error"), request_id)
    return None if is_notification else {"jsonrpc": "2.0", "result": result, "id": request_id}


def handle_body(chain: Chain, methods: MethodTable, body: bytes) -> object | None:
    """The JSON answer to a POST body (a single answer, a batch answer, or None for nothing)."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _error(RpcError(PARSE_ERROR, "Parse error"), None)
    if isinstance(payload, list):
        if not payload:
            return _error(RpcError(INVALID_REQUEST, "Invalid request"), None)
        if len(payload) > MAX_BATCH:
            return _error(RpcError(INVALID_REQUEST, f"Invalid request: batch larger than {MAX_BATCH}"), None)
        answers = [answer for item in payload if (answer := dispatch(chain, methods, item)) is not None]
        return answers or None
    return dispatch(chain, methods, payload)


async def respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def build_app(chain: Chain, methods: MethodTable) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["method"] == "GET" and scope["path"] == "/health":
            await respond(send, 200, b"ok", "text/plain")
            return
        if scope["method"] != "POST":
            await respond(
                send, 405, b"Used HTTP Method is not allowed. POST or OPTIONS is required", "text/plain"
            )
            return
        body = await _read_body(receive)
        if body is None:
            await respond(send, 413, b"request body too large", "text/plain")
            return
        answer = handle_body(chain, methods, body)
        payload = b"" if answer is None else json.dumps(answer, separators=(",", ":")).encode()
        await respond(send, 200, payload, "application/json")

    return app


def bind_port(host: str, port: int) -> socket.socket:
    """Bind (not listen on) ``host:port``: the node binds its ports before genesis, so a taken port
    is a plain OSError at once, not after seconds of genesis. ``port=0`` picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


async def serve_rpc(
    chain: Chain,
    methods: MethodTable,
    host: str,
    port: int | socket.socket,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve JSON-RPC on ``host:port`` (or a socket from ``bind_port``) until cancelled; reports the
    bound port (``port=0`` picks one)."""
    sock = bind_port(host, port) if isinstance(port, int) else port
    await serve_asgi(build_app(chain, methods), sock, "localnet.rpc.hypercorn", task_status=task_status)


async def serve_asgi(
    asgi_app: ASGIApp,
    sock: socket.socket,
    log_name: str,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve an ASGI app with hypercorn's trio worker on a bound socket (``bind_port``) until
    cancelled; reports the bound port. The RPC and the price API both run this way."""
    # Binding before hypercorn gives the real port for ``port=0`` and keeps "port in use" a plain
    # OSError from ``bind_port``.
    bound_port: int = sock.getsockname()[1]
    config = HypercornConfig()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns (and closes) the descriptor from here
    config.accesslog = None
    config.errorlog = logging.getLogger(log_name)
    config.graceful_timeout = 1.0
    config.include_server_header = False
    app: Any = asgi_app  # hypercorn types ASGI with TypedDicts; same protocol
    await hypercorn_serve(
        app,
        config,
        shutdown_trigger=trio.sleep_forever,
        mode="asgi",
        task_status=_Listening(task_status, bound_port),
    )


class _Listening(trio.TaskStatus[list[str]]):
    """Receives hypercorn's ``started(binds)`` once it listens and reports our bound port."""

    def __init__(self, outer: trio.TaskStatus[int], port: int) -> None:
        self._outer = outer
        self._port = port

    def started(self, value: list[str] | None = None) -> None:
        self._outer.started(self._port)
