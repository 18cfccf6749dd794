"""Execution jobs: one row per plan an executor acted on (or was stopped from acting on).

Owns: the SQL of `execution_jobs` (0001 + 0004): a job is written RUNNING with the plan, the
followed trader and the scoring run *before* any of its intents exist (its id is part of every
intent's deterministic key), and ends COMPLETED, FAILED (with the reason) or CANCELLED (a kill
switch or a disable stopped it). `close_interrupted` ends the jobs a crash left RUNNING, once their
trades have been reconciled.

Failure it contains: a database that is down or slow -- every call has a deadline and raises the
typed `sql.errors` exceptions; the caller decides (an executor pauses).

May import: the standard library, attrs, `actors.database`.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from typing import Any, Final

import attrs

from actors.database import Database, Row

__all__ = ["JobStatus", "JobStore"]

_COLUMNS: Final = ("id, user_id, status, target_trader, scoring_run_id, trigger, plan, reason, created_at,"
                   " updated_at, finished_at")


class JobStatus(enum.StrEnum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@attrs.frozen
class JobStore:
    db: Database
    timeout_s: float = 5.0

    async def create(
        self, user_id: str, *, trader: str | None, scoring_run_id: str | None, trigger: str,
        plan: Mapping[str, Any], status: JobStatus = JobStatus.RUNNING, reason: str | None = None,
    ) -> str:
        job_id = f"job-{uuid.uuid4().hex}"
        finished = "now()" if status is not JobStatus.RUNNING else "NULL"
        await self.db.execute(
            "INSERT INTO execution_jobs (id, user_id, status, target_trader, scoring_run_id, trigger, plan,"
            f" reason, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, {finished})",
            job_id, user_id, status.value, trader, scoring_run_id, trigger, dict(plan), reason,
            timeout=self.timeout_s)
        return job_id

    async def finish(self, job_id: str, status: JobStatus, reason: str | None = None) -> None:
        await self.db.execute(
            "UPDATE execution_jobs SET status = $2, reason = $3, finished_at = now()"
            " WHERE id = $1 AND status = 'RUNNING'", job_id, status.value, reason, timeout=self.timeout_s)

    async def close_interrupted(self, user_id: str) -> int:
        """End the user's jobs left RUNNING by a crash (call after its trades are reconciled)."""
        tag = await self.db.execute(
            "UPDATE execution_jobs SET status = 'FAILED', reason = 'interrupted; its trades were reconciled',"
            " finished_at = now() WHERE user_id = $1 AND status IN ('RUNNING', 'PENDING')",
            user_id, timeout=self.timeout_s)
        return int(tag.rsplit(" ", 1)[-1]) if tag else 0

    async def day_start_value(self, user_id: str) -> float | None:
        """The vault's USD value in the user's first plan of the current UTC day (daily-loss base)."""
        value = await self.db.fetchval(
            "SELECT (plan->>'total_usd')::float8 FROM execution_jobs WHERE user_id = $1"
            " AND created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
            " AND plan ? 'total_usd' ORDER BY created_at LIMIT 1", user_id, timeout=self.timeout_s)
        return None if value is None else float(value)

    async def recent(self, user_id: str | None, limit: int) -> list[Row]:
        return await self.db.fetch(
            f"SELECT {_COLUMNS} FROM execution_jobs WHERE ($1::varchar IS NULL OR user_id = $1)"
            " ORDER BY created_at DESC LIMIT $2", user_id, limit, timeout=self.timeout_s)
