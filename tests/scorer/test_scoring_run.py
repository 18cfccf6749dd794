"""Scoring runs end to end on the local chain: a real `python -m localnet`, the RPC client actor and
the scorer under a real Supervisor, a real PostgreSQL. Swaps are real transactions (two SPL
transfers, both parties signing) read back through getSignaturesForAddress + getTransaction."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import trio

from actors import ask
from actors.scorer import RankingsSubscribers, RankingsUpdated, ScoreNow, SubscribeRankings
from engine.postgres_gateway import PostgresGateway
from supervisors import ChildSpec
from tests.runtime.conftest import running
from tests.scorer.conftest import (
    FAST_CHAIN,
    Inbox,
    Market,
    fast_client,
    localnet,
    scorer_tree,
    settings_for,
)

RUN_S = 60.0


async def latest_completed(db: PostgresGateway) -> str | None:
    run_id: str | None = await db.fetchval(
        "SELECT id FROM scoring_runs WHERE status = 'COMPLETED' ORDER BY finished_at DESC LIMIT 1", timeout=5)
    return run_id


async def test_a_run_stores_a_completed_ranking_and_later_runs_fetch_only_what_is_new(
    tmp_path: Path, schema: PostgresGateway
) -> None:
    db = schema
    async with localnet(tmp_path / "chain", *FAST_CHAIN) as chain, fast_client(chain.url) as rpc:
        market = Market(chain, rpc)
        pro, loser = await market.funded_trader(), await market.funded_trader()
        quiet = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"  # a valid key with no history here
        for buy_back in (110.0, 105.0):
            await market.swap(pro, "USDC", 100.0, "JUP", 50.0)
            await market.swap(pro, "JUP", 50.0, "USDC", buy_back)
        await market.swap(loser, "USDC", 100.0, "JUP", 50.0)
        await market.swap(loser, "JUP", 50.0, "USDC", 80.0)

        wallets = [str(pro.pubkey()), str(loser.pubkey()), quiet]
        settings = settings_for(wallets, frozenset({str(chain.mint("USDC"))}))
        send, receive = trio.open_memory_channel[object](10)
        subscribers = RankingsSubscribers()
        tree_spec = scorer_tree(db, lambda: fast_client(chain.url), settings, subscribers,
                                ChildSpec("executor", lambda: Inbox(send)))
        async with running(tree_spec) as tree:
            scorer = tree.registry.ref("scorer")
            await scorer.tell(SubscribeRankings(tree.registry.ref("executor")))
            first = await ask(scorer, ScoreNow(), timeout=RUN_S)

            assert first.status == "COMPLETED", first
            assert (first.wallets_total, first.wallets_ok, first.wallets_failed) == (3, 3, 0)
            assert first.swaps_ingested == 6 and first.swaps_unvalued == 0
            assert first.transactions_fetched > 6  # airdrops and mints are read and skipped too
            assert sum(first.txs_skipped.values()) == first.transactions_fetched - 6
            with trio.fail_after(5):
                note = await receive.receive()
            assert isinstance(note, RankingsUpdated) and note.run_id == first.run_id
            assert note.algorithm == "v1"

            run = await db.fetchrow("SELECT * FROM scoring_runs WHERE id = $1", first.run_id, timeout=5)
            assert run is not None
            assert (run["status"], run["algorithm"], run["window_days"]) == ("COMPLETED", "v1", 3650)
            assert (run["wallets_total"], run["wallets_ok"], run["swaps_ingested"]) == (3, 3, 6)
            assert run["traders_analyzed"] == 3 and run["finished_at"] is not None
            scores = {r["wallet_address"]: r for r in await db.fetch(
                "SELECT * FROM trader_scores WHERE run_id = $1", first.run_id, timeout=5)}
            assert sorted(r["rank"] for r in scores.values()) == [1, 2, 3]
            best, worst = scores[wallets[0]], scores[wallets[1]]
            assert best["rank"] == 1 and best["trade_count"] == 2 and best["win_rate"] == Decimal("100.00")
            assert best["total_return"] > 0 and best["volume_usd"] == Decimal("415")
            assert worst["trade_count"] == 1 and worst["win_rate"] == 0 and worst["total_return"] < 0
            assert worst["max_drawdown"] > 0
            assert scores[quiet]["trade_count"] == 0
            assert all(not r["eligible"] for r in scores.values())
            assert all("trades < 50" in r["eligibility_reason"] for r in scores.values())
            assert all(r["algorithm"] == "v1" for r in scores.values())
            stored = await db.fetch("SELECT usd_value FROM swaps WHERE wallet = $1", wallets[0], timeout=5)
            assert sorted(r["usd_value"] for r in stored) == [100, 100, 105, 110]

            # Nothing new on chain: the second run asks for signatures after the cursor, gets none.
            second = await ask(scorer, ScoreNow(), timeout=RUN_S)
            assert second.status == "COMPLETED"
            assert (second.transactions_fetched, second.swaps_ingested) == (0, 0)

            # One new swap: exactly that transaction is fetched and stored.
            await market.swap(pro, "USDC", 10.0, "JUP", 5.0)
            third = await ask(scorer, ScoreNow(), timeout=RUN_S)
            assert (third.transactions_fetched, third.swaps_ingested) == (1, 1)

            # Forget the cursors: everything is fetched again, nothing is stored twice.
            await db.execute(
                "UPDATE tracked_wallets SET newest_signature = NULL, newest_slot = NULL", timeout=5)
            again = await ask(scorer, ScoreNow(), timeout=RUN_S)
            assert again.status == "COMPLETED" and again.swaps_ingested == 0
            assert again.transactions_fetched == first.transactions_fetched + 1
            assert await db.fetchval("SELECT count(*) FROM swaps", timeout=5) == 7
            assert await latest_completed(db) == again.run_id


async def test_an_rpc_outage_fails_the_run_and_the_previous_ranking_stays_in_force(
    tmp_path: Path, schema: PostgresGateway
) -> None:
    db = schema
    async with localnet(tmp_path / "chain", *FAST_CHAIN) as chain, fast_client(chain.url) as rpc:
        market = Market(chain, rpc)
        trader = await market.funded_trader()
        await market.swap(trader, "USDC", 100.0, "JUP", 50.0)
        settings = settings_for([str(trader.pubkey())], frozenset({str(chain.mint("USDC"))}))
        async with running(scorer_tree(db, lambda: fast_client(chain.url), settings)) as tree:
            scorer = tree.registry.ref("scorer")
            good = await ask(scorer, ScoreNow(), timeout=RUN_S)
            assert good.status == "COMPLETED"

            await chain.stop()
            failed = await ask(scorer, ScoreNow(), timeout=RUN_S)

            assert failed.status == "FAILED" and failed.run_id is not None
            assert failed.wallets_failed == 1 and "every wallet" in (failed.error or "")
            row = await db.fetchrow("SELECT status, error, finished_at FROM scoring_runs WHERE id = $1",
                                    failed.run_id, timeout=5)
            assert row is not None and row["status"] == "FAILED" and "Rpc" in row["error"]
            assert row["finished_at"] is not None
            assert await db.fetchval("SELECT count(*) FROM trader_scores WHERE run_id = $1",
                                     failed.run_id, timeout=5) == 0
            assert await latest_completed(db) == good.run_id
            error = await db.fetchval("SELECT last_ingest_error FROM tracked_wallets", timeout=5)
            assert error is not None and "Rpc" in error


async def test_an_unvalued_swap_is_kept_counted_and_valued_once_a_price_exists(
    tmp_path: Path, schema: PostgresGateway
) -> None:
    db = schema
    async with localnet(tmp_path / "chain", *FAST_CHAIN) as chain, fast_client(chain.url) as rpc:
        market = Market(chain, rpc)
        trader = await market.funded_trader()
        await market.swap(trader, "USDC", 100.0, "JUP", 50.0)
        await market.swap(trader, "JUP", 10.0, "BONK", 1000.0)  # no stablecoin leg, no price yet
        settings = settings_for([str(trader.pubkey())], frozenset({str(chain.mint("USDC"))}))
        async with running(scorer_tree(db, lambda: fast_client(chain.url), settings)) as tree:
            scorer = tree.registry.ref("scorer")
            first = await ask(scorer, ScoreNow(), timeout=RUN_S)
            assert first.status == "COMPLETED"
            assert (first.swaps_ingested, first.swaps_unvalued) == (2, 1)
            unvalued = await db.fetchrow(
                "SELECT block_time, usd_value FROM swaps WHERE sold_mint = $1", str(chain.mint("JUP")),
                timeout=5)
            assert unvalued is not None and unvalued["usd_value"] is None

            await db.execute(
                """INSERT INTO token_prices (mint, at, usd_price)
                   VALUES ($1, $2::timestamptz - interval '1 minute', 2.5)""",
                str(chain.mint("JUP")), unvalued["block_time"], timeout=5)
            second = await ask(scorer, ScoreNow(), timeout=RUN_S)
            assert second.swaps_unvalued == 0
            valued = await db.fetchval(
                "SELECT usd_value FROM swaps WHERE sold_mint = $1", str(chain.mint("JUP")), timeout=5)
            assert valued == Decimal("25.000000")  # 10 JUP at $2.50
