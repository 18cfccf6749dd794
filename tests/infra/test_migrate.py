"""The migration runner: applies once, is idempotent, serialises nodes, refuses edited history."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import trio

from engine.postgres_gateway import PostgresGateway
from sql.migrate import AppliedMigration, MigrationChecksumMismatch, discover_migrations, migrate


def _copy_migrations(dest: Path) -> Path:
    source = resources.files("sql") / "migrations"
    dest.mkdir()
    for entry in source.iterdir():
        if entry.name.endswith(".sql"):
            (dest / entry.name).write_bytes(entry.read_bytes())
    return dest


async def test_migrate_applies_every_migration_once_then_nothing(gateway: PostgresGateway) -> None:
    with trio.fail_after(30):
        first = await migrate(gateway)
        second = await migrate(gateway)
    shipped = discover_migrations()
    assert [m.version for m in first] == [m.version for m in shipped]
    assert second == []
    rows = await gateway.fetch("SELECT version, checksum, applied_at FROM schema_migrations", timeout=5)
    assert {(r["version"], r["checksum"]) for r in rows} == {(m.version, m.checksum) for m in shipped}
    assert all(r["applied_at"] is not None for r in rows)


async def test_migrate_refuses_an_applied_migration_whose_file_changed(
    gateway: PostgresGateway, tmp_path: Path
) -> None:
    directory = _copy_migrations(tmp_path / "migrations")
    with trio.fail_after(30):
        await migrate(gateway, directory)
        edited = directory / "0001_initial.sql"
        edited.write_text(edited.read_text() + "\n-- an innocent-looking edit\n")
        with pytest.raises(MigrationChecksumMismatch, match=r"0001_initial\.sql") as refused:
            await migrate(gateway, directory)
    assert refused.value.filename == "0001_initial.sql"


async def test_migrate_applies_a_new_file_after_the_applied_ones(
    gateway: PostgresGateway, tmp_path: Path
) -> None:
    directory = _copy_migrations(tmp_path / "migrations")
    following = max(m.version for m in discover_migrations()) + 1
    with trio.fail_after(30):
        await migrate(gateway, directory)
        (directory / f"{following:04d}_add_note.sql").write_text("ALTER TABLE alerts ADD COLUMN note text;")
        applied = await migrate(gateway, directory)
    assert [(m.version, m.name) for m in applied] == [(following, "add_note")]


async def test_two_nodes_migrating_at_once_apply_each_migration_once(
    gateway: PostgresGateway, db_url: str, nursery: trio.Nursery
) -> None:
    other = PostgresGateway(db_url, pool_min=1, pool_max=2)
    await nursery.start(other.serve)
    results: list[list[AppliedMigration]] = []

    async def run(node: PostgresGateway) -> None:
        results.append(list(await migrate(node)))

    with trio.fail_after(30):
        async with trio.open_nursery() as both:
            both.start_soon(run, gateway)
            both.start_soon(run, other)
    # Each migration is applied by exactly one of the two (they may take turns: the lock is per migration).
    applied = sorted(m.version for r in results for m in r)
    assert applied == [m.version for m in discover_migrations()]
    assert await gateway.fetchval("SELECT count(*) FROM schema_migrations", timeout=5) == len(
        discover_migrations()
    )


def test_packaged_migrations_are_numbered_files() -> None:
    names = [m.filename for m in discover_migrations()]
    assert names[0] == "0001_initial.sql"
    assert names == sorted(names)
