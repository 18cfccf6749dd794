"""Scorer suite: metric maths throughput over synthetic swaps (10,000 wallets x 500 swaps), and
`seeded_ingest_and_score_s`: one scoring run of the scorer actor over the seeded local chain (30
trader wallets, 120+ days of real swaps): ingestion through the RPC client actor from an empty
database, metrics, scores, the stored ranking. Starting the chain and PostgreSQL is not timed.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import numpy as np
import trio

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


MARKET_CHAIN = ("--slot-ms", "100", "--blockhash-window", "150", "--finalize-slots", "4",
                "--confirm-slots", "1", "--genesis", "market", "--price-port", "0", "--seed", "11")


async def _seeded_run(workdir: Path) -> float:
    from actors import ask
    from actors.ingestion import IngestSettings
    from actors.rpc_client import RpcClient, RpcClientActor
    from actors.scorer import ScoreNow, Scorer, ScorerSettings, wallets_from_manifest
    from bench.stand import chain_and_database
    from engine.postgres_gateway import PostgresGateway
    from supervisors import ChildSpec, EventBus, Registry, Supervisor

    async with chain_and_database(workdir, MARKET_CHAIN,
                                  partial(PostgresGateway, pool_min=1, pool_max=8)) as stand:
        chain, db = stand.manifest, stand.db
        wallets, stable = wallets_from_manifest(chain)
        settings = ScorerSettings(
            window_days=365, interval_s=None, stablecoins=stable, concurrency=8,
            wallets=tuple((w, "manifest") for w in wallets),
            ingest=IngestSettings(rpc_timeout_s=10.0, db_timeout_s=20.0), db_timeout_s=60.0)

        def client() -> RpcClient:  # the local chain has no provider quota
            return RpcClient(str(chain["rpcUrl"]), rate_per_s=10_000.0, burst=1000)

        tree = Supervisor([
            ChildSpec("rpc_client", lambda: RpcClientActor(client)),
            ChildSpec("scorer", lambda: Scorer(db, settings)),
        ])
        registry = Registry()
        await stand.nursery.start(tree.run_as_root, "root", registry, EventBus())
        start = time.perf_counter()
        outcome = await ask(registry.ref("scorer"), ScoreNow(), timeout=600)
        elapsed = time.perf_counter() - start
        if outcome.status != "COMPLETED":
            raise RuntimeError(f"the seeded scoring run failed: {outcome}")
    return elapsed


def seeded_ingest_and_score_s() -> float:
    from bench.stand import in_workdir

    return in_workdir("xorj-bench-scorer-", lambda workdir: trio.run(_seeded_run, workdir))


def figures() -> dict[str, Figure]:
    batch = synthetic_batch(WALLETS, SWAPS)
    window_start = int(batch.time.min()) + 30 * DAY_S
    compute_metrics(synthetic_batch(100, SWAPS), window_start)  # warm-up
    start = time.perf_counter()
    compute_metrics(batch, window_start)
    elapsed = time.perf_counter() - start
    return {
        "metrics_swaps_per_s": Figure(WALLETS * SWAPS / elapsed, "swaps/s", "higher", target=1_000_000),
        "seeded_ingest_and_score_s": Figure(seeded_ingest_and_score_s(), "s", "lower"),
    }
