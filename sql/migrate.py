"""The migration runner: applies `sql/migrations/NNNN_name.sql` in order, once, on any node.

Owns: the `schema_migrations` table (version, name, sha256 checksum, applied_at) and the rule that
an applied migration never changes. Each pending migration runs in its own transaction together
with its `schema_migrations` row, under a transaction-scoped advisory lock, so two nodes starting
at once serialise: the second waits for the lock, then finds the version already recorded
(primary key) and moves on. A migration file that changed after it was applied stops start-up with
`MigrationChecksumMismatch` naming the file: the schema in the database is no longer the one the
file describes, and guessing would be worse than stopping.

Failure it contains: concurrent migration by several nodes, a half-applied migration (the
transaction rolls back, nothing is recorded), an edited migration. It talks to the database only
through a `MigrationTarget` (the Postgres gateway satisfies it), never through a driver.

May import: the standard library and `sql`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final, Protocol

import attrs

from sql.errors import UniqueViolation
from sql.statements import Script, Statement

__all__ = [
    "AppliedMigration",
    "Migration",
    "MigrationChecksumMismatch",
    "MigrationError",
    "MigrationTarget",
    "discover_migrations",
    "migrate",
]

_log = logging.getLogger("xorj.migrate")

# pg_advisory_xact_lock key: b"xorjmigr" as a signed 64-bit integer, fixed forever.
LOCK_KEY: Final = int.from_bytes(b"xorjmigr", "big", signed=True)
_FILE_NAME: Final = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
_LOCK: Final[Statement] = ("SELECT pg_advisory_xact_lock($1::bigint)", (LOCK_KEY,))
_BOOTSTRAP: Final = Script(
    """
    CREATE TABLE IF NOT EXISTS schema_migrations (
        version    integer PRIMARY KEY,
        name       text NOT NULL,
        checksum   char(64) NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
    )
    """
)


class MigrationTarget(Protocol):
    """What the runner needs from a database connection (the Postgres gateway has it)."""

    async def fetch(self, sql: str, *args: object, timeout: float) -> list[dict[str, Any]]: ...

    async def transaction(
        self, statements: Sequence[Statement], *, timeout: float
    ) -> list[list[dict[str, Any]]]: ...


class MigrationError(Exception):
    """The migration set is unusable (bad file name, duplicate version)."""


class MigrationChecksumMismatch(MigrationError):
    """An applied migration's file differs from what was applied. ``filename`` names it."""

    def __init__(self, filename: str, *, applied: str, current: str) -> None:
        super().__init__(
            f"migration {filename} was changed after it was applied "
            f"(applied sha256 {applied[:12]}..., file now {current[:12]}...): "
            "restore the file and add a new numbered migration instead"
        )
        self.filename = filename
        self.applied = applied
        self.current = current


@attrs.frozen
class Migration:
    version: int
    name: str
    filename: str
    sql: str
    checksum: str


@attrs.frozen
class AppliedMigration:
    version: int
    name: str
    checksum: str


def _parse(entries: Iterable[tuple[str, bytes]]) -> list[Migration]:
    found: dict[int, Migration] = {}
    for filename, raw in entries:
        match = _FILE_NAME.match(filename)
        if match is None:
            raise MigrationError(f"migration file name {filename!r} is not NNNN_lowercase_name.sql")
        version = int(match["version"])
        if version in found:
            raise MigrationError(
                f"two migrations share version {version}: {found[version].filename}, {filename}"
            )
        found[version] = Migration(
            version=version,
            name=match["name"],
            filename=filename,
            sql=raw.decode("utf-8"),
            checksum=hashlib.sha256(raw).hexdigest(),
        )
    return [found[v] for v in sorted(found)]


def discover_migrations(directory: Path | None = None) -> list[Migration]:
    """The migrations in ``directory`` (default: the packaged ``sql/migrations``), by version."""
    root: Traversable = directory if directory is not None else resources.files("sql") / "migrations"
    return _parse(
        (entry.name, entry.read_bytes())
        for entry in root.iterdir()
        if entry.is_file() and entry.name.endswith(".sql")
    )


def _verify(migration: Migration, applied_checksum: str) -> None:
    if migration.checksum != applied_checksum.strip():
        raise MigrationChecksumMismatch(
            migration.filename, applied=applied_checksum.strip(), current=migration.checksum
        )


async def migrate(
    db: MigrationTarget, directory: Path | None = None, *, timeout: float = 120.0
) -> list[AppliedMigration]:
    """Apply every pending migration; return those this call applied (empty when up to date).

    Raises `MigrationChecksumMismatch` before applying anything if an applied file changed, and
    the gateway's typed errors (`DatabaseUnavailable`, ...) if the database fails.
    """
    migrations = discover_migrations(directory)
    await db.transaction([_LOCK, (_BOOTSTRAP, ())], timeout=timeout)
    rows = await db.fetch("SELECT version, checksum FROM schema_migrations ORDER BY version", timeout=timeout)
    applied = {int(row["version"]): str(row["checksum"]) for row in rows}
    by_version = {m.version: m for m in migrations}
    for version, checksum in applied.items():
        if version in by_version:
            _verify(by_version[version], checksum)
        else:
            _log.warning(
                "database has a migration this code does not know (newer node?)",
                extra={"version": version},
            )

    done: list[AppliedMigration] = []
    for migration in migrations:
        if migration.version in applied:
            continue
        try:
            await db.transaction(
                [
                    _LOCK,
                    (
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        (migration.version, migration.name, migration.checksum),
                    ),
                    (Script(migration.sql), ()),
                ],
                timeout=timeout,
            )
        except UniqueViolation as exc:
            if exc.constraint != "schema_migrations_pkey":
                raise  # the migration's own statements hit a duplicate: a broken migration
            # Another node applied it while we waited for the lock; it must be the same file.
            row = await db.fetch(
                "SELECT checksum FROM schema_migrations WHERE version = $1",
                migration.version,
                timeout=timeout,
            )
            _verify(migration, str(row[0]["checksum"]))
            _log.info("migration applied by another node", extra={"migration": migration.filename})
            continue
        _log.info(
            "migration applied", extra={"migration": migration.filename, "checksum": migration.checksum}
        )
        done.append(
            AppliedMigration(version=migration.version, name=migration.name, checksum=migration.checksum)
        )
    return done
