"""What the alerter tests share: a real embedded PostgreSQL with every migration (the infra
fixtures), the alerter under a real `Supervisor`, a clock the test moves, and a stand-in for
Alertmanager.

`AlertmanagerStandIn` is an ASGI app served by hypercorn's trio worker on 127.0.0.1 (ephemeral
port): a real HTTP server that takes ``POST /api/v2/alerts`` as Alertmanager does and records each
body. It stands in for Alertmanager, which cannot run here; it speaks its wire format (a JSON list
of alerts in, 200 out) and can be told to answer 500s first or never to answer at all.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from actors.alerter import Alerter, AlerterSettings, Publish
from actors.alerts import AlertSink, alerter_sink
from actors.database import Database, Row
from engine.postgres_gateway import PostgresGateway
from sql.statements import Statement
from supervisors import ChildSpec, EventBus, Supervisor
from tests.asgi_kit import lifespan, read_body
from tests.infra.conftest import db_url, gateway, pg_server, redis_server, schema, xorj_home  # noqa: F401
from tests.runtime.conftest import Tree, running


class Clock:
    """Wall-clock seconds that move only when the test says so. Starts on a whole hour, so the
    dedup buckets of windows that divide an hour start with it."""

    def __init__(self) -> None:
        self.now = float(int(time.time()) // 3600 * 3600)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@attrs.define
class Posted:
    path: str
    content_type: str
    body: Any


class AlertmanagerStandIn:
    """Records every POST; answers ``statuses`` in order (then 200); ``hang`` never answers."""

    def __init__(self, statuses: Sequence[int] = (), *, hang: bool = False) -> None:
        self.posted: list[Posted] = []
        self.answers = list(statuses)
        self.hang = hang
        self.changed = trio.Event()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v2/alerts"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        body = await read_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.posted.append(Posted(scope["path"], headers.get("content-type", ""), json.loads(body)))
        self.changed.set()
        self.changed = trio.Event()
        if self.hang:
            await trio.sleep_forever()
        status = self.answers.pop(0) if self.answers else 200
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"" if status == 200 else b'{"error":"stand-in"}'})

    async def wait_for_posts(self, n: int, *, within: float = 10.0) -> None:
        with trio.fail_after(within):
            while len(self.posted) < n:
                await self.changed.wait()


class _Started(trio.TaskStatus[list[str]]):
    def __init__(self, outer: trio.TaskStatus[None]) -> None:
        self._outer = outer

    def started(self, value: list[str] | None = None) -> None:
        self._outer.started()


@asynccontextmanager
async def alertmanager(
    statuses: Sequence[int] = (), *, hang: bool = False
) -> AsyncIterator[AlertmanagerStandIn]:
    app = AlertmanagerStandIn(statuses, hang=hang)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    app.port = sock.getsockname()[1]
    config = HypercornConfig()
    config.bind = [f"fd://{sock.detach()}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("tests.alerts.hypercorn")
    config.graceful_timeout = 0.1
    asgi: Any = app

    async def serve(task_status: trio.TaskStatus[None]) -> None:
        await hypercorn_serve(asgi, config, shutdown_trigger=trio.sleep_forever, mode="asgi",
                              task_status=_Started(task_status))

    async with trio.open_nursery() as nursery:
        with trio.fail_after(10):
            await nursery.start(serve)
        yield app
        nursery.cancel_scope.cancel()


class RecordingDatabase:
    """The real gateway, with a record of each `transaction` call: how many statements it carried
    and how it ended (what the batching and outage tests assert on)."""

    def __init__(self, db: PostgresGateway) -> None:
        self.db = db
        self.calls: list[tuple[int, str]] = []  # (statements, "ok" | error type name)
        self.changed = trio.Event()

    def _record(self, statements: int, outcome: str) -> None:
        self.calls.append((statements, outcome))
        self.changed.set()
        self.changed = trio.Event()

    async def wait_for(self, condition: Callable[[], bool], *, within: float = 10.0) -> None:
        with trio.fail_after(within):
            while not condition():
                await self.changed.wait()

    async def execute(self, sql: str, *args: object, timeout: float) -> str:
        return await self.db.execute(sql, *args, timeout=timeout)

    async def executemany(self, sql: str, args: Sequence[Sequence[object]], *, timeout: float) -> None:
        await self.db.executemany(sql, args, timeout=timeout)

    async def fetch(self, sql: str, *args: object, timeout: float) -> list[Row]:
        return await self.db.fetch(sql, *args, timeout=timeout)

    async def fetchrow(self, sql: str, *args: object, timeout: float) -> Row | None:
        return await self.db.fetchrow(sql, *args, timeout=timeout)

    async def fetchval(self, sql: str, *args: object, timeout: float) -> Any:
        return await self.db.fetchval(sql, *args, timeout=timeout)

    async def transaction(self, statements: Sequence[Statement], *, timeout: float) -> list[list[Row]]:
        try:
            result = await self.db.transaction(statements, timeout=timeout)
        except Exception as exc:
            self._record(len(statements), type(exc).__name__)
            raise
        self._record(len(statements), "ok")
        return result


@asynccontextmanager
async def running_alerter(
    db: Database, settings: AlerterSettings, *, publish: Publish | None = None,
    extra: Sequence[ChildSpec] = (), events: EventBus | None = None,
) -> AsyncIterator[tuple[Tree, AlertSink]]:
    """The alerter (and `extra` children) under a real one_for_one supervisor, and its sink."""
    tree = Supervisor([ChildSpec("alerter", lambda: Alerter(db, settings, publish=publish)), *extra],
                      max_restarts=100, period=60.0)
    async with running(tree, events) as t:
        yield t, alerter_sink(t.registry.ref("alerter"))


async def alert_rows(db: Database) -> list[Row]:
    return await db.fetch(
        "SELECT id, severity, kind, subject, details, dedup_key, created_at FROM alerts ORDER BY id",
        timeout=10)


async def rows_when(
    db: Database, condition: Callable[[list[Row]], bool], *, within: float = 10.0
) -> list[Row]:
    """The `alerts` rows once ``condition`` holds for them (polled: the rows are the database's)."""
    with trio.fail_after(within):
        while not condition(rows := await alert_rows(db)):  # noqa: ASYNC110 -- rows another task writes
            await trio.sleep(0.02)
    return rows
