"""One trade attempt on chain, exactly once: build, sign, persist, send, confirm -- and `reconcile()`.

Owns: the order of effects that makes a crash at any point safe (DESIGN section 6):

1. get a blockhash and its ``last_valid_block_height``; build the vault ``bot_trade`` (the swap leg
   is a `Route` given by the caller: the local AMM now, a Jupiter route later); sign with the bot key;
2. persist the signed bytes, the signature and the expiry height while the trade is PENDING --
   if that write fails, nothing is sent (the exception propagates before any send);
3. `settle()`: the same code for a fresh attempt and for recovery. Until the outcome is known, it
   reads the finalized block height, *then* the signature status: found (confirmed) -> CONFIRMED with the
   ``amount_out`` of the `TradeExecuted` event in the transaction's logs, or FAILED with the
   program error decoded into a `FailureReason`; not found while the block height is still within
   ``last_valid_block_height`` -> (re)send the *same stored bytes* (same signature: it cannot
   execute twice) and make sure the row is SUBMITTED; not found with the block height already past
   it -> FAILED(expired), which proves it never lands (the height was read before the status).
   A transient `RpcUnavailable` while polling is retried until ``settle_within_s``.

`reconcile()` runs `settle()` for every non-terminal trade: what an executor does when it starts,
and periodically; not a special recovery mode (crash-only). A PENDING trade without signed bytes
was never sent (the bytes are durable before any send), so it is FAILED(never_sent).

Transactions are sent with ``skipPreflight``: every outcome, a program error included, is read from
the chain by one path, and a duplicate send is dropped by the cluster, never executed twice.

Failure it contains: a crash, an RPC outage or a database outage between any two steps. It never
signs twice for one trade, never sends bytes that are not durable, and never declares a trade
FAILED while its transaction could still land. A database error or an RPC refusal inside
`settle()` propagates (typed: `sql.errors.DatabaseError`, `RpcNodeError`...) and leaves the trade
for the next reconcile; `settle()` returns the row unchanged if the outcome is not known by its deadline.

May import: the standard library, trio, attrs, solders, `contracts` (builders, decoders, error
codes), `actors.rpc_client`, `actors.trade_store`, `actors.trade_lifecycle`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import attrs
import trio
from solders.commitment_config import CommitmentLevel
from solders.instruction import AccountMeta
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction
from solders.transaction_status import TransactionConfirmationStatus

from actors.rpc_client import RpcError, RpcUnavailable, SolanaRpc, confirmed_tx_config
from actors.trade_lifecycle import FailureReason, TradeStatus, is_terminal
from actors.trade_store import TradeRecord, TradeStore
from contracts.errors import (
    AmmSlippageExceeded,
    InsufficientFunds,
    ProgramError,
    SlippageExceeded,
    UnauthorizedBot,
    VaultInactive,
    custom_code,
    error_for_code,
    failing_program,
)
from contracts.vault_client import VaultClient, trade_events

__all__ = [
    "CHECKPOINTS",
    "ExecutionSettings",
    "Outcome",
    "Route",
    "SignedAttempt",
    "execute_attempt",
    "failure_reason_for",
    "no_checkpoint",
    "reconcile",
    "settle",
    "sign_attempt",
]

_log = logging.getLogger("xorj.trade_execution")

TOKEN_PROGRAM: Final = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
_TOKEN_INSUFFICIENT_FUNDS: Final = 1
_SETTLED: Final = (TransactionConfirmationStatus.Confirmed, TransactionConfirmationStatus.Finalized)

_REASONS: Final[dict[type[ProgramError], FailureReason]] = {
    SlippageExceeded: FailureReason.SLIPPAGE_EXCEEDED,
    AmmSlippageExceeded: FailureReason.SLIPPAGE_EXCEEDED,
    InsufficientFunds: FailureReason.INSUFFICIENT_FUNDS,
    UnauthorizedBot: FailureReason.UNAUTHORIZED,
    VaultInactive: FailureReason.VAULT_INACTIVE,
}


@attrs.frozen
class Route:
    """The swap leg a ``bot_trade`` CPIs into: program, instruction data, accounts (in order)."""

    swap_program: Pubkey
    data: bytes
    accounts: tuple[AccountMeta, ...]


def no_checkpoint(point: str) -> None:
    """The default `ExecutionSettings.checkpoint`: nothing happens at the lifecycle's points."""


CHECKPOINTS: Final = ("before_persist", "after_persist", "after_send", "after_landing")


@attrs.frozen
class ExecutionSettings:
    """``programs`` names program ids (base58) "vault" / "amm", to read error codes right.

    ``checkpoint(point)`` is called at each of `CHECKPOINTS` -- signed but not yet persisted;
    persisted but not yet sent; sent but not yet recorded SUBMITTED; landed but not yet recorded
    CONFIRMED/FAILED. The engine's fault injection kills the process there (the crash-safety
    test); in production it does nothing."""

    programs: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    rpc_timeout_s: float = 5.0
    settle_within_s: float = 60.0  # settle() gives up (row unchanged) after this; reconcile retries
    poll_s: float = 0.05
    resend_every_s: float = 1.0
    checkpoint: Callable[[str], None] = no_checkpoint


@attrs.frozen
class Outcome:
    """What the chain says about a landed transaction."""

    succeeded: bool
    amount_out: int | None
    reason: FailureReason | None
    details: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen
class SignedAttempt:
    signature: Signature
    wire: bytes
    last_valid_block_height: int


def failure_reason_for(err: object, logs: Sequence[str], programs: Mapping[str, str]) -> Outcome:
    """The typed outcome of a transaction that landed with ``err``."""
    code = custom_code(err)
    if code is None:
        return Outcome(False, None, FailureReason.TRANSACTION_ERROR, {"err": str(err)})
    program = failing_program(logs)
    details: dict[str, Any] = {"code": code, "program": program}
    if program == TOKEN_PROGRAM and code == _TOKEN_INSUFFICIENT_FUNDS:
        return Outcome(False, None, FailureReason.INSUFFICIENT_FUNDS, details)
    name = programs.get(program, program) if program is not None else "vault"
    error = error_for_code(code, name)
    details["error"] = type(error).__name__
    return Outcome(False, None, _REASONS.get(type(error), FailureReason.PROGRAM_ERROR), details)


# The bot's public key, derived once per key object (``Keypair.pubkey()`` costs ~25-40 us, and so
# does hashing a Keypair): keyed by identity, the Keypair held so its id cannot be reused.
_BOT_PUBKEYS: Final[dict[int, tuple[Keypair, Pubkey]]] = {}


def _bot_pubkey(bot: Keypair) -> Pubkey:
    entry = _BOT_PUBKEYS.get(id(bot))
    if entry is None or entry[0] is not bot:
        if len(_BOT_PUBKEYS) >= 16:
            _BOT_PUBKEYS.clear()
        entry = _BOT_PUBKEYS[id(bot)] = (bot, bot.pubkey())
    return entry[1]


async def sign_attempt(
    rpc: SolanaRpc, bot: Keypair, vault: VaultClient, owner: Pubkey, trade: TradeRecord, route: Route,
    *, timeout: float,
) -> SignedAttempt:
    """Build and sign the attempt's ``bot_trade`` with a fresh blockhash. Touches nothing durable."""
    if trade.amount_in is None or trade.minimum_amount_out is None:
        raise ValueError(f"trade {trade.id} has no base-unit amount_in / minimum_amount_out")
    latest = (await rpc.get_latest_blockhash(CommitmentLevel.Confirmed, timeout=timeout)).value
    bot_key = _bot_pubkey(bot)
    ix = vault.bot_trade(
        owner, bot_key, Pubkey.from_string(trade.from_token), Pubkey.from_string(trade.to_token),
        route.swap_program, trade.amount_in, trade.minimum_amount_out, route.data, route.accounts,
    )
    # Compiled with its blockhash and signed once: half the cost of ``Transaction([bot], ...)``,
    # which compiles and signs again (the same bytes; a fan-out signs thousands).
    message = Message.new_with_blockhash([ix], bot_key, latest.blockhash)
    signature = bot.sign_message(bytes(message))
    tx = Transaction.populate(message, [signature])
    return SignedAttempt(signature, bytes(tx), int(latest.last_valid_block_height))


async def execute_attempt(
    store: TradeStore, rpc: SolanaRpc, bot: Keypair, vault: VaultClient, owner: Pubkey,
    trade: TradeRecord, route: Route, settings: ExecutionSettings,
) -> TradeRecord:
    """Run one PENDING attempt to its outcome (or to ``settle_within_s``); returns the stored row.

    A trade that is already signed is only settled (never re-signed): calling this again after a
    crash is the same as reconciling it.
    """
    if trade.status is TradeStatus.PENDING and not trade.is_signed:
        try:
            signed = await sign_attempt(rpc, bot, vault, owner, trade, route, timeout=settings.rpc_timeout_s)
        except RpcError as exc:  # no blockhash: nothing was signed, so nothing can land
            return await store.mark_failed(trade.id, TradeStatus.PENDING, FailureReason.RPC_UNAVAILABLE,
                                           {"error": str(exc)})
        # The durable record first: if this raises, nothing has been or will be sent.
        settings.checkpoint("before_persist")
        trade = await store.persist_signed(trade.id, signed.wire, str(signed.signature),
                                           signed.last_valid_block_height)
        settings.checkpoint("after_persist")
    return await settle(store, rpc, trade, settings)


async def settle(
    store: TradeStore, rpc: SolanaRpc, trade: TradeRecord, settings: ExecutionSettings
) -> TradeRecord:
    """Drive one trade to a terminal status, by the chain's facts (see the module docstring)."""
    if is_terminal(trade.status) or settings.settle_within_s <= 0:  # 0: persist only, settle later
        return trade
    if trade.signed_transaction is None or trade.transaction_signature is None \
            or trade.last_valid_block_height is None:
        return await store.mark_failed(trade.id, trade.status, FailureReason.NEVER_SENT,
                                       {"detail": "no durable signed bytes: it was never sent"})
    signature = Signature.from_string(trade.transaction_signature)
    wire = trade.signed_transaction
    last_valid = trade.last_valid_block_height
    next_send = trio.current_time()
    with trio.move_on_after(settings.settle_within_s):
        while True:
            # Height before status: if the *finalized* height is already past last_valid (no fork
            # can still include it) and the status read after it finds nothing, the transaction
            # can never land.
            try:
                height = await rpc.get_block_height(CommitmentLevel.Finalized, timeout=settings.rpc_timeout_s)
                statuses = await rpc.get_signature_statuses(
                    [signature], search_transaction_history=True, timeout=settings.rpc_timeout_s)
            except RpcUnavailable as exc:  # transient: poll again, within settle_within_s
                _log.warning("status poll failed", extra={"trade": trade.id, "error": str(exc)})
                await trio.sleep(settings.poll_s)
                continue
            status = statuses.value[0]
            if status is not None:
                # confirmations None means rooted (finalized), whatever confirmation_status says
                if status.confirmation_status in _SETTLED or status.confirmations is None:
                    settled = await _record_outcome(store, rpc, trade, signature, status.err, settings)
                    if settled is not None:
                        return settled
            elif height > last_valid:
                return await store.mark_failed(
                    trade.id, trade.status, FailureReason.EXPIRED,
                    {"block_height": height, "last_valid_block_height": last_valid})
            elif trio.current_time() >= next_send:
                trade = await _send(store, rpc, trade, wire, settings)
                next_send = trio.current_time() + settings.resend_every_s
            await trio.sleep(settings.poll_s)
    return trade


async def _send(
    store: TradeStore, rpc: SolanaRpc, trade: TradeRecord, wire: bytes, settings: ExecutionSettings
) -> TradeRecord:
    first = trade.status is TradeStatus.PENDING
    try:
        await rpc.send_transaction(wire, skip_preflight=True, timeout=settings.rpc_timeout_s)
    except RpcError as exc:
        # Whether it reached a leader is unknown: treat it as possibly in flight (SUBMITTED).
        _log.warning("send failed; the status poll decides", extra={"trade": trade.id, "error": str(exc)})
    settings.checkpoint("after_send")
    if first:
        return await store.mark_submitted(trade.id)
    await store.record_resend(trade)
    return trade


async def _record_outcome(
    store: TradeStore, rpc: SolanaRpc, trade: TradeRecord, signature: Signature, err: object,
    settings: ExecutionSettings,
) -> TradeRecord | None:
    try:
        answer = (await rpc.get_transaction(signature, confirmed_tx_config(),
                                            timeout=settings.rpc_timeout_s)).value
    except RpcUnavailable:
        return None  # poll again
    if answer is None or answer.transaction.meta is None:
        return None  # the node has the status but not yet the transaction: poll again
    logs = list(answer.transaction.meta.log_messages or [])
    outcome = _outcome(trade, err, logs, settings.programs)
    settings.checkpoint("after_landing")
    if trade.status is TradeStatus.PENDING:  # it landed before the row said so (crash after send)
        trade = await store.mark_submitted(trade.id)
    if outcome.succeeded and outcome.amount_out is not None:
        return await store.mark_confirmed(trade.id, outcome.amount_out)
    assert outcome.reason is not None
    return await store.mark_failed(trade.id, trade.status, outcome.reason,
                                   {**outcome.details, "transaction_signature": str(signature)})


def _outcome(trade: TradeRecord, err: object, logs: Sequence[str], programs: Mapping[str, str]) -> Outcome:
    if err is not None:
        return failure_reason_for(err, logs, programs)
    executed = [e for e in trade_events(logs) if e.amount_in == trade.amount_in]
    if len(executed) != 1:
        return Outcome(False, None, FailureReason.PROGRAM_ERROR,
                       {"detail": f"succeeded with {len(executed)} TradeExecuted events for this trade"})
    return Outcome(True, executed[0].amount_out, None)


async def reconcile(
    store: TradeStore, rpc: SolanaRpc, settings: ExecutionSettings, *, user_id: str | None = None
) -> list[TradeRecord]:
    """Settle every non-terminal trade (of ``user_id``, or all) against the chain, one at a time;
    returns their rows after. Start-up runs this before trading (crash-only: the same path).

    Run concurrently with an executor, it may fail an attempt that is being signed right now
    (PENDING, no bytes yet) as never_sent: safe, since that attempt's `persist_signed` then
    refuses and nothing is sent; the executor makes a new attempt."""
    return [await settle(store, rpc, trade, settings) for trade in await store.non_terminal(user_id)]
