"""What the batching tests share: a real embedded PostgreSQL with every migration (`schema`), the
session's market chain (tests/trades: `desk`), and `Counted`: the real gateway, passed through,
with the statements each store sent recorded -- so a test can prove that N concurrent calls were
one round trip, not N."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import pytest

from actors.database import Database, Row
from engine.postgres_gateway import PostgresGateway
from sql.statements import Statement
from tests.infra.conftest import db_url, gateway, pg_server, schema, xorj_home  # noqa: F401
from tests.trades.conftest import desk, market_node  # noqa: F401


@attrs.define
class Counted:
    """A `Database` that forwards every call to ``db`` and records its SQL text."""

    db: Database
    sent: list[str] = attrs.field(factory=list)

    def count(self, fragment: str) -> int:
        return sum(fragment in sql for sql in self.sent)

    async def execute(self, sql: str, *args: object, timeout: float) -> str:
        self.sent.append(sql)
        return await self.db.execute(sql, *args, timeout=timeout)

    async def executemany(self, sql: str, args: Sequence[Sequence[object]], *, timeout: float) -> None:
        self.sent.append(sql)
        await self.db.executemany(sql, args, timeout=timeout)

    async def fetch(self, sql: str, *args: object, timeout: float) -> list[Row]:
        self.sent.append(sql)
        return await self.db.fetch(sql, *args, timeout=timeout)

    async def fetchrow(self, sql: str, *args: object, timeout: float) -> Row | None:
        self.sent.append(sql)
        return await self.db.fetchrow(sql, *args, timeout=timeout)

    async def fetchval(self, sql: str, *args: object, timeout: float) -> Any:
        self.sent.append(sql)
        return await self.db.fetchval(sql, *args, timeout=timeout)

    async def transaction(self, statements: Sequence[Statement], *, timeout: float) -> list[list[Row]]:
        self.sent.extend(str(sql) for sql, _ in statements)
        return await self.db.transaction(statements, timeout=timeout)


@pytest.fixture
async def counted(schema: PostgresGateway) -> Counted:  # noqa: F811
    """The gateway, counted, with users user-1 and user-2 enrolled (the foreign keys need them)."""
    for n in (1, 2):
        await schema.execute(f"INSERT INTO users (id, wallet_address) VALUES ('user-{n}', 'wallet-{n}')",
                             timeout=10)
        await schema.execute(f"INSERT INTO user_settings (user_id) VALUES ('user-{n}')", timeout=10)
    return Counted(schema)
