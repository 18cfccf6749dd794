"""The Postgres gateway: the one place the engine talks to PostgreSQL (asyncpg over trio-asyncio).

Owns: the trio-asyncio loop that asyncpg runs on, the asyncpg pool, its reconnection with
backoff, the health probe, and the translation of every driver error into the typed errors of
`sql.errors`. asyncio appears only here and in `engine.redis_gateway`.

Failure it contains: a database that is down, restarting, slow, or that kills our connections.
Every call has a deadline and ends, by then, with a result or a typed error: `DatabaseUnavailable`
(or its `DatabaseTimeout`) when the database cannot be reached, an `IntegrityError` subclass naming
the constraint when a row is refused, `DatabaseQueryError` for anything else the server rejects.
No asyncpg type, `OSError` or `asyncio` exception leaves this module, and nothing hangs.

How other trio tasks reach the loop: `serve()` opens the trio-asyncio loop and keeps it; a call
from *any* trio task of the process runs its asyncpg coroutine on that loop through the bridge in
`engine.asyncio_gateway` (shared with the Redis gateway), which gives up at the deadline without
waiting for asyncpg's cleanup, so the caller gets `DatabaseTimeout` at once.

May import: the standard library, trio, trio_asyncio, asyncpg, attrs, `sql`, `supervisors.backoff`,
`engine.asyncio_gateway` (the bridge), `engine.http_server` (DependencyHealth).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from typing import Any, Final, TypeVar

import asyncpg
import trio
import trio_asyncio

from engine.asyncio_gateway import AsyncioGateway, open_gateway_loop
from engine.http_server import DependencyHealth
from sql.errors import (
    CheckViolation,
    DatabaseError,
    DatabaseQueryError,
    DatabaseTimeout,
    DatabaseUnavailable,
    ForeignKeyViolation,
    IntegrityError,
    NotNullViolation,
    RestrictViolation,
    UniqueViolation,
)
from sql.statements import Script, Statement

__all__ = [
    "CheckViolation",
    "DatabaseError",
    "DatabaseQueryError",
    "DatabaseTimeout",
    "DatabaseUnavailable",
    "DependencyHealth",
    "ForeignKeyViolation",
    "IntegrityError",
    "NotNullViolation",
    "PostgresGateway",
    "RestrictViolation",
    "Script",
    "Statement",
    "UniqueViolation",
    "translate_error",
]

_log = logging.getLogger("xorj.postgres_gateway")

T = TypeVar("T")
Row = dict[str, Any]

_INTEGRITY: Final[dict[type[BaseException], type[IntegrityError]]] = {
    asyncpg.exceptions.UniqueViolationError: UniqueViolation,
    asyncpg.exceptions.CheckViolationError: CheckViolation,
    asyncpg.exceptions.ForeignKeyViolationError: ForeignKeyViolation,
    asyncpg.exceptions.NotNullViolationError: NotNullViolation,
    asyncpg.exceptions.RestrictViolationError: RestrictViolation,
}

# Server-side classes that mean "cannot serve you now": 08 connection exception, 57 operator
# intervention (admin shutdown, pg_terminate_backend, crash recovery, cannot connect now),
# 53 insufficient resources (too many connections).
_UNAVAILABLE_SERVER: Final = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)
# Client-side: the socket died, the connection or pool is closed, a connect timed out.
_UNAVAILABLE_CLIENT: Final = (
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
    TimeoutError,
    EOFError,
)


def translate_error(exc: BaseException) -> DatabaseError | None:
    """The typed error for a driver exception, or None if it is not a database error (a bug)."""
    if isinstance(exc, asyncpg.exceptions.IntegrityConstraintViolationError):
        kind = next((v for k, v in _INTEGRITY.items() if isinstance(exc, k)), IntegrityError)
        return kind(
            str(exc),
            constraint=getattr(exc, "constraint_name", None),
            sqlstate=getattr(exc, "sqlstate", None),
            table=getattr(exc, "table_name", None),
        )
    if isinstance(exc, asyncpg.exceptions.QueryCanceledError):
        return DatabaseTimeout(f"query cancelled by the server: {exc}")
    if isinstance(exc, _UNAVAILABLE_SERVER):
        return DatabaseUnavailable(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, asyncpg.exceptions.PostgresError):
        return DatabaseQueryError(str(exc), sqlstate=getattr(exc, "sqlstate", None))
    if isinstance(exc, _UNAVAILABLE_CLIENT):
        return DatabaseUnavailable(f"{type(exc).__name__}: {exc}")
    return None


async def _init_connection(conn: asyncpg.Connection) -> None:
    # json/jsonb as Python values both ways, so callers never see driver-specific text.
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


def _rows(records: Sequence[Any]) -> list[Row]:
    return [dict(record) for record in records]


class PostgresGateway(AsyncioGateway[asyncpg.Pool]):
    """One per process. Start with ``await nursery.start(gateway.serve)``; call from any task."""

    unavailable = DatabaseUnavailable
    timeout_error = DatabaseTimeout

    def __init__(
        self,
        url: str,
        *,
        pool_min: int = 1,
        pool_max: int = 10,
        name: str = "postgres",
        connect_timeout: float = 5.0,
        probe_interval: float = 1.0,
        probe_timeout: float = 2.0,
        failures_before_rebuild: int = 3,
        backoff_min: float = 0.05,
        backoff_max: float = 5.0,
        backoff_jitter: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 <= pool_min <= pool_max or pool_max < 1:
            raise ValueError(f"pool sizes must satisfy 0 <= min <= max, max >= 1: got {pool_min}, {pool_max}")
        super().__init__(url, name=name, backoff_min=backoff_min, backoff_max=backoff_max,
                         backoff_jitter=backoff_jitter, rng=rng)
        self._pool_min = pool_min
        self._pool_max = pool_max
        self._connect_timeout = connect_timeout
        self._probe_interval = probe_interval
        self._probe_timeout = probe_timeout
        self._failures_before_rebuild = failures_before_rebuild

    def _translate(self, exc: Exception) -> Exception | None:
        return translate_error(exc)

    # -- the API -----------------------------------------------------------------------------

    async def execute(self, sql: str, *args: object, timeout: float) -> str:
        """Run one statement; return its status tag (e.g. ``INSERT 0 1``)."""
        result: str = await self._call("execute", lambda pool: pool.execute(sql, *args), timeout)
        return result

    async def executemany(self, sql: str, args: Sequence[Sequence[object]], *, timeout: float) -> None:
        """Run one statement for each argument tuple, atomically (asyncpg runs it in a transaction)."""
        await self._call("executemany", lambda pool: pool.executemany(sql, args), timeout)

    async def fetch(self, sql: str, *args: object, timeout: float) -> list[Row]:
        records = await self._call("fetch", lambda pool: pool.fetch(sql, *args), timeout)
        return _rows(records)

    async def fetchrow(self, sql: str, *args: object, timeout: float) -> Row | None:
        record = await self._call("fetchrow", lambda pool: pool.fetchrow(sql, *args), timeout)
        return None if record is None else dict(record)

    async def fetchval(self, sql: str, *args: object, timeout: float) -> Any:
        return await self._call("fetchval", lambda pool: pool.fetchval(sql, *args), timeout)

    async def transaction(self, statements: Sequence[Statement], *, timeout: float) -> list[list[Row]]:
        """Run ``statements`` in one transaction, in one hop to the asyncio side.

        Returns each statement's rows (use ``RETURNING`` to learn what a write did; a `Script`
        returns no rows). Any error rolls the whole batch back.
        """
        batch = list(statements)

        async def run(pool: asyncpg.Pool) -> list[list[Row]]:
            async with pool.acquire() as conn, conn.transaction():
                out: list[list[Row]] = []
                for sql, args in batch:
                    if isinstance(sql, Script):
                        if args:
                            raise ValueError("a Script takes no arguments")
                        await conn.execute(str(sql))
                        out.append([])
                    else:
                        out.append(_rows(await conn.fetch(sql, *args)))
                return out

        return await self._call("transaction", run, timeout)

    # -- the life ----------------------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect (retrying with backoff), report started, then keep the pool healthy until
        cancelled. Calls made while it is not connected fail fast with `DatabaseUnavailable`."""
        if self._loop is not None:
            raise RuntimeError(f"{self._name}: serve() is already running")
        self._serving()
        async with open_gateway_loop(self._name) as loop:
            self._loop = loop
            started = False
            try:
                while True:
                    await self._connect(loop)
                    if not started:
                        task_status.started()
                        started = True
                    await self._probe_until_broken()
                    await self._drop_pool(loop, reason="health probe failed repeatedly")
            finally:
                self._stopping()
                with trio.CancelScope(shield=True):
                    await self._drop_pool(loop, reason="gateway stopping")
                    self._loop = None
                    self._state = "down"
                    self._last_error = "gateway stopped"

    async def _connect(self, loop: trio_asyncio.TrioEventLoop) -> None:
        attempt = 0
        self._state = "connecting"
        while True:
            started_at = trio.current_time()
            try:
                pool = await self._on_loop(
                    loop,
                    asyncpg.create_pool(
                        self._url,
                        min_size=self._pool_min,
                        max_size=self._pool_max,
                        init=_init_connection,
                        timeout=self._connect_timeout,
                        max_inactive_connection_lifetime=300.0,
                    ),
                    self._connect_timeout * 2,
                    "connect",
                )
            except DatabaseError as exc:
                # A refused login or unknown database is also retried: the operator may be fixing
                # it, and the supervisor above sees "connecting" with the error in health().
                await self._retry_later(attempt, exc)
                attempt += 1
                continue
            self._client = pool
            self._state = "up"
            self._latency_ms = (trio.current_time() - started_at) * 1000.0
            _log.info(
                "database connected",
                extra={"gateway": self._name, "url": self.redacted_url, "attempts": attempt + 1},
            )
            return

    async def _probe_until_broken(self) -> None:
        """Probe ``SELECT 1`` every interval; return after consecutive failures so the pool is
        rebuilt. (asyncpg already replaces individual closed connections; this catches a pool
        that cannot recover by itself.)"""
        failures = 0
        while failures < self._failures_before_rebuild:
            await trio.sleep(self._probe_interval)
            started_at = trio.current_time()
            try:
                await self._call("health probe", lambda pool: pool.fetchval("SELECT 1"), self._probe_timeout)
            except DatabaseTimeout:
                pool = self._client
                if pool is not None and pool.get_idle_size() == 0:
                    continue  # every connection is busy: the engine is slow, the database is not down
                failures += 1
                continue
            except DatabaseUnavailable:
                failures += 1
                continue
            failures = 0
            self._latency_ms = (trio.current_time() - started_at) * 1000.0

    async def _drop_pool(self, loop: trio_asyncio.TrioEventLoop, *, reason: str) -> None:
        pool, self._client = self._client, None
        if pool is None:
            return
        self._state = "connecting"
        _log.info("closing database pool", extra={"gateway": self._name, "reason": reason})
        try:
            await self._on_loop(loop, pool.close(), 2.0, "pool close")
        except DatabaseError:
            pool.terminate()
