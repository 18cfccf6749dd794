"""The pure parts of the lifecycle: the table's shape, the deterministic keys, and the typed failure
reason decoded from a landed transaction's error and logs (the program that failed decides what
a code means: 6001 is the AMM's SlippageExceeded but the vault's InvalidAmount)."""

from __future__ import annotations

import pytest
from solders.transaction_status import (
    InstructionErrorCustom,
    TransactionErrorFieldless,
    TransactionErrorInstructionError,
)

from actors.trade_execution import TOKEN_PROGRAM, failure_reason_for
from actors.trade_lifecycle import (
    TERMINAL,
    TRANSITIONS,
    FailureReason,
    IllegalTransition,
    TradeStatus,
    check,
    idempotency_key,
    intent_id,
)

VAULT, AMM = "Vau1t11111111111111111111111111111111111111", "Amm1111111111111111111111111111111111111111"
PROGRAMS = {VAULT: "vault", AMM: "amm"}


def failed(program: str, code: int) -> list[str]:
    return [f"Program {VAULT} invoke [1]", f"Program {program} failed: custom program error: {hex(code)}",
            f"Program {VAULT} failed: custom program error: {hex(code)}"]


def custom(code: int) -> TransactionErrorInstructionError:
    return TransactionErrorInstructionError(0, InstructionErrorCustom(code))


def test_terminal_statuses_have_no_way_out_and_every_trade_can_end() -> None:
    assert not any(old in TERMINAL for old, _ in TRANSITIONS)
    assert {new for _, new in TRANSITIONS} >= TERMINAL
    with pytest.raises(IllegalTransition):
        check(TradeStatus.PENDING, TradeStatus.CONFIRMED)  # never confirmed without being sent
    with pytest.raises(IllegalTransition):
        check(TradeStatus.FAILED, TradeStatus.PENDING)


def test_keys_are_deterministic_and_distinct_per_decision_and_attempt() -> None:
    assert intent_id("u", "j", 3) == intent_id("u", "j", 3)
    assert len({intent_id("u", "j", 3), intent_id("u", "j", 4), intent_id("u", "k", 3),
                intent_id("uj", "", 3)}) == 4
    assert len(intent_id("u" * 64, "j" * 64, 10**9)) <= 128
    assert idempotency_key("i", 1) != idempotency_key("i", 2)
    with pytest.raises(ValueError):
        idempotency_key("i", 0)


@pytest.mark.parametrize(("program", "code", "reason"), [
    (VAULT, 6007, FailureReason.SLIPPAGE_EXCEEDED),
    (AMM, 6001, FailureReason.SLIPPAGE_EXCEEDED),
    (VAULT, 6001, FailureReason.PROGRAM_ERROR),  # the vault's InvalidAmount
    (VAULT, 6002, FailureReason.INSUFFICIENT_FUNDS),
    (VAULT, 6003, FailureReason.UNAUTHORIZED),
    (VAULT, 6000, FailureReason.VAULT_INACTIVE),
    (TOKEN_PROGRAM, 1, FailureReason.INSUFFICIENT_FUNDS),
])
def test_a_program_error_is_decoded_by_the_program_that_raised_it(
    program: str, code: int, reason: FailureReason
) -> None:
    outcome = failure_reason_for(custom(code), failed(program, code), PROGRAMS)
    assert (outcome.succeeded, outcome.reason, outcome.details["code"]) == (False, reason, code)


def test_a_runtime_error_is_a_transaction_error() -> None:
    outcome = failure_reason_for(TransactionErrorFieldless.InsufficientFundsForFee, [], PROGRAMS)
    assert outcome.reason is FailureReason.TRANSACTION_ERROR
