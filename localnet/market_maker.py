"""The market maker: real swaps that random-walk each pool's price while the node runs.

Owns: one trio task that, every ``every_slots`` slots, picks each pool's next price (a seeded,
mean-reverting walk around its genesis price, so the market maker's inventory never runs out)
and submits the market maker wallet's swap that gets the pool there, through ``Chain.submit`` --
the path ``sendTransaction`` takes, so faults, history and the ledger apply as to anyone. Then it
samples the price book (``priceChange24h`` reads those samples).

Failure it contains: a swap that does not land (a fault dropped it, the pool moved under it) is
logged and the walk carries on from wherever the pool is.

May import: the standard library, trio, solders, contracts (AMM client, pda), localnet.
"""

from __future__ import annotations

import logging
import math
import random

import trio
import trio.lowlevel
from solders.instruction import Instruction
from solders.message import Message
from solders.transaction import Transaction, VersionedTransaction

from contracts.amm_client import AmmClient
from contracts.pda import associated_token_address
from localnet.amm_math import mm_amount_for_price
from localnet.chain import Chain
from localnet.market import Market, pool_reserves
from localnet.price_api import PriceBook

__all__ = ["run_market_maker"]

logger = logging.getLogger(__name__)

STEP_SIGMA = 0.004  # log-price step per move
REVERSION = 0.02  # pull of each move back towards the genesis price


async def run_market_maker(chain: Chain, market: Market, book: PriceBook, *, every_slots: int = 5) -> None:
    """Move the pools every ``every_slots`` slots until cancelled."""
    rng = random.Random(f"{market.seed}:market-maker")
    mm = market.market_maker
    mm_key = mm.pubkey()
    lander = _SwapBuilder(market)
    level = {p.symbol: math.log(book.price(p) / p.start_price) for p in market.pools}
    period = chain.config.slot_ms / 1000
    while True:
        # the slot clock runs on this event loop, so sleeping this long lets ``every_slots`` pass
        await trio.sleep(period * every_slots)
        blockhash, _ = chain.latest_blockhash()
        for pool in market.pools:
            level[pool.symbol] += rng.gauss(0.0, STEP_SIGMA) - REVERSION * level[pool.symbol]
            target = pool.start_price * math.exp(level[pool.symbol])
            reserve_token, reserve_usdc = pool_reserves(chain, pool)
            base_price = target * 10**market.usdc.decimals / 10**pool.decimals
            direction, amount = mm_amount_for_price(base_price, reserve_token, reserve_usdc)
            if amount <= 0:
                continue
            ix = lander.swap(pool.symbol, direction, amount)
            message = Message.new_with_blockhash([ix], mm_key, blockhash)
            tx = VersionedTransaction.from_legacy(Transaction([mm], message, blockhash))
            outcome = chain.submit(tx, skip_preflight=True)
            if outcome.landed is None or outcome.landed.err is not None:
                logger.info(
                    "market maker swap did not land",
                    extra={"pool": pool.symbol, "fate": outcome.fate, "signature": str(outcome.signature)},
                )
        book.sample()


class _SwapBuilder:
    """The market maker wallet's swap instructions (its token accounts computed once)."""

    def __init__(self, market: Market) -> None:
        self._amm = AmmClient(market.amm_program)
        self._market = market
        owner = market.market_maker.pubkey()
        self._owner = owner
        self._usdc_account = associated_token_address(owner, market.usdc.mint)
        self._token_accounts = {p.symbol: associated_token_address(owner, p.mint) for p in market.pools}

    def swap(self, symbol: str, direction: str, amount: int) -> Instruction:
        pool = self._market.pool(symbol)
        usdc = self._market.usdc.mint
        if direction == "buy":
            return self._amm.swap(
                self._owner, usdc, pool.mint, self._usdc_account, self._token_accounts[symbol], amount, 0
            )
        return self._amm.swap(
            self._owner, pool.mint, usdc, self._token_accounts[symbol], self._usdc_account, amount, 0
        )
