"""The first migration's schema enforces the trade lifecycle and the seed's CHECKs by itself."""

from __future__ import annotations

import pytest
import trio

from engine.postgres_gateway import CheckViolation, PostgresGateway, RestrictViolation, UniqueViolation

INSERT_TRADE = """
    INSERT INTO trades (id, user_id, intent_id, attempt, idempotency_key, from_token, to_token, amount)
    VALUES ($1, 'u1', $2, $3, $4, 'So11111111111111111111111111111111111111112',
            'EPjFWdd5AufqSSqeM2qrxzWWDtstCXZuGDjs1DLZUzQ', 1.5)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
"""
SUBMIT = """
    UPDATE trades SET status = 'SUBMITTED', signed_transaction = '\\x01'::bytea,
           transaction_signature = $2, last_valid_block_height = 1000
    WHERE id = $1
"""


async def _user(db: PostgresGateway) -> None:
    await db.transaction(
        [
            (
                "INSERT INTO users (id, wallet_address)"
                " VALUES ('u1', 'Wallet1111111111111111111111111111111111111')",
                (),
            ),
            ("INSERT INTO user_settings (user_id) VALUES ('u1')", ()),
        ],
        timeout=5,
    )


async def _trade(db: PostgresGateway, trade_id: str, *, intent: str = "i1", attempt: int = 1) -> None:
    await db.fetch(INSERT_TRADE, trade_id, intent, attempt, f"u1:job:{intent}:{attempt}", timeout=5)


async def _set_status(db: PostgresGateway, trade_id: str, status: str, reason: str | None = None) -> str:
    return await db.execute(
        "UPDATE trades SET status = $2, failure_reason = coalesce($3, failure_reason) WHERE id = $1",
        trade_id,
        status,
        reason,
        timeout=5,
    )


async def test_legal_lifecycle_is_recorded_in_trade_events(schema: PostgresGateway) -> None:
    with trio.fail_after(20):
        await _user(schema)
        await _trade(schema, "t1")
        await schema.execute(SUBMIT, "t1", "sig1", timeout=5)
        await _set_status(schema, "t1", "SUBMITTED")  # same state: a no-op, allowed
        await _set_status(schema, "t1", "CONFIRMED")
        events = await schema.fetch(
            "SELECT from_status, to_status, details FROM trade_events WHERE trade_id = 't1' ORDER BY id",
            timeout=5,
        )
    assert [(e["from_status"], e["to_status"]) for e in events] == [
        (None, "PENDING"),
        ("PENDING", "SUBMITTED"),
        ("SUBMITTED", "CONFIRMED"),
    ]
    assert events[1]["details"]["transaction_signature"] == "sig1"


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], "CONFIRMED"),  # PENDING -> CONFIRMED skips SUBMITTED
        (["SUBMIT", "CONFIRMED"], "FAILED"),  # terminal CONFIRMED never changes
        (["SUBMIT", "CONFIRMED"], "PENDING"),
        (["FAILED"], "SUBMITTED"),  # terminal FAILED never changes
        (["FAILED"], "PENDING"),
        (["SUBMIT"], "PENDING"),  # no way back
    ],
)
async def test_database_refuses_illegal_status_transitions(
    schema: PostgresGateway, path: list[str], illegal: str
) -> None:
    with trio.fail_after(20):
        await _user(schema)
        await _trade(schema, "t1")
        for step in path:
            if step == "SUBMIT":
                await schema.execute(SUBMIT, "t1", "sig1", timeout=5)
            else:
                await _set_status(schema, "t1", step, reason="expired")
        with pytest.raises(CheckViolation) as refused:
            await _set_status(schema, "t1", illegal, reason="expired")
    assert refused.value.constraint == "trades_status_transition"


async def test_a_trade_is_born_pending_and_is_only_sent_once_durable(schema: PostgresGateway) -> None:
    with trio.fail_after(20):
        await _user(schema)
        with pytest.raises(CheckViolation, match="starts PENDING"):
            await schema.execute(
                "INSERT INTO trades"
                " (id, user_id, intent_id, idempotency_key, from_token, to_token, amount, status)"
                " VALUES ('t9', 'u1', 'i9', 'k9', 'a', 'b', 1, 'SUBMITTED')",
                timeout=5,
            )
        await _trade(schema, "t1")
        with pytest.raises(CheckViolation) as not_durable:
            await _set_status(schema, "t1", "SUBMITTED")
        with pytest.raises(CheckViolation) as no_reason:
            await _set_status(schema, "t1", "FAILED")
    assert not_durable.value.constraint == "trades_sent_is_durable_check"
    assert no_reason.value.constraint == "trades_failed_has_reason_check"


async def test_trade_events_are_append_only(schema: PostgresGateway) -> None:
    with trio.fail_after(20):
        await _user(schema)
        await _trade(schema, "t1")
        with pytest.raises(RestrictViolation):
            await schema.execute("UPDATE trade_events SET reason = 'rewritten'", timeout=5)
        with pytest.raises(RestrictViolation):
            await schema.execute("DELETE FROM trade_events", timeout=5)
        with pytest.raises(RestrictViolation):
            await schema.execute("TRUNCATE trade_events", timeout=5)
        assert await schema.fetchval("SELECT count(*) FROM trade_events", timeout=5) == 1


async def test_second_insert_with_the_same_idempotency_key_is_a_no_op(schema: PostgresGateway) -> None:
    with trio.fail_after(20):
        await _user(schema)
        first = await schema.fetch(INSERT_TRADE, "t1", "i1", 1, "u1:job:i1:1", timeout=5)
        again = await schema.fetch(INSERT_TRADE, "t2", "i1", 1, "u1:job:i1:1", timeout=5)
        with pytest.raises(UniqueViolation) as plain_duplicate:
            await schema.execute(
                "INSERT INTO trades"
                " (id, user_id, intent_id, attempt, idempotency_key, from_token, to_token, amount)"
                " VALUES ('t3', 'u1', 'i3', 1, 'u1:job:i1:1', 'a', 'b', 1)",
                timeout=5,
            )
        count = await schema.fetchval("SELECT count(*) FROM trades", timeout=5)
    assert first == [{"id": "t1"}]
    assert again == []
    assert count == 1
    assert plain_duplicate.value.constraint == "trades_idempotency_key_key"


async def test_a_new_attempt_of_an_intent_waits_for_the_previous_to_be_terminal(
    schema: PostgresGateway,
) -> None:
    with trio.fail_after(20):
        await _user(schema)
        await _trade(schema, "t1", attempt=1)
        with pytest.raises(UniqueViolation) as refused:
            await _trade(schema, "t2", attempt=2)
        await _set_status(schema, "t1", "FAILED", reason="expired")
        await _trade(schema, "t2", attempt=2)
        rows = await schema.fetch("SELECT id, status FROM trades ORDER BY attempt", timeout=5)
    assert refused.value.constraint == "trades_one_live_attempt_per_intent"
    assert rows == [{"id": "t1", "status": "FAILED"}, {"id": "t2", "status": "PENDING"}]


@pytest.mark.parametrize(
    ("sql", "constraint"),
    [
        ("UPDATE user_settings SET risk_profile = 'YOLO'", "user_settings_risk_profile_check"),
        ("UPDATE user_settings SET slippage_tolerance = 7.5", "user_settings_slippage_tolerance_check"),
        (
            "INSERT INTO scoring_runs (id, status, finished_at) VALUES ('r1', 'DONE', now())",
            "scoring_runs_status_check",
        ),
        (
            "INSERT INTO execution_jobs (id, user_id, status) VALUES ('j1', 'u1', 'MAYBE')",
            "execution_jobs_status_check",
        ),
        ("INSERT INTO alerts (severity, kind, subject) VALUES ('PANIC', 'k', 's')", "alerts_severity_check"),
    ],
)
async def test_seed_checks_refuse_unknown_values(schema: PostgresGateway, sql: str, constraint: str) -> None:
    with trio.fail_after(20):
        await _user(schema)
        with pytest.raises(CheckViolation) as refused:
            await schema.execute(sql, timeout=5)
    assert refused.value.constraint == constraint


async def test_alerts_with_the_same_dedup_key_are_one_alert(schema: PostgresGateway) -> None:
    insert = (
        "INSERT INTO alerts (severity, kind, subject, details, dedup_key)"
        " VALUES ('CRITICAL', 'rpc_down', 'rpc', $1, $2)"
        " ON CONFLICT (dedup_key) DO NOTHING"
    )
    with trio.fail_after(20):
        await schema.execute(insert, {"url": "a"}, "rpc_down:1", timeout=5)
        await schema.execute(insert, {"url": "b"}, "rpc_down:1", timeout=5)
        rows = await schema.fetch("SELECT details FROM alerts", timeout=5)
    assert rows == [{"details": {"url": "a"}}]


async def test_seed_indexes_exist(schema: PostgresGateway) -> None:
    rows = await schema.fetch("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'", timeout=5)
    defs = "\n".join(r["indexdef"] for r in rows)
    for expected in (
        "trader_scores USING btree (run_id, xorj_trust_score DESC)",
        "trades USING btree (user_id, created_at DESC)",
        "execution_jobs USING btree (status)",
        "scoring_runs USING btree (created_at DESC)",
    ):
        assert expected in defs
