"""Scorer suite: metric maths throughput over synthetic swaps (10,000 wallets x 500 swaps).

`seeded_ingest_and_score_s` (ingestion + scoring of the seeded local chain) joins this suite with
the scorer actor; until then only the maths is measured.
"""

from __future__ import annotations

import time

import numpy as np

from actors.trader_metrics import DAY_S, SwapBatch, compute_metrics
from bench.report import Figure

WALLETS = 10_000
SWAPS = 500
TOKENS = 8


def synthetic_batch(wallets: int, swaps: int, seed: int = 7) -> SwapBatch:
    """Alternating buys (USDC -> token) and sells (token -> USDC) with noisy prices over 120 days."""
    rng = np.random.default_rng(seed)
    shape = (wallets, swaps)
    t0 = 1_700_000_000
    time_ = t0 + np.sort(rng.integers(0, 120 * DAY_S, size=shape), axis=1)
    token = rng.integers(0, TOKENS, size=(wallets, swaps // 2 + 1)).repeat(2, axis=1)[:, :swaps]
    is_buy = (np.arange(swaps) % 2 == 0)[None, :].repeat(wallets, axis=0)
    qty = rng.uniform(1.0, 100.0, size=(wallets, swaps // 2 + 1)).repeat(2, axis=1)[:, :swaps]
    usd = qty * rng.uniform(0.8, 1.25, size=shape)
    return SwapBatch(
        time=time_.astype(np.int64),
        sell_token=np.where(is_buy, -1, token).astype(np.int32),
        sell_qty=np.where(is_buy, usd, qty),
        buy_token=np.where(is_buy, token, -1).astype(np.int32),
        buy_qty=np.where(is_buy, qty, usd),
        usd=usd,
        fee_usd=np.full(shape, 0.001),
        valid=np.ones(shape, bool),
        n_tokens=TOKENS,
    )


def figures() -> dict[str, Figure]:
    batch = synthetic_batch(WALLETS, SWAPS)
    window_start = int(batch.time.min()) + 30 * DAY_S
    compute_metrics(synthetic_batch(100, SWAPS), window_start)  # warm-up
    start = time.perf_counter()
    compute_metrics(batch, window_start)
    elapsed = time.perf_counter() - start
    return {
        "metrics_swaps_per_s": Figure(WALLETS * SWAPS / elapsed, "swaps/s", "higher", target=1_000_000),
    }
