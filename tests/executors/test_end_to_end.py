"""End to end: the demo users follow the top trader of the latest ranking, their vaults move toward
the trader's weights at the price API's prices, and every CONFIRMED trade matches its transaction's
``TradeExecuted`` event on chain."""

from __future__ import annotations

from typing import Any

import httpx
import trio
from solders.pubkey import Pubkey

from actors.portfolio import trader_holdings, vault_holdings, weights
from actors.rpc_client import RpcClient
from contracts.vault_client import VaultClient
from engine.embedded_postgres import EmbeddedPostgres
from engine.embedded_redis import EmbeddedRedis
from tests.executors.conftest import Engine, eventually, run_engine
from tests.localnet.conftest import LocalnetNode


async def _prices(url: str, mints: set[str]) -> dict[str, float]:
    async with httpx.AsyncClient() as http:
        with trio.fail_after(10):
            answer = (await http.get(f"{url}/price/v3",
                                     params={"ids": ",".join(sorted(mints))})).json()
    return {m: float(v["usdPrice"]) for m, v in answer.items() if isinstance(v, dict) and "usdPrice" in v}


def _distance(a: dict[str, float], b: dict[str, float]) -> float:
    return sum(abs(a.get(m, 0.0) - b.get(m, 0.0)) for m in set(a) | set(b))


async def _vault_weights(rpc: RpcClient, vault: VaultClient, owner: str, usdc: str, decimals: dict[str, int],
                         prices: dict[str, float]) -> dict[str, float]:
    held = await vault_holdings(rpc, vault, Pubkey.from_string(owner), decimals, timeout=10)
    return weights(held, prices, usdc_mint=usdc)


async def test_demo_users_follow_the_top_trader_and_the_db_matches_the_chain(
    chain: LocalnetNode, pg_server: EmbeddedPostgres, redis_server: EmbeddedRedis, db_url: str,
) -> None:
    manifest = chain.manifest
    usdc = str(manifest["mints"]["USDC"]["mint"])
    pooled = {str(p["mint"]) for p in manifest["pools"].values()}
    decimals = {str(m["mint"]): int(m["decimals"]) for m in manifest["mints"].values()
                if str(m["mint"]) in pooled | {usdc}}
    owners = [str(u["owner"]) for u in manifest["demoUsers"]]
    vault = VaultClient(Pubkey.from_string(manifest["programs"]["vault"]))

    # the vaults as they are before the engine starts
    async with RpcClient(chain.url, default_timeout_s=5.0) as rpc:
        prices_before = await _prices(chain.manifest["priceUrl"], set(decimals))
        before = {o: await _vault_weights(rpc, vault, o, usdc, decimals, prices_before) for o in owners}

    async with run_engine(chain, pg_server, redis_server, db_url, MIN_TRADE_USD="1") as engine:

        leader: dict[str, Any] = await eventually(
            lambda: _leader(engine), within=60, what="a leader for the balanced profile")
        users = {o: await engine.user_id(o) for o in owners}

        async def all_confirmed_and_settled() -> bool:
            rows = await engine.trades()
            confirmed = {r["user_id"] for r in rows if r["status"] == "CONFIRMED"}
            unsettled = [r for r in rows if r["status"] in ("PENDING", "SUBMITTED")]
            return set(users.values()) <= confirmed and not unsettled
        await eventually(all_confirmed_and_settled, within=60, what="a CONFIRMED trade for every demo user")

        # the trader's weights at the price API's prices, as the executors see them
        holdings = await trader_holdings(engine.rpc, leader["wallet"], timeout=10)
        prices = await _prices(chain.manifest["priceUrl"], set(decimals) | set(holdings))
        target = weights(holdings, prices, usdc_mint=usdc)
        assert target and any(m != usdc for m in target), target
        for owner in owners:
            after = await _vault_weights(engine.rpc, vault, owner, usdc, decimals, prices)
            was, now = _distance(before[owner], target), _distance(after, target)
            assert now < was, (owner, before[owner], after, target)

        # every job names the followed trader and the scoring run it came from
        latest_run = await engine.db.fetchval(
            "SELECT id FROM scoring_runs WHERE status = 'COMPLETED' ORDER BY created_at DESC LIMIT 1",
            timeout=10)
        assert latest_run == leader["run_id"]
        jobs = await engine.rows("SELECT * FROM execution_jobs WHERE trigger <> 'manual'")
        assert jobs
        for job in jobs:
            assert job["target_trader"] == leader["wallet"], job
            assert job["scoring_run_id"] == leader["run_id"], job
            assert job["user_id"] in users.values(), job
        traded_jobs = {r["execution_job_id"] for r in await engine.trades()}
        assert traded_jobs <= {j["id"] for j in jobs}

        # every CONFIRMED trade's amounts are its transaction's TradeExecuted event on chain
        vaults = {uid: engine.vault.vault(Pubkey.from_string(o)) for o, uid in users.items()}
        confirmed = await engine.trades("status = 'CONFIRMED'")
        assert len(confirmed) >= len(owners)
        for row in confirmed:
            events = await engine.executed(row["transaction_signature"])
            assert len(events) == 1, (row["id"], events)
            event = events[0]
            assert event.amount_out == int(row["amount_out"]), row
            assert event.amount_in == int(row["amount_in"]), row
            assert event.vault == vaults[row["user_id"]], row
            assert str(event.input_mint) == row["from_token"] and str(event.output_mint) == row["to_token"]
            assert event.amount_out >= int(row["minimum_amount_out"])


async def _leader(engine: Engine) -> dict[str, Any] | None:
    leaders = engine.status()["leaders"]
    for profile, lead in leaders.items():
        if profile.upper() == "BALANCED" and lead.get("wallet"):
            return dict(lead)
    return None
