"""The scorer actor's own behaviour around runs: the schedule, the algorithm setting, a run left
RUNNING by a dead incarnation, and the pure steps (batch building, scoring and ranking). RPC is
the stand-in mainnet node (a real socket); the database is a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest
import trio
from solders.keypair import Keypair

from actors import ask
from actors.rpc_client import RetryPolicy, RpcClient, RpcClientActor
from actors.scorer import (
    ABANDONED,
    RankingsSubscribers,
    RankingsUpdated,
    ScoreNow,
    Scorer,
    ScorerSettings,
    SubscribeRankings,
    build_batch,
    score_wallets,
)
from actors.trader_metrics import compute_metrics
from actors.trust_score import Algorithm, score_v1, score_v2
from engine.config import load_config
from engine.postgres_gateway import PostgresGateway
from engine.scoring_commands import scorer_settings
from sql.statements import Script
from supervisors import ChildSpec, Supervisor
from tests.rpc.conftest import rpc_nodes
from tests.runtime.conftest import running
from tests.scorer.conftest import Inbox

USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
JUP = "JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN"


async def test_a_scheduled_v2_run_completes_publishes_and_a_left_over_running_row_is_abandoned(
    schema: PostgresGateway,
) -> None:
    db = schema
    await db.execute("INSERT INTO scoring_runs (id, status) VALUES ('dead', 'RUNNING')", timeout=5)
    wallet = str(Keypair().pubkey())
    settings = ScorerSettings(algorithm=Algorithm.V2, interval_s=0.5, wallets=((wallet, "config"),),
                              db_timeout_s=10.0)
    subscribers = RankingsSubscribers()
    send, receive = trio.open_memory_channel[object](10)
    async with rpc_nodes("mainnet") as [server]:
        def client() -> RpcClient:
            return RpcClient(server.url, retry=RetryPolicy(retries=0), rate_per_s=1000.0, burst=100)

        tree = Supervisor([
            ChildSpec("rpc_client", lambda: RpcClientActor(client, probe_interval_s=60.0)),
            ChildSpec("executor", lambda: Inbox(send)),
            ChildSpec("scorer", lambda: Scorer(db, settings, subscribers)),
        ])
        async with running(tree) as t:
            await t.registry.ref("scorer").tell(SubscribeRankings(t.registry.ref("executor")))
            with trio.fail_after(20):  # the schedule, not a request, starts these runs
                note = await receive.receive()
            assert isinstance(note, RankingsUpdated) and note.algorithm == "v2"

    dead = await db.fetchrow("SELECT status, error FROM scoring_runs WHERE id = 'dead'", timeout=5)
    assert dead == {"status": "FAILED", "error": ABANDONED}
    run = await db.fetchrow(
        "SELECT status, algorithm FROM scoring_runs WHERE id = $1", note.run_id, timeout=5)
    assert run == {"status": "COMPLETED", "algorithm": "v2"}
    scores = await db.fetch("SELECT wallet_address, algorithm, rank FROM trader_scores WHERE run_id = $1",
                            note.run_id, timeout=5)
    assert [(r["wallet_address"], r["algorithm"], r["rank"]) for r in scores] == [(wallet, "v2", 1)]


def _row(wallet: str, day: int, sold: str, sold_amount: int, bought: str, bought_amount: int,
         usd: str | None) -> dict[str, object]:
    return {
        "wallet": wallet, "block_time": dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=day),
        "sold_mint": sold, "sold_amount": Decimal(sold_amount), "sold_decimals": 6,
        "bought_mint": bought, "bought_amount": Decimal(bought_amount), "bought_decimals": 6,
        "usd_value": None if usd is None else Decimal(usd), "fee_usd": None,
    }


def test_stored_swaps_become_a_batch_and_scores_follow_the_chosen_formula() -> None:
    a, b = "A" * 32, "B" * 32
    rows = [
        _row(a, 0, USDC, 100_000_000, JUP, 50_000_000, "100"),
        _row(a, 1, JUP, 50_000_000, USDC, 120_000_000, "120"),
        _row(a, 2, USDC, 100_000_000, JUP, 50_000_000, "100"),
        _row(a, 3, JUP, 50_000_000, USDC, 90_000_000, "90"),
        _row(b, 0, USDC, 10_000_000, JUP, 5_000_000, None),  # unvalued: excluded from the maths
    ]
    batch = build_batch(rows, [a, b], {USDC})
    assert batch.shape == (2, 4) and batch.n_tokens == 1
    assert list(batch.sell_token[0]) == [-1, 0, -1, 0] and list(batch.valid[1]) == [True, False, False, False]
    assert np.isnan(batch.usd[1, 0])
    table = compute_metrics(batch, 0)
    v1 = score_wallets(table, [a, b], Algorithm.V1)
    v2 = score_wallets(table, [a, b], Algorithm.V2)
    m = table.row(0)
    assert m["trades"] == 2 and m["win_rate_pct"] == 50.0
    assert v1[0].wallet == a and v1[0].score == pytest.approx(
        score_v1(m["roi_pct"], m["max_drawdown_pct"], m["trades"]).score)
    assert next(s for s in v2 if s.wallet == a).score == pytest.approx(
        score_v2(m["sharpe"], m["roi_pct"], m["max_drawdown_pct"]).score)
    assert [s.rank for s in v1] == [1, 2] and not any(s.eligible for s in v1)


def test_the_scorer_settings_come_from_the_config_and_the_local_chains_manifest() -> None:
    trader = str(Keypair().pubkey())
    config = load_config({"TRACKED_WALLETS": trader, "XORJ_SCORE_ALGORITHM": "v2",
                          "SCORING_WINDOW_DAYS": "30", "SCORING_INTERVAL_SECONDS": "60"})
    local = str(Keypair().pubkey())
    manifest = {"traders": [{"pubkey": local, "name": "x"}], "mints": {"USDC": {"mint": JUP}}}
    settings = scorer_settings(config, manifest)
    assert settings.algorithm is Algorithm.V2 and settings.window_days == 30 and settings.interval_s == 60
    assert settings.wallets == ((trader, "config"), (local, "manifest"))
    assert settings.stablecoins == {USDC, JUP}


async def test_a_database_refusal_while_storing_scores_fails_the_run_and_leaves_no_half_ranking(
    schema: PostgresGateway,
) -> None:
    db = schema
    wallets = tuple((str(Keypair().pubkey()), "config") for _ in range(3))
    settings = ScorerSettings(interval_s=None, wallets=wallets, db_timeout_s=10.0)
    async with rpc_nodes("mainnet") as [server]:
        def client() -> RpcClient:
            return RpcClient(server.url, retry=RetryPolicy(retries=0), rate_per_s=1000.0, burst=100)

        tree = Supervisor([
            ChildSpec("rpc_client", lambda: RpcClientActor(client, probe_interval_s=60.0)),
            ChildSpec("scorer", lambda: Scorer(db, settings)),
        ])
        async with running(tree) as t:
            scorer = t.registry.ref("scorer")
            good = await ask(scorer, ScoreNow(), timeout=30)
            assert good.status == "COMPLETED"
            # The database refuses the third score row of the next run (as a full disk would).
            await db.transaction([(Script("""
                CREATE FUNCTION refuse_third() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.rank = 3 THEN RAISE EXCEPTION 'could not extend file: No space left'; END IF;
                    RETURN NEW;
                END $$;
                CREATE TRIGGER refuse_third BEFORE INSERT ON trader_scores
                    FOR EACH ROW EXECUTE FUNCTION refuse_third();
            """), ())], timeout=5)
            bad = await ask(scorer, ScoreNow(), timeout=30)

            assert bad.status == "FAILED" and "No space left" in (bad.error or "")
            row = await db.fetchrow(
                "SELECT status, error FROM scoring_runs WHERE id = $1", bad.run_id, timeout=5)
            assert row is not None and row["status"] == "FAILED"
            assert await db.fetchval(
                "SELECT count(*) FROM trader_scores WHERE run_id = $1", bad.run_id, timeout=5) == 0
            latest = await db.fetchval(
                "SELECT id FROM scoring_runs WHERE status = 'COMPLETED' ORDER BY finished_at DESC LIMIT 1",
                timeout=5)
            assert latest == good.run_id
