"""The Postgres gateway: usable from any trio task, typed errors, deadlines, recovery."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from engine.embedded_postgres import EmbeddedPostgres, run_embedded_postgres
from engine.embedded_process import free_loopback_port
from engine.postgres_gateway import (
    DatabaseQueryError,
    DatabaseTimeout,
    DatabaseUnavailable,
    PostgresGateway,
    UniqueViolation,
)
from tests.infra.conftest import wait_until, with_database


async def _until_ok(gw: PostgresGateway, sql: str, *, within: float) -> object:
    """Retry ``sql`` until it succeeds (DatabaseUnavailable is expected meanwhile)."""
    with trio.fail_after(within):
        while True:
            try:
                return await gw.fetchval(sql, timeout=2)
            except DatabaseUnavailable:
                await trio.sleep(0.05)


async def test_calls_work_from_tasks_that_did_not_open_the_loop(gateway: PostgresGateway) -> None:
    # `gateway` is served from the test's nursery fixture; these tasks live in an unrelated nursery.
    results: list[int] = []

    async def worker(n: int) -> None:
        results.append(await gateway.fetchval("SELECT $1::int * 2", n, timeout=5))

    with trio.fail_after(20):
        async with trio.open_nursery() as workers:
            for n in range(20):
                workers.start_soon(worker, n)
        direct = await gateway.fetchrow("SELECT 1 AS one, 'x'::text AS t", timeout=5)
    assert sorted(results) == [n * 2 for n in range(20)]
    assert direct == {"one": 1, "t": "x"}
    assert gateway.health().state == "up"


async def test_transaction_runs_statements_atomically(gateway: PostgresGateway) -> None:
    with trio.fail_after(20):
        await gateway.execute("CREATE TABLE t (k int PRIMARY KEY)", timeout=5)
        out = await gateway.transaction(
            [
                ("INSERT INTO t VALUES ($1) RETURNING k", (1,)),
                ("INSERT INTO t VALUES ($1) RETURNING k", (2,)),
            ],
            timeout=5,
        )
        with pytest.raises(UniqueViolation) as duplicate:
            await gateway.transaction(
                [("INSERT INTO t VALUES ($1)", (3,)), ("INSERT INTO t VALUES ($1)", (1,))], timeout=5
            )
        await gateway.executemany("INSERT INTO t VALUES ($1)", [(10,), (11,)], timeout=5)
        keys = await gateway.fetch("SELECT k FROM t ORDER BY k", timeout=5)
    assert out == [[{"k": 1}], [{"k": 2}]]
    assert duplicate.value.constraint == "t_pkey"
    assert [r["k"] for r in keys] == [1, 2, 10, 11]  # 3 was rolled back with the duplicate


async def test_a_call_past_its_deadline_raises_database_timeout_and_the_gateway_carries_on(
    gateway: PostgresGateway,
) -> None:
    with trio.fail_after(10):
        with pytest.raises(DatabaseTimeout):
            await gateway.fetchval("SELECT pg_sleep(30)", timeout=0.2)
        assert await gateway.fetchval("SELECT 41 + 1", timeout=5) == 42


async def test_bad_sql_is_a_query_error_not_an_outage(gateway: PostgresGateway) -> None:
    with trio.fail_after(10), pytest.raises(DatabaseQueryError) as bad:
        await gateway.execute("SELEKT 1", timeout=5)
    assert bad.value.sqlstate == "42601"
    assert not isinstance(bad.value, DatabaseUnavailable)


async def test_gateway_recovers_after_its_backends_are_terminated(
    gateway: PostgresGateway, pg_server: EmbeddedPostgres, db_url: str, nursery: trio.Nursery
) -> None:
    admin = PostgresGateway(pg_server.url, pool_min=1, pool_max=1)
    await nursery.start(admin.serve)
    database = db_url.rsplit("/", 1)[1]
    with trio.fail_after(30):
        await gateway.fetchval("SELECT 1", timeout=5)
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
            database,
            timeout=5,
        )
        assert killed >= 1
        assert await _until_ok(gateway, "SELECT 'back'", within=20) == "back"
        await wait_until(lambda: gateway.health().state == "up", within=10)


async def test_not_serving_gateway_fails_fast_with_database_unavailable() -> None:
    gw = PostgresGateway("postgresql://nobody@127.0.0.1:1/none")
    with trio.fail_after(5), pytest.raises(DatabaseUnavailable, match="not connected"):
        await gw.fetchval("SELECT 1", timeout=5)
    assert gw.health().state == "connecting"


async def test_unreachable_server_keeps_the_gateway_connecting_with_the_error_visible(
    nursery: trio.Nursery,
) -> None:
    gw = PostgresGateway(f"postgresql://x:y@127.0.0.1:{free_loopback_port()}/none", backoff_max=0.2)
    nursery.start_soon(gw.serve)
    with trio.fail_after(10):
        await wait_until(lambda: gw.health().last_error is not None, within=10)
        with pytest.raises(DatabaseUnavailable):
            await gw.fetchval("SELECT 1", timeout=1)
    assert gw.health().state == "connecting"


async def test_stopped_server_gives_database_unavailable_then_the_gateway_recovers(
    server_home: Path,
) -> None:
    """... and its watcher hears of the outage once and of the recovery once, never of its own stop."""
    home = server_home
    told: list[tuple[bool, str | None]] = []
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            async with run_embedded_postgres(home) as server:
                gw = PostgresGateway(with_database(server.url, "xorj"), probe_interval=0.1, backoff_max=0.2)
                gw.watch = lambda up, error: told.append((up, error))
                await nursery.start(gw.serve)
                await gw.execute("CREATE TABLE kept (v int)", timeout=5)
                await gw.execute("INSERT INTO kept VALUES (7)", timeout=5)
                assert told == []  # the first connect is not a recovery
            # Server stopped: calls fail within their deadline instead of hanging.
            with pytest.raises(DatabaseUnavailable):
                await gw.fetchval("SELECT v FROM kept", timeout=3)
            await wait_until(lambda: gw.health().state != "up", within=10)
            assert len(told) == 1 and told[0][0] is False and told[0][1], told
            async with run_embedded_postgres(home):
                assert await _until_ok(gw, "SELECT v FROM kept", within=30) == 7
                assert told[1:] == [(True, None)]
                nursery.cancel_scope.cancel()  # the gateway's own stop
    assert len(told) == 2 and gw.health().state == "down"
