"""Planned trader histories, measured with the scorer's own metrics, have the intended shape."""

from __future__ import annotations

import numpy as np
import pytest

from actors.trader_metrics import DAY_S, SwapBatch, compute_metrics, eligibility
from actors.trust_score import score_v1
from localnet.trader_styles import GAMBLER, PROFESSIONAL, REFERENCE, SAFE_BET, Style, plan, styles

T0 = 1_700_000_000


def executed_exactly(style: Style, seed: int = 1) -> dict[str, float]:
    """The metrics, over the scorer's default 90-day window ending at the last trade, if every
    round trip filled at exactly its target return (price 1 -> 1 + r)."""
    trips = plan(style, seed)
    n = 2 * len(trips)
    time = np.zeros((1, n), np.int64)
    sell_token = np.full((1, n), -1, np.int32)
    buy_token = np.full((1, n), -1, np.int32)
    sell_qty, buy_qty, usd = np.zeros((1, n)), np.zeros((1, n)), np.zeros((1, n))
    tokens = sorted({t.token for t in trips})
    for i, trip in enumerate(trips):
        qty = trip.stake_usdc  # bought at a price of 1
        proceeds = trip.stake_usdc * (1 + trip.target_return)
        time[0, 2 * i], time[0, 2 * i + 1] = T0 + trip.open_at, T0 + trip.close_at
        token = tokens.index(trip.token)
        buy_token[0, 2 * i], buy_qty[0, 2 * i], sell_qty[0, 2 * i] = token, qty, trip.stake_usdc
        sell_token[0, 2 * i + 1], sell_qty[0, 2 * i + 1], buy_qty[0, 2 * i + 1] = token, qty, proceeds
        usd[0, 2 * i], usd[0, 2 * i + 1] = trip.stake_usdc, proceeds
    batch = SwapBatch(time=time, sell_token=sell_token, sell_qty=sell_qty, buy_token=buy_token,
                      buy_qty=buy_qty, usd=usd, fee_usd=np.zeros((1, n)), valid=np.ones((1, n), bool),
                      n_tokens=len(tokens))
    window_start = T0 + trips[-1].close_at - 90 * DAY_S
    return compute_metrics(batch, window_start=window_start).row(0)


@pytest.mark.parametrize("style", REFERENCE, ids=lambda s: s.name)
def test_reference_traders_have_their_intended_shape(style: Style) -> None:
    m = executed_exactly(style)
    assert m["trades"] == style.trades
    assert m["win_rate_pct"] == pytest.approx(style.win_rate_pct, abs=1.0)
    assert m["roi_pct"] == pytest.approx(style.roi_pct, rel=1e-6)
    assert m["max_drawdown_pct"] == pytest.approx(style.max_drawdown_pct, rel=1e-6)
    assert (m["last_swap_at"] - m["first_swap_at"]) / 86_400 > 120


def test_the_professional_outranks_the_safe_bet_which_outranks_the_gambler() -> None:
    scores = {}
    for style in (PROFESSIONAL, SAFE_BET, GAMBLER):
        m = executed_exactly(style)
        scores[style.name] = score_v1(m["roi_pct"], m["max_drawdown_pct"], int(m["trades"])).score
    assert scores["professional"] > scores["safe_bet"] > scores["gambler"]


def test_thirty_distinct_styles_include_wallets_that_are_not_eligible() -> None:
    all_styles = styles(30, seed=42)
    assert len({s.name for s in all_styles}) == 30
    verdicts = []
    for style in all_styles:
        m = executed_exactly(style)
        verdicts.append(eligibility(int(m["trades"]), int(m["first_swap_at"]), int(m["last_swap_at"]),
                                    m["max_daily_profit_to_volume"]).eligible)
    assert any(verdicts) and not all(verdicts)
    assert styles(30, seed=42) == all_styles  # reproducible by seed
