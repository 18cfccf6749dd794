"""Swaps from confirmed transactions, read off the wallet's own token balance deltas.

Any DEX works, the local AMM included, because nothing here decodes instructions: a transaction
is a swap for a wallet when, summing the pre- and post-transaction token balances of every token
account the wallet owns, exactly one mint went down and exactly one went up. The fee comes from
the meta. Everything else is skipped with a reason the scorer counts: failed transactions, no
token movement, a one-sided transfer, several tokens moving at once.

The input is solders' typed `getTransaction` result (`EncodedConfirmedTransactionWithStatusMeta`,
`jsonParsed` or `json` encoding), so the RPC wire format is parsed by solders, not here.
"""

from __future__ import annotations

import enum
from collections import defaultdict

import attrs
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction_status import EncodedConfirmedTransactionWithStatusMeta


class Skip(enum.Enum):
    FAILED = "failed"
    NO_META = "no_meta"
    NO_TOKEN_MOVEMENT = "no_token_movement"
    ONE_SIDED = "one_sided"  # a transfer in or out, not an exchange
    MULTI_TOKEN = "multi_token"  # more than one token in or out


@attrs.frozen
class Swap:
    signature: str
    wallet: str
    slot: int
    block_time: int | None
    sold_mint: str
    sold_amount: int  # base units
    sold_decimals: int
    bought_mint: str
    bought_amount: int
    bought_decimals: int
    fee_lamports: int


def extract_swap(
    wallet: Pubkey | str, signature: Signature | str, tx: EncodedConfirmedTransactionWithStatusMeta
) -> Swap | Skip:
    owner = str(wallet)
    meta = tx.transaction.meta
    if meta is None:
        return Skip.NO_META
    if meta.err is not None:
        return Skip.FAILED
    delta: dict[str, int] = defaultdict(int)
    decimals: dict[str, int] = {}
    for sign, balances in ((-1, meta.pre_token_balances), (1, meta.post_token_balances)):
        for balance in balances or []:
            if balance.owner is None or str(balance.owner) != owner:
                continue
            mint = str(balance.mint)
            delta[mint] += sign * int(balance.ui_token_amount.amount)
            decimals[mint] = balance.ui_token_amount.decimals
    out = [(m, -d) for m, d in delta.items() if d < 0]
    into = [(m, d) for m, d in delta.items() if d > 0]
    if not out and not into:
        return Skip.NO_TOKEN_MOVEMENT
    if not out or not into:
        return Skip.ONE_SIDED
    if len(out) > 1 or len(into) > 1:
        return Skip.MULTI_TOKEN
    (sold, sold_amount), (bought, bought_amount) = out[0], into[0]
    return Swap(
        signature=str(signature),
        wallet=owner,
        slot=tx.slot,
        block_time=tx.block_time,
        sold_mint=sold,
        sold_amount=sold_amount,
        sold_decimals=decimals[sold],
        bought_mint=bought,
        bought_amount=bought_amount,
        bought_decimals=decimals[bought],
        fee_lamports=meta.fee,
    )
