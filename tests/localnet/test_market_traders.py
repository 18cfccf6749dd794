"""The seeded market's trader histories are real swaps the scorer reads back at the intended shape:
the reference traders' trades, win rate, ROI and drawdown are near their targets in the scorer's
default 90-day window, over histories of more than 120 days of chain time; V1 ranks them
professional > safe_bet > gambler; and every trader keeps some tokens at the end."""

from __future__ import annotations

from typing import Any

import pytest
from solana.rpc.async_api import AsyncClient
from solders.pubkey import Pubkey

from actors.swap_extraction import Swap
from actors.trust_score import score_v1
from localnet.trader_styles import REFERENCE
from tests.localnet.conftest import LocalnetNode
from tests.localnet.market_kit import history, metrics, swaps_of

DAY_S = 86_400


def reference_metrics(node: LocalnetNode) -> dict[str, dict[str, Any]]:
    """Each reference trader's metrics over the scorer's default window: the 90 days before genesis."""
    usdc = node.manifest["mints"]["USDC"]["mint"]
    window_start = int(node.manifest["genesisTime"]) - 90 * DAY_S
    wallets = {t["name"]: Pubkey.from_string(t["pubkey"]) for t in node.manifest["traders"] if t["reference"]}

    async def scenario(client: AsyncClient) -> dict[str, dict[str, Any]]:
        out = {}
        for name, wallet in wallets.items():
            swaps = [s for s in swaps_of(wallet, await history(client, wallet)) if isinstance(s, Swap)]
            out[name] = metrics(swaps, usdc, window_start).row(0)
        return out

    return node.run(scenario, deadline=60.0)


@pytest.fixture(scope="module")
def measured(market_node: LocalnetNode) -> dict[str, dict[str, Any]]:
    return reference_metrics(market_node)


@pytest.mark.parametrize("style", REFERENCE, ids=lambda s: s.name)
def test_reference_trader_history_has_the_intended_shape(
    measured: dict[str, dict[str, Any]], style: Any
) -> None:
    got = measured[style.name]
    assert got["trades"] == style.trades
    assert abs(got["win_rate_pct"] - style.win_rate_pct) <= 5.0, got
    assert got["roi_pct"] == pytest.approx(style.roi_pct, rel=0.15), got
    assert got["max_drawdown_pct"] == pytest.approx(style.max_drawdown_pct, rel=0.15), got
    assert (got["last_swap_at"] - got["first_swap_at"]) / DAY_S > 120, got


def test_v1_ranks_professional_above_safe_bet_above_gambler(measured: dict[str, dict[str, Any]]) -> None:
    score = {
        name: score_v1(m["roi_pct"], m["max_drawdown_pct"], m["trades"]).score for name, m in measured.items()
    }
    assert score["professional"] > score["safe_bet"] > score["gambler"], score


def test_every_trader_ends_holding_tokens(market_node: LocalnetNode) -> None:
    usdc = market_node.manifest["mints"]["USDC"]["mint"]
    for trader in market_node.manifest["traders"]:
        accounts = market_node.result(
            "getTokenAccountsByOwner",
            [
                trader["pubkey"],
                {"programId": "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"},
                {"encoding": "jsonParsed"},
            ],
        )["value"]
        held = [
            a
            for a in accounts
            if a["account"]["data"]["parsed"]["info"]["mint"] != usdc
            and int(a["account"]["data"]["parsed"]["info"]["tokenAmount"]["amount"]) > 0
        ]
        assert held, trader["name"]
