"""The local chain's semantics over LiteSVM: slots, blockhashes, statuses, history, faults, ledger.

Owns: one LiteSVM instance and everything a validator adds around a runtime -- the slot counter
and the clock sysvar (moved by ``advance_slot``, which the node's slot clock calls every
``slot_ms``), the window of recent blockhashes (LiteSVM's own check is off because it only knows
the latest hash; ours issues one hash per slot and accepts it for ``blockhash_window`` slots;
durable nonces are therefore not supported), the signature statuses and
their commitment by slot age, the per-address signature history, the landed transactions'
metadata as the RPC reports it (pre/post balances and token balances are snapshotted around the
LiteSVM call because LiteSVM does not keep them), the fault knobs of the chaos harness (seeded
drop, landing delay, error after landing) and the ledger that makes ``--ledger`` survive restarts.

No HTTP and no JSON-RPC here: ``rpc_methods`` maps requests onto this. Every method is synchronous
and fast; the node calls them from the trio event loop, so they never run concurrently.

Failure it contains: a transaction that would not land on a real chain (expired or unknown
blockhash, duplicate signature, a fee payer that cannot pay, a bad signature) never gets a status
here either, and the errors a client sees are the validator's (see ``PreflightFailure``).

May import: the standard library, attrs, solders, spl (instruction builders), localnet.ledger,
localnet.token_state.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import random
import time
from collections.abc import Iterable, Sequence
from typing import Final

import attrs
from solders.account import Account
from solders.clock import Clock
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import CreateAccountParams, TransferParams, create_account, transfer
from solders.transaction import Transaction, VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata, TransactionMetadata
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
    initialize_mint,
    mint_to,
)
from spl.token.models import InitializeMintParams, MintToParams

from localnet.ledger import Ledger, LedgerMint, LedgerSlot, LedgerTransaction
from localnet.token_state import TOKEN_PROGRAM_ID, parse_mint, parse_token_account

__all__ = [
    "Chain",
    "ChainConfig",
    "Commitment",
    "Faults",
    "InvalidAdminRequest",
    "LandedTransaction",
    "MintInfo",
    "PreflightFailure",
    "SignatureVerificationFailure",
    "SimulationResult",
    "SubmitOutcome",
    "TokenBalance",
    "describe_transaction_error",
    "is_writable",
]

logger = logging.getLogger(__name__)

MEMO_PROGRAM_ID: Final = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")
FAUCET_LAMPORTS: Final = 500_000_000 * 10**9
MINT_ACCOUNT_SPACE: Final = 82
SLOTS_PER_EPOCH: Final = 432_000
GENESIS_SLOT: Final = 1
LEDGER_CHECKPOINT_SLOTS: Final = 50


@attrs.frozen
class ChainConfig:
    """How the chain ages: slot length, blockhash life, commitment depths, status cache, RNG seed."""

    slot_ms: int = 400
    blockhash_window: int = 150
    confirm_slots: int = 1
    finalize_slots: int = 32
    status_cache_slots: int = 300
    seed: int = 0


@attrs.frozen
class Faults:
    """The chaos harness's knobs: drop a fraction of accepted transactions, delay landing, and
    answer an error after a transaction landed."""

    drop_rate: float = attrs.field(
        default=0.0, validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)]
    )
    land_delay_slots: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    error_after_landing: bool = False


class Commitment(enum.IntEnum):
    PROCESSED = 0
    CONFIRMED = 1
    FINALIZED = 2

    @property
    def rpc_name(self) -> str:
        return self.name.lower()


@attrs.frozen
class TokenBalance:
    """One entry of ``preTokenBalances`` / ``postTokenBalances``."""

    account_index: int
    mint: Pubkey
    owner: Pubkey
    program_id: Pubkey
    amount: int
    decimals: int


@attrs.frozen
class LandedTransaction:
    """A transaction in a slot, with the metadata a validator reports for it."""

    signature: Signature
    slot: int
    block_time: int
    transaction: VersionedTransaction
    err: object  # the validator's JSON form of the TransactionError, None on success
    fee: int
    logs: tuple[str, ...]
    compute_units: int
    meta: TransactionMetadata  # LiteSVM's own record: inner instructions, return data
    pre_balances: tuple[int, ...]
    post_balances: tuple[int, ...]
    pre_token_balances: tuple[TokenBalance, ...]
    post_token_balances: tuple[TokenBalance, ...]


@attrs.frozen
class SubmitOutcome:
    """What happened to an accepted transaction: landed now, queued for a later slot, or dropped."""

    signature: Signature
    fate: str  # "landed" | "queued" | "dropped"
    landed: LandedTransaction | None
    error_after_landing: bool


@attrs.frozen
class SimulationResult:
    """``simulateTransaction``'s value (and the ``data`` of a -32002 preflight failure)."""

    err: object
    logs: tuple[str, ...]
    units_consumed: int
    return_data: tuple[Pubkey, bytes] | None


@attrs.frozen
class MintInfo:
    symbol: str
    mint: Pubkey
    decimals: int


class PreflightFailure(Exception):
    """sendTransaction's preflight refused the transaction: a validator's -32002 answer."""

    def __init__(self, message: str, simulation: SimulationResult) -> None:
        super().__init__(message)
        self.message = message
        self.simulation = simulation


class SignatureVerificationFailure(Exception):
    """A signature does not verify: a validator's -32003 answer."""


class InvalidAdminRequest(Exception):
    """An admin request names something the local chain does not hold (e.g. a foreign mint)."""


# The Display strings a validator puts after "Transaction simulation failed: ".
_TX_ERROR_TEXT: Final[dict[str, str]] = {
    "AccountInUse": "Account in use",
    "AccountLoadedTwice": "Account loaded twice",
    "AccountNotFound": "Attempt to debit an account but found no record of a prior credit.",
    "ProgramAccountNotFound": "Attempt to load a program that does not exist",
    "InsufficientFundsForFee": "Insufficient funds for fee",
    "InvalidAccountForFee": "This account may not be used to pay transaction fees",
    "AlreadyProcessed": "This transaction has already been processed",
    "BlockhashNotFound": "Blockhash not found",
    "SignatureFailure": "Transaction did not pass signature verification",
    "SanitizeFailure": "Transaction failed to sanitize accounts offsets correctly",
    "InvalidProgramForExecution": "This program may not be used for executing instructions",
    "InvalidAccountIndex": "Transaction contains an invalid account reference",
}
_INSTRUCTION_ERROR_TEXT: Final[dict[str, str]] = {
    "GenericError": "generic instruction error",
    "InvalidArgument": "invalid program argument",
    "InvalidInstructionData": "invalid instruction data",
    "InvalidAccountData": "invalid account data for instruction",
    "AccountDataTooSmall": "account data too small for instruction",
    "InsufficientFunds": "insufficient funds for instruction",
    "IncorrectProgramId": "incorrect program id for instruction",
    "MissingRequiredSignature": "missing required signature for instruction",
    "AccountAlreadyInitialized": "instruction requires an uninitialized account",
    "UninitializedAccount": "instruction requires an initialized account",
    "ProgramFailedToComplete": "Program failed to complete",
    "ComputationalBudgetExceeded": "Computational budget exceeded",
    "IllegalOwner": "Provided owner is not allowed",
}


def describe_transaction_error(err: object) -> str:
    """A validator's Display text of a TransactionError in its JSON form."""
    if isinstance(err, str):
        return _TX_ERROR_TEXT.get(err, err)
    if isinstance(err, dict) and "InstructionError" in err:
        index, inner = err["InstructionError"]
        if isinstance(inner, dict) and "Custom" in inner:
            text = f"custom program error: {int(inner['Custom']):#x}"
        elif isinstance(inner, str):
            text = _INSTRUCTION_ERROR_TEXT.get(inner, inner)
        else:
            text = json.dumps(inner)
        return f"Error processing Instruction {index}: {text}"
    if isinstance(err, dict) and "InsufficientFundsForRent" in err:
        index = err["InsufficientFundsForRent"]["account_index"]
        return f"Transaction results in an account ({index}) with insufficient funds for rent"
    return json.dumps(err)


def _err_json(result: FailedTransactionMetadata) -> object:
    return json.loads(result.to_json())["err"]


def account_keys(tx: VersionedTransaction) -> list[Pubkey]:
    return list(tx.message.account_keys)


def is_writable(message: Message | MessageV0, index: int) -> bool:
    """The header's rule: signed keys first (writable ones first), then unsigned (writable first)."""
    header = message.header
    keys = len(message.account_keys)
    signed = header.num_required_signatures
    if index < signed:
        return index < signed - header.num_readonly_signed_accounts
    return index < keys - header.num_readonly_unsigned_accounts


class Chain:
    """The local chain. Construct, ``replay_ledger`` (if any), then serve and ``advance_slot``."""

    def __init__(
        self,
        config: ChainConfig,
        *,
        ledger: Ledger | None = None,
        now: float | None = None,
        faucet: Keypair | None = None,
        mint_authority: Keypair | None = None,
    ) -> None:
        """``faucet`` and ``mint_authority`` default to fresh keys (a ledger keeps the first ones it
        is given); a seeded genesis passes keys derived from its seed so a chain is reproducible."""
        self.config = config
        self._svm = LiteSVM().with_blockhash_check(False)
        self._rng = random.Random(config.seed)
        self._ledger = ledger
        self._clock_offset = 0.0
        self.faults = Faults()
        self.slot = GENESIS_SLOT
        self._blockhash_slots: dict[Hash, int] = {}
        self._slot_blockhash: dict[int, Hash] = {}
        self._records: dict[Signature, LandedTransaction] = {}
        self._history: dict[Pubkey, list[Signature]] = {}
        self._queued: list[tuple[int, VersionedTransaction]] = []
        self._memo_counter = 0
        self.mints: dict[str, MintInfo] = {}
        self._decimals: dict[Pubkey, int] = {}
        faucet = faucet or Keypair()
        mint_authority = mint_authority or Keypair()
        self.faucet = ledger.keypair("faucet", faucet) if ledger is not None else faucet
        self.mint_authority = (
            ledger.keypair("mint-authority", mint_authority) if ledger is not None else mint_authority
        )
        self._svm.set_account(
            self.faucet.pubkey(),
            _system_account(FAUCET_LAMPORTS),
        )
        self._enter_slot(GENESIS_SLOT, time.time() if now is None else now)
        self.genesis_hash = self._slot_blockhash[GENESIS_SLOT]

    # -- time ---------------------------------------------------------------------------------

    def _unix_now(self, now: float | None = None) -> int:
        return int((time.time() if now is None else now) + self._clock_offset)

    def _enter_slot(self, slot: int, now: float, unix_timestamp: int | None = None) -> None:
        self.slot = slot
        self._svm.warp_to_slot(slot)
        self._svm.set_clock(
            Clock(
                slot=slot,
                epoch_start_timestamp=0,
                epoch=slot // SLOTS_PER_EPOCH,
                leader_schedule_epoch=slot // SLOTS_PER_EPOCH + 1,
                unix_timestamp=self._unix_now(now) if unix_timestamp is None else unix_timestamp,
            )
        )
        self._remember_blockhash(slot)
        keep_from = slot - self.config.blockhash_window - self.config.finalize_slots - 1
        for old_slot in [s for s in self._slot_blockhash if s < keep_from]:
            self._blockhash_slots.pop(self._slot_blockhash.pop(old_slot), None)

    def _remember_blockhash(self, slot: int) -> None:
        blockhash = self._blockhash_for(slot)
        self._blockhash_slots[blockhash] = slot
        self._slot_blockhash[slot] = blockhash

    def _blockhash_for(self, slot: int) -> Hash:
        # Our own blockhashes, not LiteSVM's: its sequence is the same for every instance (a hash
        # chain from a fixed start), so a transaction signed against one chain could be valid on
        # the next. LiteSVM never checks the hash (its check is off), the window here does. Mixing
        # in the faucet's key makes them per chain and stable across a ledger restart.
        seed = b"xorj-localnet-blockhash" + bytes(self.faucet.pubkey()) + slot.to_bytes(8, "little")
        return Hash(hashlib.sha256(seed).digest())

    @property
    def unix_timestamp(self) -> int:
        return int(self._svm.get_clock().unix_timestamp)

    def advance_slot(self, now: float | None = None) -> None:
        """One slot passes: new blockhash, clock moves, and transactions queued for it land."""
        self._enter_slot(self.slot + 1, time.time() if now is None else now)
        if self.slot % LEDGER_CHECKPOINT_SLOTS == 0:
            self.checkpoint()
        due = [tx for land_slot, tx in self._queued if land_slot <= self.slot]
        self._queued = [(land_slot, tx) for land_slot, tx in self._queued if land_slot > self.slot]
        for tx in due:
            if self.blockhash_slot(tx.message.recent_blockhash) is None:
                # expired while it waited: a leader would drop it too
                logger.info(
                    "fault: delayed transaction %s expired (blockhash of slot %s, now %s)",
                    tx.signatures[0],
                    self._blockhash_slots.get(tx.message.recent_blockhash),
                    self.slot,
                )
                continue
            if tx.signatures[0] in self._records:
                continue
            self._land(tx)

    def warp_to(self, slot: int, unix_timestamp: int) -> None:
        """Jump to ``slot`` with the clock reading ``unix_timestamp`` (genesis writes histories in
        the past this way); the slots skipped have no blockhash and no transaction."""
        if slot <= self.slot:
            raise ValueError(f"slot {slot} is not after the current slot {self.slot}")
        self._enter_slot(slot, time.time(), unix_timestamp=unix_timestamp)

    def resume_real_time(self, skip_slots: int = 0) -> None:
        """Enter a later slot (``skip_slots`` after the next) with the clock on real time again
        (after ``warp_to``); skipping ``finalize_slots`` makes everything before it finalized."""
        self._clock_offset = 0.0
        self._enter_slot(self.slot + 1 + skip_slots, time.time())

    def warp_slots(self, count: int) -> int:
        for _ in range(count):
            self.advance_slot()
        return self.slot

    def set_clock_offset(self, unix_timestamp: int) -> None:
        """Make the clock read ``unix_timestamp`` now; it keeps moving with real time from there."""
        self._clock_offset = unix_timestamp - time.time()
        clock = self._svm.get_clock()
        clock.unix_timestamp = unix_timestamp
        self._svm.set_clock(clock)

    # -- commitment and blockhashes ---------------------------------------------------------------

    def block_height(self, commitment: Commitment = Commitment.PROCESSED) -> int:
        """Block height equals the slot here: the local chain skips no slot."""
        return self.slot_at(commitment)

    def slot_at(self, commitment: Commitment) -> int:
        depth = {
            Commitment.PROCESSED: 0,
            Commitment.CONFIRMED: self.config.confirm_slots,
            Commitment.FINALIZED: self.config.finalize_slots,
        }[commitment]
        return max(GENESIS_SLOT, self.slot - depth)

    def commitment_of(self, slot: int) -> Commitment:
        age = self.slot - slot
        if age >= self.config.finalize_slots:
            return Commitment.FINALIZED
        if age >= self.config.confirm_slots:
            return Commitment.CONFIRMED
        return Commitment.PROCESSED

    def latest_blockhash(self, commitment: Commitment = Commitment.PROCESSED) -> tuple[Hash, int]:
        """The blockhash of the slot at ``commitment`` and its last valid block height."""
        slot = self.slot_at(commitment)
        while slot not in self._slot_blockhash:  # slots before a ledger replay's resume point
            slot += 1
        return self._slot_blockhash[slot], slot + self.config.blockhash_window

    def blockhash_slot(self, blockhash: Hash) -> int | None:
        """The slot a still-valid blockhash was made in, or None when unknown or expired."""
        slot = self._blockhash_slots.get(blockhash)
        if slot is None or self.slot - slot > self.config.blockhash_window:
            return None
        return slot

    # -- reading state ----------------------------------------------------------------------------

    def get_account(self, address: Pubkey) -> Account | None:
        return self._svm.get_account(address)

    def balance(self, address: Pubkey) -> int:
        return int(self._svm.get_balance(address) or 0)

    def program_accounts(self, program_id: Pubkey) -> list[tuple[Pubkey, Account]]:
        return list(self._svm.get_program_accounts(program_id))

    def minimum_balance_for_rent_exemption(self, size: int) -> int:
        return int(self._svm.minimum_balance_for_rent_exemption(size))

    def mint_decimals(self, mint: Pubkey) -> int | None:
        known = self._decimals.get(mint)
        if known is not None:
            return known  # a mint's decimals never change once it is initialised
        account = self._svm.get_account(mint)
        if account is None:
            return None
        state = parse_mint(account.owner, bytes(account.data))
        if state is None:
            return None
        self._decimals[mint] = state.decimals
        return state.decimals

    @property
    def transaction_count(self) -> int:
        return len(self._records)

    def transaction(self, signature: Signature) -> LandedTransaction | None:
        return self._records.get(signature)

    def status(self, signature: Signature, *, search_history: bool) -> LandedTransaction | None:
        record = self._records.get(signature)
        if record is None:
            return None
        if not search_history and self.slot - record.slot > self.config.status_cache_slots:
            return None
        return record

    def signatures_for_address(
        self,
        address: Pubkey,
        *,
        before: Signature | None,
        until: Signature | None,
        limit: int,
        commitment: Commitment,
    ) -> list[LandedTransaction]:
        """Newest first; ``before`` and ``until`` are exclusive bounds, as a validator pages."""
        found: list[LandedTransaction] = []
        started = before is None
        for signature in reversed(self._history.get(address, [])):
            if not started:
                started = signature == before
                continue
            if signature == until:
                break
            record = self._records[signature]
            if self.commitment_of(record.slot) < commitment:
                continue
            found.append(record)
            if len(found) >= limit:
                break
        return found

    # -- transactions -----------------------------------------------------------------------------

    def fee_for_message(self, message: Message | MessageV0) -> int | None:
        """The fee LiteSVM would charge (signatures plus compute-budget priority fee); None when the
        message's blockhash is not valid, as a validator answers."""
        if self.blockhash_slot(message.recent_blockhash) is None:
            return None
        unsigned = VersionedTransaction.populate(
            message, [Signature.default()] * message.header.num_required_signatures
        )
        self._svm.with_sigverify(False)
        try:
            result = self._svm.simulate_transaction(unsigned)
        finally:
            self._svm.with_sigverify(True)
        # LiteSVM computes the fee before loading accounts, so a failing simulation still has it.
        return int(result.meta().fee())

    def simulate(
        self, tx: VersionedTransaction, *, sig_verify: bool, replace_blockhash: bool
    ) -> SimulationResult:
        if sig_verify:
            self._verify(tx)
        if not replace_blockhash and self.blockhash_slot(tx.message.recent_blockhash) is None:
            return SimulationResult(err="BlockhashNotFound", logs=(), units_consumed=0, return_data=None)
        self._svm.with_sigverify(False)  # mutates in place; signatures were checked above if asked
        try:
            result = self._svm.simulate_transaction(tx)
        finally:
            self._svm.with_sigverify(True)
        if isinstance(result, FailedTransactionMetadata):
            meta = result.meta()
            err: object = _err_json(result)
        else:
            meta = result.meta()
            err = None
        return_data = meta.return_data()
        data = bytes(return_data.data)
        return SimulationResult(
            err=err,
            logs=tuple(meta.logs()),
            units_consumed=int(meta.compute_units_consumed()),
            return_data=(return_data.program_id, data) if data else None,
        )

    def _verify(self, tx: VersionedTransaction) -> None:
        if not all(tx.verify_with_results()):
            raise SignatureVerificationFailure("Transaction signature verification failure")

    def submit(self, tx: VersionedTransaction, *, skip_preflight: bool) -> SubmitOutcome:
        """``sendTransaction``: preflight unless skipped, then faults, then land (or queue/drop).

        As on a real cluster, a transaction that fails only after the RPC accepted it (skipped
        preflight with a stale blockhash, a duplicate) is answered with its signature and never
        lands.
        """
        signature = tx.signatures[0]
        if not skip_preflight:
            self._verify(tx)
            if signature in self._records:
                raise self._preflight_failure("AlreadyProcessed")
            simulation = self.simulate(tx, sig_verify=False, replace_blockhash=False)
            if simulation.err is not None:
                raise PreflightFailure(
                    f"Transaction simulation failed: {describe_transaction_error(simulation.err)}", simulation
                )
        faults = self.faults
        if faults.drop_rate > 0 and self._rng.random() < faults.drop_rate:
            logger.info("fault: dropping transaction", extra={"signature": str(signature)})
            return SubmitOutcome(signature, "dropped", None, False)
        if faults.land_delay_slots > 0:
            self._queued.append((self.slot + faults.land_delay_slots, tx))
            return SubmitOutcome(signature, "queued", None, faults.error_after_landing)
        if signature in self._records or self.blockhash_slot(tx.message.recent_blockhash) is None:
            return SubmitOutcome(signature, "dropped", None, False)
        landed = self._land(tx)
        return SubmitOutcome(
            signature,
            "landed" if landed is not None else "dropped",
            landed,
            faults.error_after_landing and landed is not None,
        )

    def _preflight_failure(self, err: str) -> PreflightFailure:
        return PreflightFailure(
            f"Transaction simulation failed: {describe_transaction_error(err)}",
            SimulationResult(err=err, logs=(), units_consumed=0, return_data=None),
        )

    def _token_balances(self, keys: Sequence[Pubkey]) -> tuple[TokenBalance, ...]:
        balances: list[TokenBalance] = []
        for index, key in enumerate(keys):
            account = self._svm.get_account(key)
            if account is None:
                continue
            state = parse_token_account(account.owner, bytes(account.data))
            if state is None:
                continue
            decimals = self.mint_decimals(state.mint)
            if decimals is None:
                continue
            balances.append(
                TokenBalance(index, state.mint, state.owner, account.owner, state.amount, decimals)
            )
        return tuple(balances)

    def _land(
        self, tx: VersionedTransaction, *, slot: int | None = None, block_time: int | None = None
    ) -> LandedTransaction | None:
        """Execute ``tx`` in the current slot; record and ledger it if it lands (even as failed)."""
        keys = account_keys(tx)
        pre_balances = tuple(self.balance(key) for key in keys)
        pre_tokens = self._token_balances(keys)
        result = self._svm.send_transaction(tx)
        signature = tx.signatures[0]
        if self._svm.get_transaction(signature) is None:
            # Not executed at all (fee payer cannot pay, bad signature, ...): nothing lands.
            logger.info("transaction not landed", extra={"signature": str(signature)})
            return None
        if isinstance(result, FailedTransactionMetadata):
            meta = result.meta()
            err: object = _err_json(result)
        else:
            meta = result
            err = None
        record = LandedTransaction(
            signature=signature,
            slot=self.slot if slot is None else slot,
            block_time=self.unix_timestamp if block_time is None else block_time,
            transaction=tx,
            err=err,
            fee=int(meta.fee()),
            logs=tuple(meta.logs()),
            compute_units=int(meta.compute_units_consumed()),
            meta=meta,
            pre_balances=pre_balances,
            post_balances=tuple(self.balance(key) for key in keys),
            pre_token_balances=pre_tokens,
            post_token_balances=self._token_balances(keys),
        )
        self._records[signature] = record
        for key in dict.fromkeys(keys):
            self._history.setdefault(key, []).append(signature)
        if self._ledger is not None and slot is None:
            self._ledger.append(LedgerTransaction(record.slot, record.block_time, bytes(tx)))
        return record

    # -- ledger -----------------------------------------------------------------------------------

    def replay_ledger(self) -> int:
        """Rebuild the chain from the ledger: each transaction at its slot and clock. Returns count."""
        if self._ledger is None:
            return 0
        count = 0
        for entry in self._ledger.entries():
            if isinstance(entry, LedgerMint):
                self.mints[entry.symbol] = MintInfo(
                    entry.symbol, Pubkey.from_string(entry.mint), entry.decimals
                )
                continue
            if entry.slot > self.slot:
                self._enter_slot(entry.slot, time.time(), unix_timestamp=entry.unix_timestamp)
            if isinstance(entry, LedgerSlot):
                continue
            tx = VersionedTransaction.from_bytes(entry.tx_bytes)
            if self._land(tx, slot=entry.slot, block_time=entry.unix_timestamp) is None:
                logger.warning(
                    "ledger transaction did not land on replay", extra={"signature": str(tx.signatures[0])}
                )
            count += 1
        if self.slot > GENESIS_SLOT:
            # Blockhashes are a function of the slot (see ``_blockhash_for``), so the window the
            # chain had when it stopped is restored exactly: bytes signed before the restart with a
            # still-valid blockhash can be resent and land, as DESIGN section 6 recovery expects.
            first = max(GENESIS_SLOT, self.slot - self.config.blockhash_window - self.config.finalize_slots)
            for slot in range(first, self.slot + 1):
                self._remember_blockhash(slot)
            self._enter_slot(self.slot + 1, time.time())
        return count

    def checkpoint(self) -> None:
        """Record the current slot in the ledger (the node calls this at shutdown too)."""
        if self._ledger is not None:
            self._ledger.append(LedgerSlot(self.slot, self.unix_timestamp))

    # -- what the local chain does as its own authority -------------------------------------------

    def _memo(self, text: str) -> Instruction:
        # Two identical admin requests in one slot would otherwise be the same transaction
        # (same blockhash, same bytes) and the second would be AlreadyProcessed.
        self._memo_counter += 1
        return Instruction(MEMO_PROGRAM_ID, f"{text} #{self._memo_counter} @{self.slot}".encode(), [])

    def _land_own(self, instructions: Iterable[Instruction], signers: Sequence[Keypair]) -> LandedTransaction:
        blockhash, _ = self.latest_blockhash()
        message = Message.new_with_blockhash(list(instructions), signers[0].pubkey(), blockhash)
        tx = VersionedTransaction.from_legacy(Transaction(list(signers), message, blockhash))
        landed = self._land(tx)
        if landed is None:
            raise RuntimeError(f"the local chain's own transaction {tx.signatures[0]} did not execute")
        return landed

    def airdrop(self, to: Pubkey, lamports: int) -> LandedTransaction:
        """A faucet transfer, landed now (faults do not apply to the faucet)."""
        params = TransferParams(from_pubkey=self.faucet.pubkey(), to_pubkey=to, lamports=lamports)
        return self._land_own([transfer(params), self._memo("airdrop")], [self.faucet])

    def create_mint(self, symbol: str, decimals: int, mint: Keypair | None = None) -> MintInfo:
        """Create a mint the chain holds the authority of (at ``mint``'s address when given)."""
        if symbol in self.mints:
            raise InvalidAdminRequest(f"a mint with symbol {symbol!r} exists: {self.mints[symbol].mint}")
        mint = mint or Keypair()
        lamports = self.minimum_balance_for_rent_exemption(MINT_ACCOUNT_SPACE)
        create = create_account(
            CreateAccountParams(
                from_pubkey=self.faucet.pubkey(),
                to_pubkey=mint.pubkey(),
                lamports=lamports,
                space=MINT_ACCOUNT_SPACE,
                owner=TOKEN_PROGRAM_ID,
            )
        )
        init = initialize_mint(
            InitializeMintParams(
                decimals=decimals,
                program_id=TOKEN_PROGRAM_ID,
                mint=mint.pubkey(),
                mint_authority=self.mint_authority.pubkey(),
                freeze_authority=None,
            )
        )
        landed = self._land_own([create, init], [self.faucet, mint])
        if landed.err is not None:
            raise RuntimeError(f"creating mint {symbol} failed: {landed.err}")
        info = MintInfo(symbol, mint.pubkey(), decimals)
        self.mints[symbol] = info
        if self._ledger is not None:
            self._ledger.append(LedgerMint(symbol, str(info.mint), decimals))
        return info

    def mint_to_owner(self, owner: Pubkey, mint: Pubkey, amount: int) -> LandedTransaction:
        """Mint ``amount`` base units to ``owner``'s associated token account, creating it if needed."""
        if mint not in {info.mint for info in self.mints.values()}:
            raise InvalidAdminRequest(f"{mint} is not a mint this local chain created")
        ata = get_associated_token_address(owner, mint)
        create_ata = create_idempotent_associated_token_account(self.faucet.pubkey(), owner, mint)
        mint_ix = mint_to(
            MintToParams(
                program_id=TOKEN_PROGRAM_ID,
                mint=mint,
                dest=ata,
                mint_authority=self.mint_authority.pubkey(),
                amount=amount,
            )
        )
        return self._land_own([create_ata, mint_ix, self._memo("mint")], [self.faucet, self.mint_authority])


def _system_account(lamports: int) -> Account:
    return Account(lamports=lamports, data=b"", owner=Pubkey.default(), executable=False, rent_epoch=0)
