"""Execution jobs: one row per plan an executor acted on (or was stopped from acting on).

Owns: the SQL of `execution_jobs` (0001 + 0004): a job is written RUNNING with the plan, the
followed trader and the scoring run *before* any of its intents exist (its id is part of every
intent's deterministic key), and ends COMPLETED, FAILED (with the reason) or CANCELLED (a kill
switch or a disable stopped it). `close_interrupted` ends the jobs a crash left RUNNING, once their
trades have been reconciled.

Batching: concurrent `create` and `finish` calls of one store share a round trip
(`actors.batcher.Batcher`): a batch of one runs the single-row statement, a larger one a multi-row
``INSERT ... SELECT FROM unnest(...)`` / ``UPDATE ... FROM unnest(...)`` with the same conditions
(a repeated job id in one `finish` batch runs after it, row by row, so the first call wins as it
would alone). A statement the server refuses for a row (a constraint, a bad value) is retried row
by row, so one bad row fails only its own caller. The deadline bounds each round trip; a call that
queued during a batch's round trip waits for it, then goes in the next batch.

Failure it contains: a database that is down or slow -- every call has a deadline and raises the
typed `sql.errors` exceptions (to every caller of a batch); the caller decides (an executor pauses).

May import: the standard library, attrs, `sql`, `actors.database`, `actors.batcher`.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from actors.batcher import Batcher, batcher_field, each, outcome
from actors.database import Database, Row
from sql.errors import ROW_ERRORS

__all__ = ["JobStatus", "JobStore"]

_COLUMNS: Final = ("id, user_id, status, target_trader, scoring_run_id, trigger, plan, reason, created_at,"
                   " updated_at, finished_at")


# Errors the server raises for a row of a multi-row statement: retried row by row.

_CREATE_MANY: Final = (
    "INSERT INTO execution_jobs (id, user_id, status, target_trader, scoring_run_id, trigger, plan, reason,"
    " finished_at) SELECT b_id, b_user, b_status, b_trader, b_run, b_trigger, b_plan::jsonb, b_reason,"
    " CASE WHEN b_status = 'RUNNING' THEN NULL ELSE now() END"
    " FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::varchar[], $6::varchar[],"
    " $7::text[], $8::text[]) WITH ORDINALITY"
    " AS b(b_id, b_user, b_status, b_trader, b_run, b_trigger, b_plan, b_reason, b_ord) ORDER BY b_ord"
)
_FINISH_MANY: Final = (
    "UPDATE execution_jobs SET status = b_status, reason = b_reason, finished_at = now()"
    " FROM unnest($1::varchar[], $2::varchar[], $3::text[]) AS b(b_id, b_status, b_reason)"
    " WHERE execution_jobs.id = b_id AND execution_jobs.status = 'RUNNING'"
)


class JobStatus(enum.StrEnum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@attrs.frozen
class _NewJob:
    job_id: str
    user_id: str
    status: JobStatus
    trader: str | None
    scoring_run_id: str | None
    trigger: str
    plan: dict[str, Any]
    plan_json: str  # serialised by the caller, so a plan that cannot be fails only its own call
    reason: str | None


@attrs.frozen
class _Finish:
    job_id: str
    status: JobStatus
    reason: str | None


@attrs.frozen
class JobStore:
    db: Database
    timeout_s: float = 5.0
    _creates: Batcher[_NewJob, None] = batcher_field(lambda self: self._create_many)
    _finishes: Batcher[_Finish, None] = batcher_field(lambda self: self._finish_many)

    async def create(
        self, user_id: str, *, trader: str | None, scoring_run_id: str | None, trigger: str,
        plan: Mapping[str, Any], status: JobStatus = JobStatus.RUNNING, reason: str | None = None,
    ) -> str:
        job = dict(plan)
        item = _NewJob(f"job-{uuid.uuid4().hex}", user_id, status, trader, scoring_run_id, trigger, job,
                       json.dumps(job), reason)
        await self._creates.submit(item)
        return item.job_id

    async def _create_one(self, job: _NewJob) -> None:
        finished = "now()" if job.status is not JobStatus.RUNNING else "NULL"
        await self.db.execute(
            "INSERT INTO execution_jobs (id, user_id, status, target_trader, scoring_run_id, trigger, plan,"
            f" reason, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, {finished})",
            job.job_id, job.user_id, job.status.value, job.trader, job.scoring_run_id, job.trigger, job.plan,
            job.reason, timeout=self.timeout_s)

    async def _create_many(self, jobs: Sequence[_NewJob]) -> list[Exception | None]:
        if len(jobs) == 1:
            return [await outcome(self._create_one(jobs[0]))]
        try:
            await self.db.execute(
                _CREATE_MANY, [j.job_id for j in jobs], [j.user_id for j in jobs],
                [j.status.value for j in jobs], [j.trader for j in jobs], [j.scoring_run_id for j in jobs],
                [j.trigger for j in jobs], [j.plan_json for j in jobs], [j.reason for j in jobs],
                timeout=self.timeout_s)
        except ROW_ERRORS:
            return await each(self._create_one, jobs)
        return [None] * len(jobs)

    async def finish(self, job_id: str, status: JobStatus, reason: str | None = None) -> None:
        await self._finishes.submit(_Finish(job_id, status, reason))

    async def _finish_one(self, item: _Finish) -> None:
        await self.db.execute(
            "UPDATE execution_jobs SET status = $2, reason = $3, finished_at = now()"
            " WHERE id = $1 AND status = 'RUNNING'", item.job_id, item.status.value, item.reason,
            timeout=self.timeout_s)

    async def _finish_many(self, items: Sequence[_Finish]) -> list[Exception | None]:
        first: dict[str, _Finish] = {}
        for item in items:
            first.setdefault(item.job_id, item)
        if len(first) <= 1:
            return await each(self._finish_one, items)
        batch = list(first.values())
        try:
            await self.db.execute(_FINISH_MANY, [i.job_id for i in batch], [i.status.value for i in batch],
                                  [i.reason for i in batch], timeout=self.timeout_s)
        except ROW_ERRORS:
            return await each(self._finish_one, items)
        # A repeated job id: the first call took effect (or not) above; the later ones are the
        # single-row no-ops (or writes) they would be alone, in order.
        return [None if first[i.job_id] is i else await outcome(self._finish_one(i)) for i in items]

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
