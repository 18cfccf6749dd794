"""What the market tests share: a wallet's whole history through the RPC, swaps valued in USDC,
the scorer's metrics over them, and signed AMM swaps for fresh wallets."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction_status import EncodedConfirmedTransactionWithStatusMeta

from actors.swap_extraction import Skip, Swap, extract_swap
from actors.trader_metrics import MetricsTable, SwapBatch, compute_metrics

PAGE = 1000


async def history(
    client: AsyncClient, wallet: Pubkey
) -> list[tuple[Signature, EncodedConfirmedTransactionWithStatusMeta]]:
    """Every transaction of ``wallet``, oldest first, as getSignaturesForAddress + getTransaction see it."""
    signatures: list[Signature] = []
    before: Signature | None = None
    while True:
        page = (
            await client.get_signatures_for_address(wallet, before=before, limit=PAGE, commitment=Confirmed)
        ).value
        signatures.extend(s.signature for s in page)
        if len(page) < PAGE:
            break
        before = page[-1].signature
    signatures.reverse()
    out = []
    for chunk in range(0, len(signatures), 100):
        part = signatures[chunk : chunk + 100]
        answers = await asyncio.gather(
            *(
                client.get_transaction(
                    s, encoding="json", commitment=Confirmed, max_supported_transaction_version=0
                )
                for s in part
            )
        )
        for signature, answer in zip(part, answers, strict=True):
            assert answer.value is not None, signature
            out.append((signature, answer.value))
    return out


def swaps_of(
    wallet: Pubkey, txs: list[tuple[Signature, EncodedConfirmedTransactionWithStatusMeta]]
) -> list[Swap | Skip]:
    return [extract_swap(wallet, signature, tx) for signature, tx in txs]


def metrics(swaps: list[Swap], usdc: str, window_start: int = 0) -> MetricsTable:
    """The scorer's metrics of one wallet's swaps, each valued by its USDC leg."""
    tokens = sorted({m for s in swaps for m in (s.sold_mint, s.bought_mint) if m != usdc})
    ids = {m: i for i, m in enumerate(tokens)}
    n = len(swaps)

    def row(values: list[Any], dtype: Any) -> Any:
        return np.array([values], dtype=dtype)

    usd = [
        s.sold_amount / 10**s.sold_decimals
        if s.sold_mint == usdc
        else s.bought_amount / 10**s.bought_decimals
        for s in swaps
    ]
    batch = SwapBatch(
        time=row([s.block_time or 0 for s in swaps], np.int64),
        sell_token=row([ids.get(s.sold_mint, -1) for s in swaps], np.int32),
        sell_qty=row([s.sold_amount / 10**s.sold_decimals for s in swaps], np.float64),
        buy_token=row([ids.get(s.bought_mint, -1) for s in swaps], np.int32),
        buy_qty=row([s.bought_amount / 10**s.bought_decimals for s in swaps], np.float64),
        usd=row(usd, np.float64),
        fee_usd=np.zeros((1, n)),
        valid=np.ones((1, n), dtype=np.bool_),
        n_tokens=max(1, len(tokens)),
    )
    return compute_metrics(batch, window_start=window_start)


def manifest_keypair(path: str) -> Keypair:
    return Keypair.from_bytes(bytes(json.loads(Path(path).read_text())))
