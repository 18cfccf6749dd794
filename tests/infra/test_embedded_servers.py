"""The embedded servers: real processes, data that survives a restart, stale state from a kill."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trio

from engine.embedded_postgres import embedded_postgres_url, run_embedded_postgres
from engine.embedded_process import pid_alive
from engine.embedded_redis import embedded_redis_url, run_embedded_redis
from engine.postgres_gateway import PostgresGateway
from engine.redis_gateway import RedisGateway


async def test_postgres_data_and_url_survive_a_restart_and_a_stale_pid_file(server_home: Path) -> None:
    home = server_home
    with trio.fail_after(60):
        async with run_embedded_postgres(home) as first, trio.open_nursery() as nursery:
            gw = PostgresGateway(first.url)
            await nursery.start(gw.serve)
            await gw.execute("CREATE TABLE kept (v text)", timeout=5)
            await gw.execute("INSERT INTO kept VALUES ('still here')", timeout=5)
            nursery.cancel_scope.cancel()
        # A kill -9 of the whole machine leaves postmaster.pid naming a pid that is gone.
        (first.data_dir / "postmaster.pid").write_text("4194000\n")
        async with run_embedded_postgres(home) as second, trio.open_nursery() as nursery:
            gw = PostgresGateway(second.url)
            await nursery.start(gw.serve)
            assert await gw.fetchval("SELECT v FROM kept", timeout=5) == "still here"
            nursery.cancel_scope.cancel()
    assert second.url == first.url
    assert second.port == first.port
    assert embedded_postgres_url(home) == first.url
    assert (first.data_dir.stat().st_mode & 0o777) == 0o700


async def test_postgres_listens_on_loopback_only(pg_server: object) -> None:
    from engine.embedded_postgres import EmbeddedPostgres

    assert isinstance(pg_server, EmbeddedPostgres)
    assert "@127.0.0.1:" in pg_server.url
    assert pg_server.url.endswith("/xorj")


async def test_redis_data_survives_a_restart(server_home: Path) -> None:
    home = server_home
    with trio.fail_after(30):
        async with run_embedded_redis(home) as first, trio.open_nursery() as nursery:
            gw = RedisGateway(first.url)
            await nursery.start(gw.serve)
            await gw.set("kept", b"still here", timeout=2)
            nursery.cancel_scope.cancel()
        async with run_embedded_redis(home) as second, trio.open_nursery() as nursery:
            gw = RedisGateway(second.url)
            await nursery.start(gw.serve)
            assert await gw.get("kept", timeout=2) == b"still here"
            nursery.cancel_scope.cancel()
    assert second.url == first.url
    assert embedded_redis_url(home) == first.url
    assert (home / "redis" / "appendonly.aof").exists()


_KILLED_ENGINE = """
import sys, trio
from pathlib import Path
from engine.embedded_postgres import run_embedded_postgres
from engine.embedded_redis import run_embedded_redis

async def main() -> None:
    run = run_embedded_postgres if sys.argv[1] == "postgres" else run_embedded_redis
    async with run(Path(sys.argv[2])) as server:
        print(server.pid, flush=True)
        await trio.sleep_forever()

trio.run(main)
"""


@pytest.mark.parametrize("which", ["postgres", "redis"])
async def test_server_orphaned_by_a_killed_engine_is_replaced_on_next_start(
    server_home: Path, which: str
) -> None:
    with trio.fail_after(60):
        engine = await trio.lowlevel.open_process(
            [sys.executable, "-c", _KILLED_ENGINE, which, str(server_home)],
            stdout=subprocess.PIPE,
            cwd=str(Path(__file__).parents[2]),
        )
        assert engine.stdout is not None
        line = b""
        while not line.endswith(b"\n"):
            chunk = await engine.stdout.receive_some(64)
            assert chunk, "engine exited before its server was ready"
            line += chunk
        orphan = int(line)
        engine.kill()  # kill -9: no cleanup runs, the server is left behind
        await engine.wait()
        await engine.stdout.aclose()
        if which == "postgres":
            async with run_embedded_postgres(server_home) as pg:
                assert pg.pid != orphan
        else:
            async with run_embedded_redis(server_home) as redis:
                assert redis.pid != orphan
        assert not pid_alive(orphan)
