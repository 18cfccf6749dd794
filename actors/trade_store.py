"""Trade persistence: the `trades` rows (one per attempt) and their `trade_events`, over `Database`.

Owns: every SQL statement that writes or reads a trade. Each status change is checked against
`actors.trade_lifecycle.TRANSITIONS` first and written as a compare-and-set on the status the
caller saw (``WHERE id = $1 AND status = $expected``); the `trades_guard_transition` trigger is
the second guard and the trigger `trades_record_event` appends the audit row. A repeated write
that already took effect (same target status, same signature) returns the stored row: every write
is idempotent, so a caller that lost the answer (timeout) may simply do it again.

Batching: concurrent `insert_intent` and `persist_signed` calls of one store share a round trip
(`actors.batcher.Batcher`): a batch of one runs the single-row statement; a larger batch runs one
multi-row statement (``INSERT ... SELECT FROM unnest(...)``, ``UPDATE ... FROM unnest(...)``) with
the same conditions, and every row it did not write (an existing key, a compare-and-set miss, a
repeated trade id) goes through the single-row logic, so each caller gets exactly the answer
(row, `StaleTrade`, `AttemptStillLive`...) it would get alone. A statement the server refuses for a
row (a constraint, a bad value) is retried row by row, so one bad row fails only its own caller;
a database that is down or slow fails the whole batch (each caller gets the typed error). The
deadline bounds each round trip: a call that queued while a batch was in flight waits for that
batch (itself bounded) and then goes in the next one.

Failure it contains: a database that is down or slow (every call has a deadline; the typed errors
of `sql.errors` propagate, and the caller must not touch the chain when a write failed), and
writers racing on one trade (`StaleTrade`, `IllegalTransition`, `AttemptStillLive`).

May import: the standard library, attrs, `sql`, `actors.database`, `actors.trade_lifecycle`,
`actors.batcher`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import attrs
from prometheus_client import Counter

from actors.batcher import Batcher, batcher_field, each, outcome
from actors.database import Database, Row
from actors.trade_lifecycle import (
    FailureReason,
    TradeStatus,
    check,
    idempotency_key,
    is_terminal,
)
from sql.errors import ROW_ERRORS, UniqueViolation

__all__ = [
    "AttemptStillLive",
    "NewTrade",
    "StaleTrade",
    "TradeEvent",
    "TradeNotFound",
    "TradeRecord",
    "TradeStore",
]

_COLUMNS: Final = (
    "id, user_id, execution_job_id, intent_id, attempt, idempotency_key, from_token, to_token, amount,"
    " amount_in, minimum_amount_out, amount_out, status, slippage, transaction_signature,"
    " signed_transaction, last_valid_block_height, failure_reason, failure_details, created_at, updated_at"
)


TRADES: Final = Counter(
    "xorj_trades_total", "Trade attempts that reached a terminal status, by status and failure reason",
    ["status", "reason"])


class TradeNotFound(LookupError):
    pass


class StaleTrade(Exception):
    """The trade is not in the status the caller expected (another writer moved it)."""


class AttemptStillLive(Exception):
    """A new attempt of an intent was asked for while one of its attempts is PENDING/SUBMITTED."""


@attrs.frozen
class NewTrade:
    """The first attempt of an intent, as the executor decided it."""

    user_id: str
    intent_id: str
    from_token: str  # input mint
    to_token: str  # output mint
    amount: Decimal  # human-scale input amount (the seed schema's column)
    amount_in: int  # base units of the input mint
    minimum_amount_out: int  # base units of the output mint
    execution_job_id: str | None = None
    slippage: Decimal | None = None  # percent


@attrs.frozen
class TradeRecord:
    id: str
    user_id: str
    execution_job_id: str | None
    intent_id: str
    attempt: int
    idempotency_key: str
    from_token: str
    to_token: str
    amount: Decimal
    amount_in: int | None  # None only on rows not written by this store (before 0003)
    minimum_amount_out: int | None
    amount_out: int | None
    status: TradeStatus
    slippage: Decimal | None
    transaction_signature: str | None
    signed_transaction: bytes | None
    last_valid_block_height: int | None
    failure_reason: str | None
    failure_details: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime

    @property
    def is_signed(self) -> bool:
        return self.signed_transaction is not None


@attrs.frozen
class TradeEvent:
    id: int
    trade_id: str
    from_status: TradeStatus | None
    to_status: TradeStatus
    reason: str | None
    details: Mapping[str, Any]
    created_at: datetime


def _int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def _record(row: Row) -> TradeRecord:
    signed = row["signed_transaction"]
    return TradeRecord(
        id=row["id"], user_id=row["user_id"], execution_job_id=row["execution_job_id"],
        intent_id=row["intent_id"], attempt=int(row["attempt"]), idempotency_key=row["idempotency_key"],
        from_token=row["from_token"], to_token=row["to_token"], amount=row["amount"],
        amount_in=_int(row["amount_in"]), minimum_amount_out=_int(row["minimum_amount_out"]),
        amount_out=_int(row["amount_out"]), status=TradeStatus(row["status"]), slippage=row["slippage"],
        transaction_signature=row["transaction_signature"],
        signed_transaction=None if signed is None else bytes(signed),
        last_valid_block_height=_int(row["last_valid_block_height"]),
        failure_reason=row["failure_reason"], failure_details=row["failure_details"] or {},
        created_at=row["created_at"], updated_at=row["updated_at"],
    )


def _event(row: Row) -> TradeEvent:
    return TradeEvent(
        id=int(row["id"]), trade_id=row["trade_id"],
        from_status=None if row["from_status"] is None else TradeStatus(row["from_status"]),
        to_status=TradeStatus(row["to_status"]), reason=row["reason"], details=row["details"] or {},
        created_at=row["created_at"],
    )


# Errors the server raises for a row of a multi-row statement: retried row by row, so only the
# offending row's caller sees it. Anything else (unavailable, timeout) fails the whole batch.


@attrs.frozen
class _Signed:
    trade_id: str
    signed_transaction: bytes
    signature: str
    last_valid_block_height: int


_INSERT: Final = (
    "INSERT INTO trades (id, user_id, execution_job_id, intent_id, attempt, idempotency_key, from_token,"
    " to_token, amount, amount_in, minimum_amount_out, slippage, status)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'PENDING')"
    f" ON CONFLICT (idempotency_key) DO NOTHING RETURNING {_COLUMNS}"
)
_INSERT_MANY: Final = (
    "INSERT INTO trades (id, user_id, execution_job_id, intent_id, attempt, idempotency_key, from_token,"
    " to_token, amount, amount_in, minimum_amount_out, slippage, status)"
    " SELECT b_id, b_user, b_job, b_intent, b_attempt, b_key, b_from, b_to, b_amount, b_in, b_min, b_slip,"
    " 'PENDING' FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::int[],"
    " $6::varchar[], $7::varchar[], $8::varchar[], $9::numeric[], $10::numeric[], $11::numeric[],"
    " $12::numeric[]) WITH ORDINALITY AS b(b_id, b_user, b_job, b_intent, b_attempt, b_key, b_from, b_to,"
    " b_amount, b_in, b_min, b_slip, b_ord) ORDER BY b_ord"
    f" ON CONFLICT (idempotency_key) DO NOTHING RETURNING {_COLUMNS}"
)
_PERSIST: Final = (
    "UPDATE trades SET signed_transaction = $2, transaction_signature = $3,"
    " last_valid_block_height = $4 WHERE id = $1 AND status = 'PENDING'"
    f" AND signed_transaction IS NULL RETURNING {_COLUMNS}"
)
_PERSIST_MANY: Final = (
    "UPDATE trades SET signed_transaction = b_tx, transaction_signature = b_sig,"
    " last_valid_block_height = b_height"
    " FROM unnest($1::varchar[], $2::bytea[], $3::varchar[], $4::bigint[]) AS b(b_id, b_tx, b_sig, b_height)"
    " WHERE trades.id = b_id AND trades.status = 'PENDING' AND trades.signed_transaction IS NULL"
    f" RETURNING {', '.join('trades.' + c.strip() for c in _COLUMNS.split(','))}"
)


@attrs.frozen
class TradeStore:
    """Trades over one `Database`; every call ends within ``timeout_s`` or raises a `sql.errors` type."""

    db: Database
    timeout_s: float = 5.0
    _intents: Batcher[NewTrade, TradeRecord] = batcher_field(lambda self: self._insert_intents)
    _signed: Batcher[_Signed, TradeRecord] = batcher_field(lambda self: self._persist_many)

    # -- reads -------------------------------------------------------------------------------

    async def get(self, trade_id: str) -> TradeRecord:
        row = await self.db.fetchrow(f"SELECT {_COLUMNS} FROM trades WHERE id = $1", trade_id,
                                     timeout=self.timeout_s)
        if row is None:
            raise TradeNotFound(trade_id)
        return _record(row)

    async def by_key(self, key: str) -> TradeRecord | None:
        row = await self.db.fetchrow(f"SELECT {_COLUMNS} FROM trades WHERE idempotency_key = $1", key,
                                     timeout=self.timeout_s)
        return None if row is None else _record(row)

    async def attempts(self, intent: str) -> list[TradeRecord]:
        """Every attempt of ``intent``, first attempt first."""
        rows = await self.db.fetch(f"SELECT {_COLUMNS} FROM trades WHERE intent_id = $1 ORDER BY attempt",
                                   intent, timeout=self.timeout_s)
        return [_record(r) for r in rows]

    async def non_terminal(self, user_id: str | None = None) -> list[TradeRecord]:
        """The PENDING and SUBMITTED attempts (all users, or one), oldest first: what reconcile visits."""
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM trades WHERE status IN ('PENDING', 'SUBMITTED')"
            " AND ($1::varchar IS NULL OR user_id = $1) ORDER BY created_at, id",
            user_id, timeout=self.timeout_s)
        return [_record(r) for r in rows]

    async def events(self, trade_id: str) -> list[TradeEvent]:
        rows = await self.db.fetch(
            "SELECT id, trade_id, from_status, to_status, reason, details, created_at FROM trade_events"
            " WHERE trade_id = $1 ORDER BY id", trade_id, timeout=self.timeout_s)
        return [_event(r) for r in rows]

    # -- writes ------------------------------------------------------------------------------

    async def insert_intent(self, trade: NewTrade) -> TradeRecord:
        """Attempt 1 of the intent, PENDING. A second call with the same intent is a no-op that
        returns the stored row (the unique idempotency key decides, not this process's memory)."""
        return await self._intents.submit(trade)

    async def _insert_intents(self, trades: Sequence[NewTrade]) -> list[TradeRecord | Exception]:
        """The batch of `insert_intent` calls: one INSERT for them all, the single-row logic for the rest."""
        if len(trades) == 1:
            return [await outcome(self._insert(trades[0], 1))]
        keys = [idempotency_key(t.intent_id, 1) for t in trades]
        try:
            [rows] = await self.db.transaction([(_INSERT_MANY, (
                [f"trade-{uuid.uuid4().hex}" for _ in trades], [t.user_id for t in trades],
                [t.execution_job_id for t in trades], [t.intent_id for t in trades], [1] * len(trades), keys,
                [t.from_token for t in trades], [t.to_token for t in trades], [t.amount for t in trades],
                [Decimal(t.amount_in) for t in trades], [Decimal(t.minimum_amount_out) for t in trades],
                [t.slippage for t in trades],
            ))], timeout=self.timeout_s)
        except ROW_ERRORS:
            return [await outcome(self._insert(t, 1)) for t in trades]
        inserted = {row["idempotency_key"]: _record(row) for row in rows}
        out: list[TradeRecord | Exception] = []
        for trade, key in zip(trades, keys, strict=True):
            record = inserted.get(key)
            # Not written by this statement: the key existed already -- the single-row answer.
            out.append(record if record is not None else await outcome(self._insert(trade, 1)))
        return out

    async def new_attempt(
        self, intent: str, *, minimum_amount_out: int | None = None, slippage: Decimal | None = None,
    ) -> TradeRecord:
        """The next attempt of ``intent`` (same trade, optionally another minimum), PENDING.

        Refused with `AttemptStillLive` while the latest attempt is PENDING or SUBMITTED: only a
        terminal attempt (e.g. FAILED expired -- proven never to land) may be followed. The
        partial unique index `trades_one_live_attempt_per_intent` backs this against races.
        """
        attempts = await self.attempts(intent)
        if not attempts:
            raise TradeNotFound(intent)
        last = attempts[-1]
        if not is_terminal(last.status):
            raise AttemptStillLive(f"intent {intent}: attempt {last.attempt} is {last.status}")
        minimum = last.minimum_amount_out if minimum_amount_out is None else minimum_amount_out
        if last.amount_in is None or minimum is None:
            raise ValueError(f"intent {intent}: attempt {last.attempt} has no base-unit amounts to repeat")
        base = NewTrade(
            user_id=last.user_id, intent_id=intent, from_token=last.from_token, to_token=last.to_token,
            amount=last.amount, amount_in=last.amount_in,
            minimum_amount_out=minimum,
            execution_job_id=last.execution_job_id, slippage=last.slippage if slippage is None else slippage,
        )
        return await self._insert(base, last.attempt + 1)

    async def _insert(self, trade: NewTrade, attempt: int) -> TradeRecord:
        key = idempotency_key(trade.intent_id, attempt)
        statement = (_INSERT, (
            f"trade-{uuid.uuid4().hex}", trade.user_id, trade.execution_job_id, trade.intent_id, attempt, key,
            trade.from_token, trade.to_token, trade.amount, Decimal(trade.amount_in),
            Decimal(trade.minimum_amount_out), trade.slippage,
        ))
        try:
            [rows] = await self.db.transaction([statement], timeout=self.timeout_s)
        except UniqueViolation as exc:
            if exc.constraint == "trades_one_live_attempt_per_intent":
                raise AttemptStillLive(f"intent {trade.intent_id}: another attempt is live") from exc
            raise
        if rows:
            return _record(rows[0])
        existing = await self.by_key(key)
        if existing is None:  # inserted and gone: only a delete could do that
            raise TradeNotFound(key)
        return existing

    async def persist_signed(
        self, trade_id: str, signed_transaction: bytes, signature: str, last_valid_block_height: int
    ) -> TradeRecord:
        """Make the signed bytes, their signature and expiry height durable while PENDING.

        The one write that must precede any send. Idempotent for the same signature; refuses
        (`StaleTrade`) a second, different signature -- a trade is never re-signed.
        """
        return await self._signed.submit(
            _Signed(trade_id, signed_transaction, signature, last_valid_block_height))

    async def _persist_many(self, items: Sequence[_Signed]) -> list[TradeRecord | Exception]:
        """The batch of `persist_signed` calls: one UPDATE for the first call of each trade; every
        row it did not write (and every repeated trade id) takes the single-row path."""
        first: dict[str, _Signed] = {}
        for item in items:
            first.setdefault(item.trade_id, item)
        if len(first) <= 1:
            return await each(self._persist_one, items)
        batch = list(first.values())
        try:
            rows = await self._write(
                _PERSIST_MANY, [i.trade_id for i in batch], [i.signed_transaction for i in batch],
                [i.signature for i in batch], [i.last_valid_block_height for i in batch])
        except ROW_ERRORS:
            return await each(self._persist_one, items)
        written = {row["id"]: _record(row) for row in rows}
        out: list[TradeRecord | Exception] = []
        for item in items:
            record = written.get(item.trade_id) if first[item.trade_id] is item else None
            out.append(record if record is not None else await outcome(self._persist_one(item)))
        return out

    async def _persist_one(self, item: _Signed) -> TradeRecord:
        trade_id, signature = item.trade_id, item.signature
        rows = await self._write(_PERSIST, trade_id, item.signed_transaction, signature,
                                 item.last_valid_block_height)
        if rows:
            return _record(rows[0])
        current = await self.get(trade_id)
        if current.status is TradeStatus.PENDING and current.transaction_signature == signature:
            return current
        raise StaleTrade(f"trade {trade_id} is {current.status}, signature {current.transaction_signature}:"
                         " it cannot take new signed bytes")

    async def mark_submitted(self, trade_id: str) -> TradeRecord:
        return await self._transition(trade_id, TradeStatus.PENDING, TradeStatus.SUBMITTED, "", ())

    async def mark_confirmed(self, trade_id: str, amount_out: int) -> TradeRecord:
        return await self._transition(trade_id, TradeStatus.SUBMITTED, TradeStatus.CONFIRMED,
                                      ", amount_out = $3", (Decimal(amount_out),))

    async def mark_failed(
        self, trade_id: str, from_status: TradeStatus, reason: FailureReason,
        details: Mapping[str, Any] | None = None,
    ) -> TradeRecord:
        return await self._transition(trade_id, from_status, TradeStatus.FAILED,
                                      ", failure_reason = $3, failure_details = $4",
                                      (reason.value, dict(details or {})))

    async def record_resend(self, trade: TradeRecord) -> None:
        """Append an audit row for a re-send of the stored bytes (no status change)."""
        await self._write(
            "INSERT INTO trade_events (trade_id, from_status, to_status, reason, details)"
            " VALUES ($1, $2, $2, 'resent', $3) RETURNING id",
            trade.id, trade.status.value, {"transaction_signature": trade.transaction_signature})

    async def _transition(
        self, trade_id: str, expected: TradeStatus, target: TradeStatus, extra_set: str,
        extra_args: tuple[object, ...],
    ) -> TradeRecord:
        check(expected, target, trade_id)
        rows = await self._write(
            f"UPDATE trades SET status = $2{extra_set} WHERE id = $1 AND status = '{expected.value}'"
            f" RETURNING {_COLUMNS}", trade_id, target.value, *extra_args)
        if rows:
            record = _record(rows[0])
            if is_terminal(target):
                TRADES.labels(target.value, record.failure_reason or "").inc()
            return record
        current = await self.get(trade_id)
        if current.status is target:  # a repeat of a write that already took effect
            return current
        raise StaleTrade(
            f"trade {trade_id} is {current.status}, not {expected}: {expected} -> {target} refused")

    async def _write(self, sql: str, *args: object) -> list[Row]:
        [rows] = await self.db.transaction([(sql, args)], timeout=self.timeout_s)
        return rows
