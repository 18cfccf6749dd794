"""The trade lifecycle in the database: the code's transition table and the trigger agree on every
pair, an intent insert is idempotent, a live attempt blocks a new one, and an illegal status change
is refused by the code before the database sees it."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from actors.trade_lifecycle import (
    TRANSITIONS,
    FailureReason,
    IllegalTransition,
    TradeStatus,
    check,
    idempotency_key,
    intent_id,
)
from actors.trade_store import AttemptStillLive, NewTrade, StaleTrade, TradeStore
from engine.postgres_gateway import PostgresGateway
from sql.errors import CheckViolation

SIGNED = b"\x01" * 64


def intent(seq: int) -> NewTrade:
    return NewTrade(user_id="user-1", intent_id=intent_id("user-1", "job-1", seq), from_token="USDC-mint",
                    to_token="JUP-mint", amount=Decimal("2"), amount_in=2_000_000, minimum_amount_out=1)


async def reach(store: TradeStore, seq: int, status: TradeStatus) -> str:
    """A fresh trade, signed (so that only the transition rule can refuse it), driven to ``status``."""
    trade = await store.insert_intent(intent(seq))
    await store.persist_signed(trade.id, SIGNED, f"sig-{seq}", 100)
    if status is TradeStatus.PENDING:
        return trade.id
    if status is TradeStatus.FAILED:
        return (await store.mark_failed(trade.id, TradeStatus.PENDING, FailureReason.EXPIRED)).id
    await store.mark_submitted(trade.id)
    if status is TradeStatus.CONFIRMED:
        await store.mark_confirmed(trade.id, 5)
    return trade.id


async def test_the_transition_table_and_the_database_trigger_agree_on_every_pair(store: TradeStore) -> None:
    db: PostgresGateway = store.db  # type: ignore[assignment]
    statuses = list(TradeStatus)
    for seq, (old, new) in enumerate(itertools.product(statuses, statuses)):
        if old is new:
            continue
        trade_id = await reach(store, seq, old)
        try:
            await db.execute(
                "UPDATE trades SET status = $2, failure_reason = 'test', amount_out = 1 WHERE id = $1",
                trade_id, new.value, timeout=10)
            database_allows = True
        except CheckViolation as exc:
            assert exc.constraint == "trades_status_transition", exc
            database_allows = False
        try:
            check(old, new)
            code_allows = True
        except IllegalTransition:
            code_allows = False
        assert code_allows == database_allows == ((old, new) in TRANSITIONS), (old, new)
    # a trade is born PENDING, in the code (insert_intent) and in the database
    for status in (TradeStatus.SUBMITTED, TradeStatus.CONFIRMED, TradeStatus.FAILED):
        with pytest.raises(CheckViolation):
            await db.execute(
                "INSERT INTO trades (id, user_id, intent_id, idempotency_key, from_token, to_token, amount,"
                " status, signed_transaction, transaction_signature, last_valid_block_height, failure_reason,"
                " amount_out) VALUES ($1, 'user-1', $1, $1, 'a', 'b', 1, $2, '\\x01', $1, 1, 'x', 1)",
                f"born-{status}", status.value, timeout=10)


async def test_a_second_insert_of_an_intent_returns_the_first_and_writes_nothing(store: TradeStore) -> None:
    first = await store.insert_intent(intent(1))
    again = await store.insert_intent(intent(1))
    assert again == first
    assert first.idempotency_key == idempotency_key(first.intent_id, 1) and first.attempt == 1
    assert [r.id for r in await store.attempts(first.intent_id)] == [first.id]
    events = await store.events(first.id)
    assert [(e.from_status, e.to_status) for e in events] == [(None, TradeStatus.PENDING)]
    assert intent_id("user-1", "job-1", 1) == first.intent_id != intent_id("user-1", "job-1", 2)


async def test_a_new_attempt_is_refused_while_one_is_live_and_follows_a_terminal_one(
    store: TradeStore,
) -> None:
    first = await store.insert_intent(intent(1))
    with pytest.raises(AttemptStillLive):
        await store.new_attempt(first.intent_id)
    await store.persist_signed(first.id, SIGNED, "sig-1", 100)
    await store.mark_submitted(first.id)
    with pytest.raises(AttemptStillLive):
        await store.new_attempt(first.intent_id)
    # the database's partial unique index refuses a second live attempt even past the code
    with pytest.raises(AttemptStillLive):
        await store._insert(intent(1), 2)
    await store.mark_failed(first.id, TradeStatus.SUBMITTED, FailureReason.EXPIRED, {"block_height": 101})
    second = await store.new_attempt(first.intent_id, minimum_amount_out=7)
    assert (second.attempt, second.status, second.minimum_amount_out) == (2, TradeStatus.PENDING, 7)
    assert second.idempotency_key == idempotency_key(first.intent_id, 2)
    assert [t.attempt for t in await store.attempts(first.intent_id)] == [1, 2]
    assert [t.id for t in await store.non_terminal("user-1")] == [second.id]
    failed = (await store.attempts(first.intent_id))[0]
    assert (failed.failure_reason, failed.failure_details) == ("expired", {"block_height": 101})


async def test_illegal_or_stale_status_changes_are_refused_and_repeats_are_no_ops(store: TradeStore) -> None:
    trade = await store.insert_intent(intent(1))
    with pytest.raises(IllegalTransition):
        await store.mark_failed(trade.id, TradeStatus.CONFIRMED, FailureReason.EXPIRED)
    with pytest.raises(CheckViolation):  # SUBMITTED without durable signed bytes: the schema refuses
        await store.mark_submitted(trade.id)
    signed = await store.persist_signed(trade.id, SIGNED, "sig-1", 100)
    assert await store.persist_signed(trade.id, SIGNED, "sig-1", 100) == signed
    with pytest.raises(StaleTrade):  # never re-signed
        await store.persist_signed(trade.id, b"\x02" * 64, "sig-2", 120)
    submitted = await store.mark_submitted(trade.id)
    assert await store.mark_submitted(trade.id) == submitted
    confirmed = await store.mark_confirmed(trade.id, 42)
    assert confirmed.amount_out == 42 and confirmed.status is TradeStatus.CONFIRMED
    with pytest.raises(StaleTrade):
        await store.mark_failed(trade.id, TradeStatus.SUBMITTED, FailureReason.EXPIRED)
    assert [(e.from_status, e.to_status) for e in await store.events(trade.id)] == [
        (None, TradeStatus.PENDING), (TradeStatus.PENDING, TradeStatus.SUBMITTED),
        (TradeStatus.SUBMITTED, TradeStatus.CONFIRMED)]
