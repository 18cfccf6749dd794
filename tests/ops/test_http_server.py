"""engine.http_server: real hypercorn on an ephemeral port, real httpx requests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial

import httpx
import prometheus_client
import pytest
import trio

from engine.http_server import DependencyHealth, HealthReport, serve_http

Probe = Callable[[], Awaitable[HealthReport]]


def _probe(report: HealthReport) -> Probe:
    async def probe() -> HealthReport:
        return report

    return probe


HEALTHY = HealthReport(
    "running",
    (
        DependencyHealth("postgres", "up", 1.25, None),
        DependencyHealth("redis", "up", 0.5, None),
    ),
)


@asynccontextmanager
async def running_server(
    probe: Probe,
    registry: prometheus_client.CollectorRegistry | None = None,
    health_timeout: float = 2.0,
) -> AsyncIterator[str]:
    registry = registry or prometheus_client.CollectorRegistry()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(
            partial(serve_http, "127.0.0.1", 0, probe, registry, health_timeout=health_timeout)
        )
        yield f"http://127.0.0.1:{port}"
        nursery.cancel_scope.cancel()


async def _get(url: str, method: str = "GET") -> httpx.Response:
    async with httpx.AsyncClient(timeout=5.0) as client:
        return await client.request(method, url)


async def test_metrics_expose_a_counter_from_the_given_registry() -> None:
    registry = prometheus_client.CollectorRegistry()
    trades = prometheus_client.Counter("xorj_trades", "trades executed", registry=registry)
    trades.inc(3)
    async with running_server(_probe(HEALTHY), registry) as base:
        response = await _get(f"{base}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "xorj_trades_total 3.0" in response.text


async def test_health_is_200_with_every_dependency_when_healthy() -> None:
    async with running_server(_probe(HEALTHY)) as base:
        response = await _get(f"{base}/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "node": {"state": "running"},
        "dependencies": {
            "postgres": {"state": "up", "latency_ms": 1.25, "last_error": None},
            "redis": {"state": "up", "latency_ms": 0.5, "last_error": None},
        },
    }


async def test_health_is_503_degraded_when_a_dependency_is_down() -> None:
    report = HealthReport(
        "running",
        (
            DependencyHealth("postgres", "up", 1.0, None),
            DependencyHealth("redis", "down", None, "ConnectionRefusedError: [Errno 111]"),
        ),
    )
    async with running_server(_probe(report)) as base:
        response = await _get(f"{base}/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["dependencies"]["redis"] == {
        "state": "down",
        "latency_ms": None,
        "last_error": "ConnectionRefusedError: [Errno 111]",
    }


async def test_health_is_503_down_while_the_node_is_not_running() -> None:
    async with running_server(_probe(HealthReport("starting", ()))) as base:
        response = await _get(f"{base}/health")
    assert response.status_code == 503
    assert response.json()["status"] == "down"


async def test_a_hanging_probe_answers_503_at_its_deadline() -> None:
    async def hanging() -> HealthReport:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async with running_server(hanging, health_timeout=0.05) as base:
        response = await _get(f"{base}/health")
    assert response.status_code == 503
    assert response.json()["status"] == "down"
    assert "did not answer within 0.05s" in response.json()["error"]


async def test_a_probe_that_raises_answers_503_and_the_server_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken() -> HealthReport:
        raise RuntimeError("gateway table corrupted")

    async with running_server(broken) as base:
        first = await _get(f"{base}/health")
        second = await _get(f"{base}/metrics")
    assert first.status_code == 503
    assert first.json()["error"] == "health probe failed: RuntimeError"
    assert second.status_code == 200
    assert "gateway table corrupted" in caplog.text


async def test_unknown_paths_are_404_and_other_methods_405() -> None:
    async with running_server(_probe(HEALTHY)) as base:
        missing = await _get(f"{base}/admin")
        posted = await _get(f"{base}/health", method="POST")
    assert missing.status_code == 404
    assert posted.status_code == 405


async def test_cancelling_the_server_closes_its_port_despite_an_open_keepalive_connection() -> None:
    async with httpx.AsyncClient(timeout=5.0) as client:
        async with running_server(_probe(HEALTHY)) as base:
            assert (await client.get(f"{base}/health")).status_code == 200
        with pytest.raises(httpx.ConnectError):
            await _get(f"{base}/health")


async def test_a_port_in_use_fails_start_with_an_oserror() -> None:
    async with running_server(_probe(HEALTHY)) as base:
        port = int(base.rpartition(":")[2])
        async with trio.open_nursery() as nursery:
            with pytest.raises(OSError):
                await nursery.start(serve_http, "127.0.0.1", port, _probe(HEALTHY))
