"""toxiproxy 2.12's HTTP API over a ``FaultProxy``: hypercorn's trio worker and a small ASGI app.

Owns: the routes, status codes, JSON shapes and error bodies of toxiproxy 2.12 as recorded in
``notes/toxiproxy-api.md`` and its source (``api.go``): errors are ``http.Error`` bodies
(``{"error":"...","status":N}`` + newline, ``text/plain; charset=utf-8``, ``nosniff``), successes
are compact ``application/json`` without a newline, ``/version`` is the one with a newline and a
charset. Every response carries ``X-Toxiproxy-Request-Id`` (an xid, as zerolog's hlog makes).
A ``Mozilla/`` user agent gets 403 on the API's routes; unknown paths 404 ``404 page not found``,
known paths with another method 405 with an empty body (gorilla/mux answers those two before its
middleware, so the browser check does not apply to them). ``populate`` (the ``/populate``
endpoint and ``--config``) lives here because it is a body format, not a proxy operation.

Failure it contains: a bad request. It is answered with toxiproxy's status and message; the
registry is left as it was (checks run before any change) and the server keeps serving. HTTP
parsing and slow clients are hypercorn's job. Cancelling ``serve``/``serve_api`` closes the API
socket and every proxy.

May import: the standard library, trio, attrs, hypercorn, chaos.toxics, chaos.fault_proxy,
chaos._gojson.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any, Final

import attrs
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from chaos._gojson import GoJsonError, decode_body, decode_fields, encode, mismatch
from chaos.fault_proxy import FaultProxy, Proxy, open_fault_proxy
from chaos.toxics import FaultProxyError, ProxySpec, bad_body, parse_new_toxic, parse_toxic_update

__all__ = ["TOXIPROXY_VERSION", "build_app", "populate", "populate_file", "serve", "serve_api"]

logger = logging.getLogger(__name__)

TOXIPROXY_VERSION: Final = "2.12.0"
REQUEST_ID_HEADER: Final = b"x-toxiproxy-request-id"

Scope = Mapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@attrs.frozen
class _Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    nosniff: bool = False


def _json(payload: object, status: int = 200) -> _Response:
    return _Response(status, encode(payload), "application/json")


def _http_error(text: str, status: int) -> _Response:
    """Go's ``http.Error``: the text plus a newline, as plain text, with nosniff."""
    return _Response(status, text.encode() + b"\n", "text/plain; charset=utf-8", nosniff=True)


def _api_error(exc: FaultProxyError) -> _Response:
    return _http_error(encode({"error": exc.message, "status": exc.status}).decode(), exc.status)


_NO_CONTENT: Final = _Response(204)


# --- xid request ids (github.com/rs/xid): 4 bytes time, 3 machine, 2 pid, 3 counter ----------

_XID_ALPHABET: Final = "0123456789abcdefghijklmnopqrstuv"
_XID_MACHINE: Final = os.urandom(3)
_XID_COUNTER = itertools.count(int.from_bytes(os.urandom(3), "big"))


def _request_id() -> str:
    raw = (
        int(time.time()).to_bytes(4, "big")
        + _XID_MACHINE
        + (os.getpid() & 0xFFFF).to_bytes(2, "big")
        + (next(_XID_COUNTER) & 0xFFFFFF).to_bytes(3, "big")
    )
    number = int.from_bytes(raw, "big") << 4  # 96 bits padded to 100 = 20 base32 digits
    return "".join(_XID_ALPHABET[(number >> shift) & 31] for shift in range(95, -1, -5))


# --- request bodies -----------------------------------------------------------------------

_PROXY_FIELDS: Final = {"name": "string", "listen": "string", "upstream": "string", "enabled": "bool"}


def _proxy_fields(value: object, go_type: str, struct_name: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise mismatch(value, go_type)
    return decode_fields(value, _PROXY_FIELDS, struct_name)  # type: ignore[arg-type]


def populate(registry: FaultProxy, body: bytes) -> list[Proxy]:
    """``POST /populate`` and ``--config``: create or replace proxies from a JSON array.

    Every entry is checked before any proxy changes; an entry equal (listen and upstream) to an
    existing proxy keeps that proxy and its toxics.
    """
    try:
        value = decode_body(body)
        if not isinstance(value, list):
            raise mismatch(value, '[]struct { toxiproxy.Proxy; Enabled *bool "json:\\"enabled\\"" }')
        element = "struct { toxiproxy.Proxy; Enabled *bool }"
        entries = [_proxy_fields(item, element, "Proxy") for item in value]
    except GoJsonError as exc:
        raise bad_body(exc) from None
    specs: list[ProxySpec] = []
    for i, fields in enumerate(entries, start=1):
        if not fields.get("name"):
            raise FaultProxyError(f"missing required field: name at proxy {i}", 400)
        if not fields.get("upstream"):
            raise FaultProxyError(f"missing required field: upstream at proxy {i}", 400)
        specs.append(ProxySpec(
            name=str(fields["name"]), upstream=str(fields["upstream"]),
            listen=str(fields.get("listen", "")), enabled=bool(fields.get("enabled", True)),
        ))
    return [registry.add_or_replace(spec) for spec in specs]


def populate_file(registry: FaultProxy, path: Path) -> list[Proxy]:
    """``-config file.json``: the same as ``/populate`` with the file's contents."""
    return populate(registry, path.read_bytes())


# --- handlers -----------------------------------------------------------------------------

Handler = Callable[[FaultProxy, dict[str, str], bytes], _Response]


def _version(registry: FaultProxy, params: dict[str, str], body: bytes) -> _Response:
    text = f'{{"version": "{TOXIPROXY_VERSION}"}}\n'
    return _Response(200, text.encode(), "application/json;charset=utf-8")


def _reset(registry: FaultProxy, params: dict[str, str], body: bytes) -> _Response:
    registry.reset()
    return _NO_CONTENT


def _proxy_index(registry: FaultProxy, params: dict[str, str], body: bytes) -> _Response:
    return _json({name: registry.proxies[name].as_json() for name in sorted(registry.proxies)})


def _proxy_create(registry: FaultProxy, params: dict[str, str], body: bytes) -> _Response:
    try:
        fields = _proxy_fields(decode_body(body), "toxiproxy.Proxy", "Proxy")
    except GoJsonError as exc:
        raise bad_body(exc) from None
    if not fields.get("name"):
        raise FaultProxyError("missing required field: name", 400)
    if not fields.get("upstream"):
        raise FaultProxyError("missing required field: upstream", 400)
    spec = ProxySpec(name=str(fields["name"]), upstream=str(fields["upstream"]),
                     listen=str(fields.get("listen", "")), enabled=bool(fields.get("enabled", True)))
    return _json(registry.create(spec).as_json(), 201)


def _populate(registry: FaultProxy, params: dict[str, str], body: bytes) -> _Response:
    try:
        proxies = populate(registry, body)
    except FaultProxyError as exc:
        return _json({"error": exc.message, "status": exc.status, "proxies": None}, exc.status)
    return _json({"proxies": [proxy.as_json() for proxy in proxies]}, 201)


def _proxy_show(registry: FaultProxy, params: dict[str, str], body: bytes) -> _Response:
    return _json(registry.get(params["proxy"]).as_json())


def _proxy_update(registry: FaultProxy, params: dict[str, str], body: bytes) -> _Response:
    proxy = registry.get(params["proxy"])
    try:
        fields = _proxy_fields(decode_body(body), "toxiproxy.Proxy", "Proxy")
    except GoJsonError as exc:
        raise bad_body(exc) from None
    updated = registry.update(
        proxy.name,
        listen=str(fields.get("listen", proxy.listen)),
        upstream=str(fields.get("upstream", proxy.upstream)),
        enabled=bool(fields.get("enabled", proxy.enabled)),
    )
    return _json(updated.as_json())


def _proxy_delete(registry: FaultProxy, params: dict[str, str], body: bytes) -> _Response:
    registry.delete(params["proxy"])
    return _NO_CONTENT


def _toxic_index(registry: FaultProxy, params: dict[str, str], body: bytes) -> _Response:
    return _json([toxic.as_json() for toxic in registry.get(params["proxy"]).all_toxics()])


def _toxic_create(registry: FaultProxy, params: dict[str, str], body: bytes) -> _Response:
    proxy = registry.get(params["proxy"])
    names = {toxic.name for toxic in proxy.all_toxics()}
    toxic = parse_new_toxic(body, names)
    proxy.add_toxic(toxic)
    return _json(toxic.as_json())


def _toxic_show(registry: FaultProxy, params: dict[str, str], body: bytes) -> _Response:
    toxic = registry.get(params["proxy"]).find_toxic(params["toxic"])
    if toxic is None:
        raise FaultProxyError("toxic not found", 404)
    return _json(toxic.as_json())


def _toxic_update(registry: FaultProxy, params: dict[str, str], body: bytes) -> _Response:
    proxy = registry.get(params["proxy"])
    current = proxy.find_toxic(params["toxic"])
    if current is None:
        raise FaultProxyError("toxic not found", 404)
    updated = parse_toxic_update(body, current)
    proxy.update_toxic(updated)
    return _json(updated.as_json())


def _toxic_delete(registry: FaultProxy, params: dict[str, str], body: bytes) -> _Response:
    registry.get(params["proxy"]).remove_toxic(params["toxic"])
    return _NO_CONTENT


_ROUTES: Final[tuple[tuple[re.Pattern[str], dict[str, Handler]], ...]] = (
    (re.compile(r"/reset"), {"POST": _reset}),
    (re.compile(r"/proxies"), {"GET": _proxy_index, "POST": _proxy_create}),
    (re.compile(r"/populate"), {"POST": _populate}),
    (re.compile(r"/proxies/(?P<proxy>[^/]+)"),
     {"GET": _proxy_show, "POST": _proxy_update, "PATCH": _proxy_update, "DELETE": _proxy_delete}),
    (re.compile(r"/proxies/(?P<proxy>[^/]+)/toxics"), {"GET": _toxic_index, "POST": _toxic_create}),
    (re.compile(r"/proxies/(?P<proxy>[^/]+)/toxics/(?P<toxic>[^/]+)"),
     {"GET": _toxic_show, "POST": _toxic_update, "PATCH": _toxic_update, "DELETE": _toxic_delete}),
    (re.compile(r"/version"), {"GET": _version}),
)


def _dispatch(
    registry: FaultProxy, method: str, path: str, headers: dict[bytes, bytes], body: bytes
) -> _Response:
    path_matched = False
    for pattern, methods in _ROUTES:
        match = pattern.fullmatch(path)
        if match is None:
            continue
        path_matched = True
        handler = methods.get(method)
        if handler is None:
            continue
        if headers.get(b"user-agent", b"").startswith(b"Mozilla/"):
            return _http_error("User agent not allowed", 403)
        try:
            return handler(registry, match.groupdict(), body)
        except FaultProxyError as exc:
            return _api_error(exc)
    if path_matched:
        return _Response(405)
    return _http_error("404 page not found", 404)


def build_app(registry: FaultProxy) -> ASGIApp:
    """The ASGI app serving toxiproxy's API for ``registry``."""

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
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        headers = {bytes(k).lower(): bytes(v) for k, v in scope["headers"]}
        response = _dispatch(registry, scope["method"], scope["path"], headers, b"".join(chunks))
        out = [(REQUEST_ID_HEADER, _request_id().encode())]
        if response.status != 204:  # Go sends no Content-Length with a 204
            out.append((b"content-length", str(len(response.body)).encode()))
        if response.content_type is not None:
            out.append((b"content-type", response.content_type.encode()))
        if response.nosniff:
            out.append((b"x-content-type-options", b"nosniff"))
        await send({"type": "http.response.start", "status": response.status, "headers": out})
        await send({"type": "http.response.body", "body": response.body})

    return app


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class _ListeningStatus(trio.TaskStatus[list[str]]):
    """Receives hypercorn's ``started(binds)`` once it listens and reports our bound port."""

    def __init__(self, outer: trio.TaskStatus[int], port: int) -> None:
        self._outer = outer
        self._port = port

    def started(self, value: list[str] | None = None) -> None:
        self._outer.started(self._port)


async def serve_api(
    registry: FaultProxy,
    host: str = "127.0.0.1",
    port: int = 8474,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve toxiproxy's API for an existing registry until cancelled; reports the bound port.

    The socket is bound here, not by hypercorn, so "port in use" is a plain OSError from
    ``nursery.start`` and ``port=0`` reports the real port.
    """
    await _serve_bound(registry, _bind(host, port), task_status)


async def _serve_bound(registry: FaultProxy, sock: socket.socket, task_status: trio.TaskStatus[int]) -> None:
    bound_port: int = sock.getsockname()[1]
    config = HypercornConfig()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns (and closes) the descriptor from here
    config.accesslog = None
    config.errorlog = logging.getLogger("chaos.proxy_api.hypercorn")
    config.graceful_timeout = 1.0
    config.include_server_header = False
    app: Any = build_app(registry)  # hypercorn types ASGI with TypedDicts; we use plain mappings
    await hypercorn_serve(app, config, shutdown_trigger=trio.sleep_forever, mode="asgi",
                          task_status=_ListeningStatus(task_status, bound_port))


async def serve(
    host: str = "127.0.0.1",
    port: int = 8474,
    *,
    config: Path | None = None,
    seed: int | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """``toxiproxy-server -host H -port P [-config F] [-seed N]``: a fresh registry, populated
    from ``config`` if given (errors are logged, as toxiproxy does), and its API. Reports the
    API's bound port; runs until cancelled."""
    sock = _bind(host, port)  # first: "port in use" is a plain OSError from nursery.start
    async with open_fault_proxy(seed) as registry:
        if config is not None:
            try:
                proxies = populate_file(registry, config)
            except (OSError, FaultProxyError) as exc:
                logger.error("failed to populate proxies from %s: %s", config, exc)
            else:
                logger.info("populated %d proxies from %s", len(proxies), config)
        await _serve_bound(registry, sock, task_status)
