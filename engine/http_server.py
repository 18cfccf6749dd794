"""Metrics and health over HTTP: hypercorn's trio worker serving a small ASGI app.

Owns: ``GET /metrics`` (Prometheus exposition of a registry, via prometheus_client's own ASGI app,
so content negotiation and gzip are theirs) and ``GET /health`` (the node's state and each
dependency's state and latency as JSON, 200 when healthy, 503 when not). The health records
``DependencyHealth`` and ``HealthReport`` live here because this is the edge that renders them.

Failure it contains: a health probe that hangs or raises. The probe runs under a deadline
(``health_timeout``); a stuck or failing probe answers 503 "down" instead of hanging the
load balancer's check or killing the server. HTTP parsing, keep-alive and slow clients are
hypercorn's job, not ours. Cancelling the task running ``serve_http`` stops the server and
closes the listening socket.

May import: the standard library, trio, attrs, hypercorn, prometheus_client.
"""

from __future__ import annotations

import json
import logging
import math
import socket
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Final, Literal

import attrs
import prometheus_client
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

__all__ = ["HEALTHY_NODE_STATE", "DependencyHealth", "HealthReport", "build_app", "serve_http"]

logger = logging.getLogger(__name__)

HEALTHY_NODE_STATE: Final = "running"
DEFAULT_HEALTH_TIMEOUT: Final = 2.0

Scope = Mapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@attrs.frozen
class DependencyHealth:
    """One external dependency as its gateway last saw it."""

    name: str
    state: Literal["up", "down", "connecting"]
    latency_ms: float | None
    last_error: str | None


@attrs.frozen
class HealthReport:
    """What ``/health`` renders: the node's lifecycle state and every dependency."""

    node_state: str
    dependencies: tuple[DependencyHealth, ...] = ()

    @property
    def status(self) -> Literal["ok", "degraded", "down"]:
        if self.node_state != HEALTHY_NODE_STATE:
            return "down"
        if any(dep.state != "up" for dep in self.dependencies):
            return "degraded"
        return "ok"

    @property
    def healthy(self) -> bool:
        return self.status == "ok"

    def as_json(self) -> dict[str, object]:
        return {
            "status": self.status,
            "node": {"state": self.node_state},
            "dependencies": {
                dep.name: {
                    "state": dep.state,
                    "latency_ms": (
                        dep.latency_ms if dep.latency_ms is None or math.isfinite(dep.latency_ms) else None
                    ),
                    "last_error": dep.last_error,
                }
                for dep in self.dependencies
            },
        }


HealthProbe = Callable[[], Awaitable[HealthReport]]


async def _respond(send: Send, status: int, body: bytes, content_type: str, head: bool = False) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"" if head else body})


async def _respond_json(send: Send, status: int, payload: object, head: bool = False) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode() + b"\n"
    await _respond(send, status, body, "application/json", head)


async def _health_json(health: HealthProbe, within: float) -> tuple[int, dict[str, object]]:
    report: HealthReport | None = None
    problem = f"health probe did not answer within {within:g}s"
    with trio.move_on_after(within):
        try:
            report = await health()
        except Exception as e:
            # The HTTP edge: a broken probe must answer 503, not take the metrics endpoint down.
            logger.exception("health probe failed", extra={"error": repr(e)})
            problem = f"health probe failed: {type(e).__name__}"
    if report is None:
        return 503, {"status": "down", "node": {"state": "unknown"}, "dependencies": {}, "error": problem}
    return (200 if report.healthy else 503), report.as_json()


def build_app(
    health: HealthProbe,
    registry: prometheus_client.CollectorRegistry,
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
) -> ASGIApp:
    """The ASGI app behind ``serve_http``; separate so it can be mounted elsewhere if needed."""
    metrics_app: ASGIApp = prometheus_client.make_asgi_app(registry)

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
        route = scope["path"]
        method = scope["method"]
        head = method == "HEAD"
        if route not in ("/metrics", "/health"):
            await _respond_json(send, 404, {"error": f"no such endpoint {route!r}"}, head)
            return
        if method not in ("GET", "HEAD"):
            await _respond_json(send, 405, {"error": f"{method} not allowed; use GET"})
            return
        if route == "/metrics":
            await metrics_app(scope, receive, send)
            return
        status, payload = await _health_json(health, health_timeout)
        await _respond_json(send, status, payload, head)

    return app


async def serve_http(
    host: str,
    port: int,
    health: HealthProbe,
    registry: prometheus_client.CollectorRegistry = prometheus_client.REGISTRY,
    *,
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``/metrics`` and ``/health`` on ``host:port`` until cancelled.

    Reports the bound port through ``task_status.started`` (``port=0`` picks a free one), so
    ``port = await nursery.start(serve_http, ...)`` returns only once the socket is listening.
    A port already in use raises OSError from ``nursery.start``.
    """
    # Binding here, not inside hypercorn, keeps "port in use" a plain OSError from
    # ``nursery.start`` (hypercorn's own nurseries would wrap it in exception groups) and gives
    # the real port for ``port=0`` without parsing hypercorn's log strings.
    sock = _bind(host, port)
    bound_port: int = sock.getsockname()[1]
    config = HypercornConfig()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns (and closes) the descriptor from here
    config.accesslog = None
    config.errorlog = logging.getLogger("engine.http.hypercorn")
    config.graceful_timeout = 1.0
    config.include_server_header = False
    # hypercorn types the ASGI protocol with TypedDicts; our app speaks the same protocol with
    # plain mappings, so it is handed over untyped.
    app: Any = build_app(health, registry, health_timeout)
    await hypercorn_serve(
        app,
        config,
        shutdown_trigger=trio.sleep_forever,
        mode="asgi",
        task_status=_ListeningStatus(task_status, host, bound_port),
    )


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

    def __init__(self, outer: trio.TaskStatus[int], host: str, port: int) -> None:
        self._outer = outer
        self._host = host
        self._port = port

    def started(self, value: list[str] | None = None) -> None:
        logger.info("metrics and health listening", extra={"host": self._host, "port": self._port})
        self._outer.started(self._port)
