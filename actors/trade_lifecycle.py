"""The trade lifecycle: statuses, the one transition table, typed failure reasons, deterministic keys.

Owns: `TradeStatus`, `TRANSITIONS` (every legal status change, readable in one screen, mirrored by
the `trades_guard_transition` trigger of sql/migrations/0001_initial.sql -- tests/trades checks
the two agree on every pair), `FailureReason`, `check()` and the deterministic `intent_id` /
`idempotency_key` that make a second insert of the same decision a no-op (DESIGN section 6).

Failure it contains: an illegal status change (a bug, or two writers racing) is refused here with
`IllegalTransition` before it reaches the database, and again by the trigger if it does.

May import: the standard library only.
"""

from __future__ import annotations

import enum
import hashlib
from typing import Final

__all__ = [
    "TERMINAL",
    "TRANSITIONS",
    "FailureReason",
    "IllegalTransition",
    "TradeStatus",
    "check",
    "idempotency_key",
    "intent_id",
    "is_terminal",
]


class TradeStatus(enum.StrEnum):
    PENDING = "PENDING"  # decided; maybe signed and persisted; never sent unless signed bytes are durable
    SUBMITTED = "SUBMITTED"  # the stored bytes may be on the wire
    CONFIRMED = "CONFIRMED"  # landed and succeeded (terminal)
    FAILED = "FAILED"  # landed and failed, expired, or never sent (terminal, with a reason)


# (from, to): the whole lifecycle. A trade is born PENDING. Same status -> same status is not a
# transition (the store treats a repeat as an idempotent no-op).
TRANSITIONS: Final[frozenset[tuple[TradeStatus, TradeStatus]]] = frozenset({
    (TradeStatus.PENDING, TradeStatus.SUBMITTED),
    (TradeStatus.PENDING, TradeStatus.FAILED),
    (TradeStatus.SUBMITTED, TradeStatus.CONFIRMED),
    (TradeStatus.SUBMITTED, TradeStatus.FAILED),
})

TERMINAL: Final[frozenset[TradeStatus]] = frozenset({TradeStatus.CONFIRMED, TradeStatus.FAILED})


class FailureReason(enum.StrEnum):
    """Why an attempt is FAILED; stored verbatim in `trades.failure_reason`."""

    SLIPPAGE_EXCEEDED = "slippage_exceeded"  # vault 6007 or AMM 6001: fewer tokens than the minimum
    EXPIRED = "expired"  # not on chain and its blockhash is past last_valid_block_height
    INSUFFICIENT_FUNDS = "insufficient_funds"  # vault 6002, or the token program's insufficient funds
    UNAUTHORIZED = "unauthorized"  # vault 6003: the bot key is not this vault's bot authority
    VAULT_INACTIVE = "vault_inactive"  # vault 6000
    RPC_UNAVAILABLE = "rpc_unavailable"  # nothing could be signed or sent (no blockhash)
    REJECTED_BY_RISK = "rejected_by_risk"  # the executor's risk checks refused it before signing
    PROGRAM_ERROR = "program_error"  # any other program error (details hold the program and code)
    TRANSACTION_ERROR = "transaction_error"  # a runtime error that is not a program's custom error
    NEVER_SENT = "never_sent"  # found PENDING without signed bytes: it cannot have been sent


class IllegalTransition(Exception):
    """A status change that `TRANSITIONS` does not allow."""

    def __init__(self, from_status: TradeStatus, to_status: TradeStatus, trade_id: str | None = None) -> None:
        where = f" (trade {trade_id})" if trade_id else ""
        super().__init__(f"illegal trade transition {from_status} -> {to_status}{where}")
        self.from_status = from_status
        self.to_status = to_status
        self.trade_id = trade_id


def check(from_status: TradeStatus, to_status: TradeStatus, trade_id: str | None = None) -> None:
    """Raise `IllegalTransition` unless ``from_status -> to_status`` is in the table."""
    if (from_status, to_status) not in TRANSITIONS:
        raise IllegalTransition(from_status, to_status, trade_id)


def is_terminal(status: TradeStatus) -> bool:
    return status in TERMINAL


def intent_id(user_id: str, job_id: str, seq: int) -> str:
    """The executor's decision number ``seq`` of job ``job_id`` for ``user_id``, as a stable id.

    Hashed so that any user and job ids fit `trades.intent_id`; the same inputs always give the
    same id, so re-deciding after a crash finds the first decision instead of making a second.
    """
    if seq < 0:
        raise ValueError(f"intent sequence must be >= 0, got {seq}")
    digest = hashlib.sha256(f"{user_id}\x00{job_id}\x00{seq}".encode()).hexdigest()
    return f"intent-{digest[:48]}"


def idempotency_key(intent: str, attempt: int) -> str:
    """The key of attempt ``attempt`` (1-based) of ``intent``: unique in `trades`."""
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    return f"{intent}#{attempt}"
