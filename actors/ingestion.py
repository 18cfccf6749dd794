"""Ingestion of one trader wallet's history: signatures -> transactions -> swaps -> `swaps` rows.

What it owns: the paging of `getSignaturesForAddress` (newest first, `until` the wallet's stored
cursor, `before` walking back, `page_limit` per page, finalized commitment), the batched fetch of
those transactions (`GetTransactionsMsg`, `tx_batch` per call), extraction
(`actors.swap_extraction.extract_swap`: the wallet's own token balance deltas, so any DEX works),
direct USD valuation of stablecoin legs (`actors.valuation.stable_usd`), the idempotent insert
into `swaps` (the signature is the key: re-ingesting is a no-op) and the wallet's paging cursor
in `tracked_wallets`.

Every RPC call goes through the RPC client actor (`ask` with a deadline), never around it, so its
rate limit, breakers and fail-over apply. The cursor moves to the newest signature seen only after
every page below it is stored: a wallet that fails halfway is fetched again from its old cursor
next run, and what was stored already is skipped by the unique signature.

Which failure it contains: one wallet's RPC trouble. Any RPC or ask failure (`RpcError`,
`AskError`, `ActorNotFound`) becomes `WalletIngestFailed` for that wallet, which the scorer
records and retries next run. Database errors (`sql.errors.DatabaseError`) are not contained
here: they propagate, and the scorer fails the run.

May import: the standard library, attrs, solders, `supervisors`, `actors`, `sql`.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Collection, Sequence
from decimal import Decimal
from typing import Final

import attrs
from solders.commitment_config import CommitmentLevel
from solders.pubkey import Pubkey
from solders.rpc.config import RpcSignaturesForAddressConfig
from solders.rpc.requests import GetSignaturesForAddress
from solders.rpc.responses import GetSignaturesForAddressResp, GetTransactionResp
from solders.signature import Signature

from actors.database import Database
from actors.rpc_client import GetTransactionsMsg, RpcCall, RpcError, RpcNodeError
from actors.swap_extraction import Skip, Swap, extract_swap
from actors.valuation import stable_usd
from supervisors.registry import ActorNotFound, ActorRef, ask
from supervisors.request import AskError

SOURCES: Final = ("config", "ctl", "manifest")
# An ask waits this much longer than the RPC call's own deadline, so the typed RPC error wins.
_ASK_MARGIN_S: Final = 1.0


class InvalidWallet(ValueError):
    """Not a base58-encoded 32-byte public key."""


def parse_wallet(text: str) -> str:
    """The canonical base58 form of a wallet address; `InvalidWallet` with a clear line otherwise."""
    candidate = text.strip()
    try:
        return str(Pubkey.from_string(candidate))
    except ValueError:
        raise InvalidWallet(f"not a Solana wallet address (base58 public key): {text!r}") from None


@attrs.frozen
class IngestSettings:
    page_limit: int = 1000
    tx_batch: int = 100
    rpc_timeout_s: float = 15.0
    db_timeout_s: float = 15.0

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.page_limit <= 1000 or self.tx_batch < 1:
            raise ValueError("page_limit must be 1-1000 and tx_batch >= 1")
        if self.rpc_timeout_s <= 0 or self.db_timeout_s <= 0:
            raise ValueError("timeouts must be > 0")


@attrs.define
class WalletIngest:
    """What one wallet's ingestion did."""

    wallet: str
    pages: int = 0
    transactions_fetched: int = 0
    swaps_found: int = 0
    swaps_stored: int = 0  # new rows; a re-ingested signature is not counted
    skipped: Counter[str] = attrs.field(factory=Counter)


class WalletIngestFailed(Exception):
    def __init__(self, wallet: str, reason: str, progress: WalletIngest) -> None:
        super().__init__(f"{wallet}: {reason}")
        self.wallet = wallet
        self.reason = reason
        self.progress = progress


async def track_wallets(db: Database, wallets: Sequence[str], source: str, *, timeout: float) -> int:
    """Track `wallets` (already parsed); a wallet tracked before keeps its source. New rows count."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    rows = await db.fetch(
        """INSERT INTO tracked_wallets (wallet, source) SELECT unnest($1::varchar[]), $2
           ON CONFLICT (wallet) DO NOTHING RETURNING wallet""",
        list(wallets), source, timeout=timeout)
    return len(rows)


_INSERT_SWAPS: Final = """
INSERT INTO swaps (signature, wallet, slot, block_time, sold_mint, sold_amount, sold_decimals,
                   bought_mint, bought_amount, bought_decimals, fee_lamports, usd_value)
SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::bigint[], $4::timestamptz[], $5::varchar[],
                     $6::numeric[], $7::smallint[], $8::varchar[], $9::numeric[], $10::smallint[],
                     $11::bigint[], $12::numeric[])
ON CONFLICT (signature) DO NOTHING
RETURNING signature
"""


async def _store(db: Database, swaps: Sequence[Swap], stablecoins: Collection[str], timeout: float) -> int:
    if not swaps:
        return 0
    columns: list[list[object]] = [[] for _ in range(12)]
    for s in swaps:
        assert s.block_time is not None  # swaps without a block time are skipped before
        values: tuple[object, ...] = (
            s.signature, s.wallet, s.slot, dt.datetime.fromtimestamp(s.block_time, dt.UTC),
            s.sold_mint, Decimal(s.sold_amount), s.sold_decimals,
            s.bought_mint, Decimal(s.bought_amount), s.bought_decimals,
            s.fee_lamports, stable_usd(s, stablecoins),
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    rows = await db.fetch(_INSERT_SWAPS, *columns, timeout=timeout)
    return len(rows)


async def ingest_wallet(
    rpc: ActorRef, db: Database, wallet: str, stablecoins: Collection[str],
    settings: IngestSettings = IngestSettings(),
) -> WalletIngest:
    """Fetch and store what is new in `wallet`'s history since its cursor; see the module doc."""
    progress = WalletIngest(wallet)
    t_db, t_rpc = settings.db_timeout_s, settings.rpc_timeout_s
    cursor = await db.fetchrow(
        "SELECT newest_signature, newest_slot FROM tracked_wallets WHERE wallet = $1", wallet, timeout=t_db)
    stored = cursor["newest_signature"] if cursor else None
    until = Signature.from_string(stored) if stored else None
    owner = Pubkey.from_string(wallet)
    newest: tuple[str, int] | None = None
    before: Signature | None = None
    try:
        while True:
            config = RpcSignaturesForAddressConfig(
                before=before, until=until, limit=settings.page_limit, commitment=CommitmentLevel.Finalized)
            answer = await ask(
                rpc, RpcCall(GetSignaturesForAddress(owner, config), GetSignaturesForAddressResp, t_rpc),
                timeout=t_rpc + _ASK_MARGIN_S)
            page = answer.value
            progress.pages += 1
            if not page:
                break
            if newest is None:
                newest = (str(page[0].signature), page[0].slot)
            landed = [s.signature for s in page if s.err is None]
            progress.skipped[Skip.FAILED.value] += len(page) - len(landed)
            for start in range(0, len(landed), settings.tx_batch):
                chunk = tuple(landed[start : start + settings.tx_batch])
                answers = await ask(rpc, GetTransactionsMsg(chunk, t_rpc), timeout=t_rpc + _ASK_MARGIN_S)
                progress.transactions_fetched += len(chunk)
                found = _swaps_of(owner, chunk, answers, progress)
                progress.swaps_found += len(found)
                progress.swaps_stored += await _store(db, found, stablecoins, t_db)
            if len(page) < settings.page_limit:
                break
            before = page[-1].signature
    except (RpcError, AskError, ActorNotFound) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        await db.execute(
            "UPDATE tracked_wallets SET last_ingest_error = $2 WHERE wallet = $1", wallet, reason[:2000],
            timeout=t_db)
        raise WalletIngestFailed(wallet, reason, progress) from exc
    await db.execute(
        """UPDATE tracked_wallets
           SET newest_signature = COALESCE($2, newest_signature), newest_slot = COALESCE($3, newest_slot),
               last_ingest_error = NULL, last_ingested_at = now()
           WHERE wallet = $1""",
        wallet, newest[0] if newest else None, newest[1] if newest else None, timeout=t_db)
    return progress


def _swaps_of(
    owner: Pubkey, signatures: Sequence[Signature],
    answers: Sequence[GetTransactionResp | RpcNodeError], progress: WalletIngest,
) -> list[Swap]:
    if len(answers) != len(signatures):
        raise RpcNodeError(0, f"{len(answers)} answers for {len(signatures)} getTransaction calls")
    found: list[Swap] = []
    for signature, answer in zip(signatures, answers, strict=True):
        if isinstance(answer, RpcNodeError):
            raise answer  # this wallet's history cannot be read completely now: retry next run
        if answer.value is None:
            progress.skipped["not_found"] += 1  # listed as finalized, yet not served (pruned)
            continue
        result = extract_swap(owner, signature, answer.value)
        if isinstance(result, Skip):
            progress.skipped[result.value] += 1
        elif result.block_time is None:
            progress.skipped["no_block_time"] += 1
        else:
            found.append(result)
    return found
