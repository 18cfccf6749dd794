"""The scorer on the local chain's seeded market: 30 trader wallets with 120+ days of real AMM swap
history. The three reference traders come out near their intended shape (trades, win rate, ROI,
drawdown), and V1 ranks the professional above the safe bet above the gambler."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors import ask
from actors.scorer import ScoreNow, wallets_from_manifest
from engine.postgres_gateway import PostgresGateway
from localnet.trader_styles import REFERENCE
from tests.runtime.conftest import running
from tests.scorer.conftest import MARKET_CHAIN, fast_client, localnet, scorer_tree, settings_for

DAY_S = 86_400


async def test_the_seeded_market_scores_the_reference_traders_in_their_intended_order(
    tmp_path: Path, schema: PostgresGateway
) -> None:
    db = schema
    async with localnet(tmp_path / "market", *MARKET_CHAIN, startup_s=150.0) as chain:
        wallets, stablecoins = wallets_from_manifest(chain.manifest)
        assert len(wallets) == 30 and stablecoins
        # The scorer's default window: the reference shapes are planned to fit its 90 days.
        settings = settings_for(wallets, stablecoins, "manifest", window_days=90, concurrency=8)
        async with running(scorer_tree(db, lambda: fast_client(chain.url), settings)) as tree:
            outcome = await ask(tree.registry.ref("scorer"), ScoreNow(), timeout=120)

        assert outcome.status == "COMPLETED", outcome
        assert (outcome.wallets_total, outcome.wallets_ok) == (30, 30)
        assert outcome.swaps_unvalued == 0
        names = {t["pubkey"]: t["name"] for t in chain.manifest["traders"]}
        rows = {names[r["wallet_address"]]: r for r in await db.fetch(
            "SELECT * FROM trader_scores WHERE run_id = $1", outcome.run_id, timeout=10)}
        assert len(rows) == 30
        for style in REFERENCE:
            got = rows[style.name]
            assert got["trade_count"] == style.trades, (style.name, got)
            assert abs(float(got["win_rate"]) - style.win_rate_pct) <= 5.0, (style.name, got)
            assert float(got["total_return"]) == pytest.approx(style.roi_pct, rel=0.15), (style.name, got)
            assert float(got["max_drawdown"]) == pytest.approx(style.max_drawdown_pct, rel=0.15), got
            span = (got["last_trade_at"] - got["first_trade_at"]).total_seconds() / DAY_S
            assert span > 120, (style.name, span)
        rank = {name: rows[name]["rank"] for name in ("professional", "safe_bet", "gambler")}
        assert rank["professional"] < rank["safe_bet"] < rank["gambler"], rank
        assert rows["professional"]["eligible"] and not rows["gambler"]["eligible"]
