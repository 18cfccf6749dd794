"""Prices and quotes from the local pools, in the shapes of Jupiter's Price API v3 and Swap API v1.

Owns: the ``PriceBook`` (each pool's current USD price read from its reserves, and a bounded
history of samples for ``priceChange24h``) and the ASGI app served on ``--price-port``:

- ``GET /price/v3?ids=MINT[,MINT...]`` -> ``{mint: {usdPrice, blockId, decimals, priceChange24h}}``
  (``priceChange24h`` in percent against the latest sample at least 24 h of chain time old: at
  start the book reads the pool's price a day ago from the chain's history, then samples once a
  chain minute; USDC and USDT are 1).
- ``GET /swap/v1/quote?inputMint&outputMint&amount[&slippageBps=50][&swapMode=ExactIn]`` ->
  ``{inputMint, inAmount, outputMint, outAmount, otherAmountThreshold, swapMode, slippageBps,
  platformFee, priceImpactPct, routePlan: [{swapInfo: {ammKey, label, inputMint, outputMint,
  inAmount, outAmount, feeAmount, feeMint}, percent}], contextSlot, timeTaken}``; amounts are
  strings of base units as Jupiter sends them, ``outAmount`` is the AMM program's own integer
  formula, ``priceImpactPct`` is a fraction (as Jupiter's) of the spot output lost to the pool's
  depth. Routes are direct: a token against USDC, either way.

Bad input (a missing or unknown mint, a non-integer or non-positive amount, a pair without a
pool, ExactOut) is a 400 with ``{"error": ..., "errorCode": ...}`` naming the problem.

May import: the standard library, attrs, solders, contracts.amm_client, localnet.
"""

from __future__ import annotations

import collections
import json
import math
import time
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qs

import attrs

from contracts.amm_client import FEE_DENOMINATOR, quote
from localnet.chain import Chain, Commitment
from localnet.market import Market, MarketPool, pool_reserves
from localnet.rpc_server import ASGIApp, Receive, Scope, Send, respond

__all__ = ["BadRequest", "PriceBook", "build_price_app", "price_v3", "quote_v1"]

DAY_S: Final = 86_400
SAMPLE_EVERY_S: Final = 60
HISTORY_SAMPLES: Final = 3 * DAY_S // SAMPLE_EVERY_S  # three days of samples, a minute apart
MAX_IDS: Final = 50
STABLECOINS: Final = ("USDC", "USDT")
AMM_LABEL: Final = "XORJ Local AMM"


class BadRequest(Exception):
    """A request the API refuses with 400; ``code`` is a Jupiter-style error code."""

    def __init__(self, message: str, code: str = "INVALID_REQUEST") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@attrs.frozen
class PriceSample:
    unix_timestamp: int
    slot: int
    price: float


class PriceBook:
    """Current prices from reserves, and recent samples per pool (taken by ``sample``)."""

    def __init__(self, chain: Chain, market: Market) -> None:
        self.chain = chain
        self.market = market
        self._by_mint: dict[str, MarketPool] = {str(p.mint): p for p in market.pools}
        self._samples: dict[str, collections.deque[PriceSample]] = {
            p.symbol: collections.deque(maxlen=HISTORY_SAMPLES) for p in market.pools
        }
        for pool in market.pools:
            then = self._price_from_history(pool, chain.unix_timestamp - DAY_S)
            if then is not None:
                self._samples[pool.symbol].append(then)
        self.sample(force=True)

    def _price_from_history(self, pool: MarketPool, at: int) -> PriceSample | None:
        """The pool's price after its last transaction at or before ``at`` (read from the chain's
        history, so a fresh start and a ledger restart both know the price a day ago)."""
        for record in self.chain.signatures_for_address(
            pool.usdc_account, before=None, until=None, limit=1_000_000, commitment=Commitment.PROCESSED
        ):
            if record.block_time > at or record.err is not None:
                continue
            keys = list(record.transaction.message.account_keys)
            amounts = {keys[b.account_index]: b.amount for b in record.post_token_balances}
            token, usdc = amounts.get(pool.token_account), amounts.get(pool.usdc_account)
            if not token or usdc is None:
                return None
            price = (usdc / 10**self.market.usdc.decimals) / (token / 10**pool.decimals)
            return PriceSample(record.block_time, record.slot, price)
        return None

    def pool_for(self, mint: str) -> MarketPool | None:
        return self._by_mint.get(mint)

    def price(self, pool: MarketPool) -> float:
        """USD (USDC) per whole token, from the pool's reserves."""
        token, usdc = pool_reserves(self.chain, pool)
        if token == 0:
            return 0.0
        return float((usdc / 10**self.market.usdc.decimals) / (token / 10**pool.decimals))

    def sample(self, *, force: bool = False) -> None:
        """Keep the current prices, at most one sample per ``SAMPLE_EVERY_S`` of chain time."""
        now, slot = self.chain.unix_timestamp, self.chain.slot
        for pool in self.market.pools:
            samples = self._samples[pool.symbol]
            if force or not samples or now - samples[-1].unix_timestamp >= SAMPLE_EVERY_S:
                samples.append(PriceSample(now, slot, self.price(pool)))

    def change_24h(self, pool: MarketPool) -> float:
        samples = self._samples[pool.symbol]
        cutoff = self.chain.unix_timestamp - DAY_S
        then = samples[0]
        for sample in reversed(samples):
            if sample.unix_timestamp <= cutoff:
                then = sample
                break
        if then.price == 0:
            return 0.0
        return (self.price(pool) / then.price - 1.0) * 100.0


def _one(query: Mapping[str, list[str]], name: str, default: str | None = None) -> str:
    values = query.get(name)
    if not values or not values[0]:
        if default is not None:
            return default
        raise BadRequest(f"missing query parameter {name!r}")
    return values[0]


def price_v3(book: PriceBook, query: Mapping[str, list[str]]) -> dict[str, object]:
    ids = [i for part in query.get("ids", []) for i in part.split(",") if i]
    if not ids:
        raise BadRequest("missing query parameter 'ids' (comma-separated mints)")
    if len(ids) > MAX_IDS:
        raise BadRequest(f"at most {MAX_IDS} ids per request, got {len(ids)}")
    mints = book.chain.mints
    stable = {str(mints[s].mint): mints[s] for s in STABLECOINS if s in mints}
    out: dict[str, object] = {}
    for mint in ids:
        pool = book.pool_for(mint)
        if pool is not None:
            out[mint] = {
                "usdPrice": book.price(pool),
                "blockId": book.chain.slot,
                "decimals": pool.decimals,
                "priceChange24h": book.change_24h(pool),
            }
        elif mint in stable:
            out[mint] = {
                "usdPrice": 1.0,
                "blockId": book.chain.slot,
                "decimals": stable[mint].decimals,
                "priceChange24h": 0.0,
            }
        else:
            raise BadRequest(f"unknown mint {mint!r}: no pool prices it", "TOKEN_NOT_FOUND")
    return out


def _amount(text: str) -> int:
    if not text.isdigit():
        raise BadRequest(f"amount must be a positive integer of base units, got {text!r}")
    amount = int(text)
    if amount <= 0 or amount >= 2**64:
        raise BadRequest(f"amount must be between 1 and 2^64-1 base units, got {text!r}")
    return amount


def quote_v1(book: PriceBook, query: Mapping[str, list[str]], started: float) -> dict[str, object]:
    input_mint, output_mint = _one(query, "inputMint"), _one(query, "outputMint")
    amount = _amount(_one(query, "amount"))
    slippage_text = _one(query, "slippageBps", "50")
    if not slippage_text.isdigit() or int(slippage_text) > FEE_DENOMINATOR:
        raise BadRequest(f"slippageBps must be an integer 0..10000, got {slippage_text!r}")
    slippage = int(slippage_text)
    mode = _one(query, "swapMode", "ExactIn")
    if mode != "ExactIn":
        raise BadRequest(f"swapMode {mode!r} is not supported here (ExactIn only)")
    usdc = str(book.market.usdc.mint)
    for mint in (input_mint, output_mint):
        if mint != usdc and book.pool_for(mint) is None:
            raise BadRequest(f"unknown mint {mint!r}: no pool trades it", "TOKEN_NOT_TRADABLE")
    if input_mint == output_mint or usdc not in (input_mint, output_mint):
        raise BadRequest(
            f"no route from {input_mint} to {output_mint}: pools pair a token with USDC",
            "COULD_NOT_FIND_ANY_ROUTE",
        )
    pool = book.pool_for(output_mint if input_mint == usdc else input_mint)
    assert pool is not None
    reserve_token, reserve_usdc = pool_reserves(book.chain, pool)
    reserve_in, reserve_out = (
        (reserve_usdc, reserve_token) if input_mint == usdc else (reserve_token, reserve_usdc)
    )
    out = quote(amount, reserve_in, reserve_out, pool.fee_bps)
    fee = amount * pool.fee_bps // FEE_DENOMINATOR
    spot = (amount - fee) * reserve_out / reserve_in if reserve_in else 0.0
    impact = 0.0 if spot == 0 else max(0.0, 1.0 - out / spot)
    threshold = out * (FEE_DENOMINATOR - slippage) // FEE_DENOMINATOR
    return {
        "inputMint": input_mint,
        "inAmount": str(amount),
        "outputMint": output_mint,
        "outAmount": str(out),
        "otherAmountThreshold": str(threshold),
        "swapMode": "ExactIn",
        "slippageBps": slippage,
        "platformFee": None,
        "priceImpactPct": format(impact, ".10f").rstrip("0").rstrip(".") or "0",
        "routePlan": [
            {
                "swapInfo": {
                    "ammKey": str(pool.pool),
                    "label": AMM_LABEL,
                    "inputMint": input_mint,
                    "outputMint": output_mint,
                    "inAmount": str(amount),
                    "outAmount": str(out),
                    "feeAmount": str(fee),
                    "feeMint": input_mint,
                },
                "percent": 100,
            }
        ],
        "contextSlot": book.chain.slot,
        "timeTaken": time.perf_counter() - started,
    }


def _json(value: object) -> bytes:
    def finite(x: Any) -> Any:
        return x if not isinstance(x, float) or math.isfinite(x) else None

    return json.dumps(value, separators=(",", ":"), default=finite).encode()


def build_price_app(book: PriceBook) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        path = scope["path"]
        if scope["method"] != "GET":
            await respond(send, 405, _json({"error": "only GET is served"}), "application/json")
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        try:
            if path == "/price/v3":
                body: object = price_v3(book, query)
            elif path == "/swap/v1/quote":
                body = quote_v1(book, query, started)
            elif path == "/health":
                await respond(send, 200, b"ok", "text/plain")
                return
            else:
                await respond(send, 404, _json({"error": f"no such endpoint {path!r}"}), "application/json")
                return
        except BadRequest as e:
            await respond(send, 400, _json({"error": e.message, "errorCode": e.code}), "application/json")
            return
        await respond(send, 200, _json(body), "application/json")

    return app
