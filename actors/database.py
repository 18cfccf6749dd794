"""The database as the business actors see it: a structural type the Postgres gateway satisfies.

Actors never import `engine` (where `PostgresGateway` lives), so they name the calls they make
here instead. Every call takes a deadline (`timeout`) and fails with the typed errors of
`sql.errors` (`DatabaseUnavailable`, `DatabaseTimeout`, `IntegrityError`, `DatabaseQueryError`).

May import: the standard library and `sql`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sql.statements import Statement

Row = dict[str, Any]


class Database(Protocol):
    async def execute(self, sql: str, *args: object, timeout: float) -> str: ...

    async def executemany(self, sql: str, args: Sequence[Sequence[object]], *, timeout: float) -> None: ...

    async def fetch(self, sql: str, *args: object, timeout: float) -> list[Row]: ...

    async def fetchrow(self, sql: str, *args: object, timeout: float) -> Row | None: ...

    async def fetchval(self, sql: str, *args: object, timeout: float) -> Any: ...

    async def transaction(self, statements: Sequence[Statement], *, timeout: float) -> list[list[Row]]: ...
