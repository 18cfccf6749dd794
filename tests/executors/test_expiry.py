"""Blockhash expiry: the chain drops every transaction (``dropRate`` 1.0) while an attempt is sent,
until its ``last_valid_block_height`` passes. The attempt is FAILED expired -- proven never to
land -- and only then is a new attempt of the same intent made, which confirms once the chain
lands transactions again."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from tests.executors.conftest import Engine, attempts, drill, eventually, wait_status


async def _failed_at(engine: Engine, trade_id: str) -> dt.datetime:
    at = await engine.db.fetchval(
        "SELECT created_at FROM trade_events WHERE trade_id = $1 AND to_status = 'FAILED'",
        trade_id, timeout=10)
    assert isinstance(at, dt.datetime), trade_id
    return at


async def test_dropped_attempt_expires_before_a_new_attempt_is_made(engine: Engine) -> None:
    owner = engine.demo_owner(2)
    await engine.set_faults(dropRate=1.0)
    intent = str((await drill(engine, owner))["intent_id"])
    first = await wait_status(engine, intent, 1, {"SUBMITTED"})
    expiry = int(first["last_valid_block_height"])

    async def expired_alone() -> dict[str, Any] | None:
        rows = await attempts(engine, intent)
        height = await engine.block_height()
        if height <= expiry:
            # still within its blockhash's life: it could land, so no second attempt may exist
            assert len(rows) == 1 and rows[0]["status"] == "SUBMITTED", (height, expiry, rows)
        return rows[0] if rows[0]["status"] == "FAILED" else None

    failed = await eventually(expired_alone, within=30, poll=0.05, what="attempt 1 FAILED expired")
    assert failed["failure_reason"] == "expired", failed
    assert not await engine.landed(str(failed["transaction_signature"]))
    await engine.set_faults(dropRate=0.0)

    confirmed = await eventually(lambda: _confirmed(engine, intent), within=40,
                                 what="a later attempt of the intent CONFIRMED")
    rows = await attempts(engine, intent)
    assert [r["attempt"] for r in rows] == list(range(1, len(rows) + 1))
    assert confirmed["attempt"] >= 2 and confirmed is not None
    for previous, following in itertools.pairwise(rows):
        assert previous["status"] == "FAILED" and previous["failure_reason"] == "expired", previous
        assert following["created_at"] >= await _failed_at(engine, previous["id"])
        assert not await engine.landed(str(previous["transaction_signature"]))
    assert len({r["transaction_signature"] for r in rows}) == len(rows)  # a new signature each time
    events = await engine.executed(str(confirmed["transaction_signature"]))
    assert len(events) == 1 and events[0].amount_out == int(confirmed["amount_out"])


async def _confirmed(engine: Engine, intent: str) -> dict[str, Any] | None:
    rows = await attempts(engine, intent)
    return next((r for r in rows if r["status"] == "CONFIRMED"), None)
