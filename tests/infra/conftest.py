"""Real servers for the infra tests: one embedded PostgreSQL and one embedded Redis per session.

pytest-trio runs each test in its own `trio.run`, so a session-scoped server cannot live in a test's
run. Each session server runs in its own thread under its own `trio.run`, through the same
`run_embedded_*` context managers the engine uses, and is stopped at the end of the session.
Tests that stop a server start their own under a temporary home instead.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest
import trio

from engine.embedded_postgres import EmbeddedPostgres, run_embedded_postgres
from engine.embedded_redis import EmbeddedRedis, run_embedded_redis
from engine.postgres_gateway import PostgresGateway

T = TypeVar("T")


class ServerThread(Generic[T]):
    """Runs ``async with factory() as server`` in a background thread's own trio run."""

    def __init__(self, factory: Callable[[], AbstractAsyncContextManager[T]]) -> None:
        self._factory = factory
        self._ready = threading.Event()
        self._server: T | None = None
        self._error: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # noqa: BLE001 -- handed to the main thread by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._stop = trio.Event()
        self._token = trio.lowlevel.current_trio_token()
        async with self._factory() as server:
            self._server = server
            self._ready.set()
            await self._stop.wait()

    def start(self, timeout: float = 60.0) -> T:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("embedded server did not start in time")
        if self._error is not None or self._server is None:
            raise RuntimeError("embedded server failed to start") from self._error
        return self._server

    def stop(self, timeout: float = 30.0) -> None:
        if self._token is not None and self._stop is not None:
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(timeout)


def _private_tmp(prefix: str) -> Path:
    # Not under pytest's tmp root: pytest (ours, or another run on the same machine) resets
    # /tmp/pytest-of-<user> to 0700, which would cut the embedded postgres user off its files.
    return Path(tempfile.mkdtemp(prefix=prefix))


@pytest.fixture(scope="session")
def xorj_home() -> Iterator[Path]:
    home = _private_tmp("xorj-infra-session-")
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def server_home() -> Iterator[Path]:
    """An XORJ_HOME of its own, for a test that stops and restarts its servers."""
    root = _private_tmp("xorj-infra-test-")
    yield root / "home"
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server(xorj_home: Path) -> Iterator[EmbeddedPostgres]:
    thread = ServerThread(lambda: run_embedded_postgres(xorj_home))
    yield thread.start()
    thread.stop()


@pytest.fixture(scope="session")
def redis_server(xorj_home: Path) -> Iterator[EmbeddedRedis]:
    thread = ServerThread(lambda: run_embedded_redis(xorj_home))
    yield thread.start()
    thread.stop()


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture
async def db_url(pg_server: EmbeddedPostgres, nursery: trio.Nursery) -> AsyncIterator[str]:
    """A fresh, empty database on the session server, for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = PostgresGateway(pg_server.url, pool_min=1, pool_max=1)
    async with trio.open_nursery() as admin_nursery:
        with trio.fail_after(20):
            await admin_nursery.start(admin.serve)
            await admin.execute(f"CREATE DATABASE {name}", timeout=20)
        admin_nursery.cancel_scope.cancel()
    yield with_database(pg_server.url, name)


@pytest.fixture
async def gateway(db_url: str, nursery: trio.Nursery) -> PostgresGateway:
    """A served gateway on a fresh database (served in the test's nursery, not the test's task)."""
    gw = PostgresGateway(db_url, pool_min=1, pool_max=4, probe_interval=0.2, backoff_max=0.5)
    with trio.fail_after(20):
        await nursery.start(gw.serve)
    return gw


@pytest.fixture
async def schema(gateway: PostgresGateway) -> PostgresGateway:
    """The gateway, with every migration applied to its database."""
    from sql.migrate import migrate

    with trio.fail_after(30):
        await migrate(gateway)
    return gateway


async def wait_until(condition: Callable[[], bool], *, within: float, poll: float = 0.02) -> None:
    """Poll ``condition`` until true; `trio.TooSlowError` after ``within`` seconds."""
    with trio.fail_after(within):
        while not condition():  # noqa: ASYNC110 -- a state owned by another task, no event to wait on
            await trio.sleep(poll)
