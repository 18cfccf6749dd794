"""What the suites that run on the local chain and PostgreSQL share.

Owns: `in_workdir` (a scratch directory the embedded PostgreSQL's user can reach, removed after the
run) and `chain_and_database` (one ``python -m localnet`` node beside one embedded PostgreSQL with
every migration, up before the suite times anything; the node's output goes to ``node.log``).

May import: the standard library, trio, attrs, `engine`, `sql`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

import attrs
import trio

from engine.embedded_postgres import run_embedded_postgres
from engine.postgres_gateway import PostgresGateway
from sql.migrate import migrate

__all__ = ["Stand", "chain_and_database", "in_workdir"]

ROOT: Final = Path(__file__).resolve().parents[1]
UP_WITHIN_S: Final = 180.0

T = TypeVar("T")


def in_workdir(prefix: str, run: Callable[[Path], T]) -> T:
    """``run(workdir)`` in a fresh scratch directory, removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    workdir.chmod(0o755)  # the embedded postgres user must reach its files
    try:
        return run(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@attrs.frozen
class Stand:
    manifest: dict[str, Any]  # the node's manifest (rpcUrl, programs, mints, demo users...)
    db: PostgresGateway  # serving, migrated
    nursery: trio.Nursery  # where the suite may start its own long-lived tasks


@asynccontextmanager
async def chain_and_database(
    workdir: Path, chain_args: Sequence[str], gateway: Callable[[str], PostgresGateway],
) -> AsyncIterator[Stand]:
    """The node (``chain_args`` after its port and manifest arguments) and the database
    (``gateway(url)``), both up; everything started here is stopped on exit."""
    manifest_path = workdir / "manifest.json"
    cmd = [sys.executable, "-m", "localnet", "--rpc-port", "0", "--manifest", str(manifest_path),
           *chain_args]
    with (workdir / "node.log").open("wb") as node_log:
        async with run_embedded_postgres(workdir / "home") as pg, trio.open_nursery() as nursery:
            await nursery.start(partial(trio.run_process, cmd, cwd=ROOT, stdout=node_log,
                                        stderr=subprocess.STDOUT, check=False))
            db = gateway(pg.url)
            with trio.fail_after(UP_WITHIN_S):
                await nursery.start(db.serve)
                await migrate(db)
                while not manifest_path.exists():  # noqa: ASYNC110 -- written by another process
                    await trio.sleep(0.1)
            yield Stand(json.loads(manifest_path.read_text()), db, nursery)
            nursery.cancel_scope.cancel()
