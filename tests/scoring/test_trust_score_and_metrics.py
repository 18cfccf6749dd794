"""The XORJ Trust Score formula against hand-worked values, and trader metrics from swaps."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.trader_metrics import DAY_S, SwapBatch, compute_metrics, eligibility
from actors.trust_score import score_v1, score_v2


def test_v1_matches_hand_worked_values_for_the_seed_reference_traders() -> None:
    # professional: sharpe = (90/100)/sqrt(0.10) = 2.84605; nS = 0.96921; nR = 0.18; nD = 0.10
    pro = score_v1(roi_pct=90, max_drawdown_pct=10, trades=100)
    assert pro.sharpe == pytest.approx(0.9 / math.sqrt(0.1))
    assert pro.score == pytest.approx((0.40 * (4.846049894 / 5) + 0.15 * 0.18 - 0.45 * 0.10) * 100, abs=1e-6)
    # gambler: sharpe 17.93 clamps nS to 1; 0.40 + 0.15*0.6 - 0.45*0.7 = 0.175
    assert score_v1(roi_pct=300, max_drawdown_pct=70, trades=20).score == pytest.approx(17.5)
    # safe bet: sharpe = 0.1/sqrt(0.02) = 0.70711; 0.40*0.541421 + 0.15*0.04 - 0.45*0.02
    safe = score_v1(roi_pct=20, max_drawdown_pct=2, trades=200)
    assert safe.score == pytest.approx((0.40 * (2.707106781 / 5) + 0.006 - 0.009) * 100, abs=1e-6)
    assert pro.score > safe.score > 17.5  # the professional outranks the safe bet, which outranks the gambler


def test_zero_drawdown_or_zero_trades_gives_a_zero_v1_sharpe() -> None:
    for score in (score_v1(50, 0, 10), score_v1(50, 10, 0)):
        assert score.sharpe == 0.0
        assert score.normalized_sharpe == pytest.approx(0.4)


def test_negative_roi_and_heavy_drawdown_floor_at_zero() -> None:
    assert score_v1(roi_pct=-80, max_drawdown_pct=95, trades=60).score == 0.0


def test_extreme_values_clamp_every_normaliser_to_the_unit_interval() -> None:
    top = score_v2(sharpe=1e9, roi_pct=1e9, max_drawdown_pct=0)
    assert (top.normalized_sharpe, top.normalized_roi, top.normalized_drawdown) == (1.0, 1.0, 0.0)
    assert top.score == pytest.approx(55.0)
    bottom = score_v2(sharpe=-1e9, roi_pct=-1e9, max_drawdown_pct=1e9)
    assert (bottom.normalized_sharpe, bottom.normalized_roi, bottom.normalized_drawdown) == (0.0, 0.0, 1.0)
    assert bottom.score == 0.0


def test_bad_inputs_are_refused_with_a_message_naming_them() -> None:
    with pytest.raises(ValueError, match="max_drawdown_pct"):
        score_v1(10, -1, 5)
    with pytest.raises(ValueError, match="trades"):
        score_v1(10, 1, -5)
    with pytest.raises(ValueError, match="roi_pct"):
        score_v2(1.0, math.nan, 1)


@given(
    sharpe=st.floats(-50, 50), roi=st.floats(-1000, 5000), dd=st.floats(0, 500),
)
def test_the_score_is_always_between_0_and_100(sharpe: float, roi: float, dd: float) -> None:
    assert 0.0 <= score_v2(sharpe, roi, dd).score <= 100.0


def test_xorj_score_prints_the_formula_result_as_json() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "score", "--roi-pct", "90", "--max-drawdown-pct", "10",
         "--trades", "100", "--win-rate-pct", "80"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["score"] == pytest.approx(score_v1(90, 10, 100).score, abs=1e-3)
    assert out["components"]["normalized_roi"] == pytest.approx(0.18)
    bad = subprocess.run(
        [sys.executable, "-m", "engine.cli", "score", "--roi-pct", "1", "--max-drawdown-pct", "-3",
         "--trades", "1"], capture_output=True, text=True, timeout=60,
    )
    assert bad.returncode == 2 and "max_drawdown_pct" in bad.stderr and "Traceback" not in bad.stderr


USDC, SOL = -1, 0
T0 = 1_700_000_000


def batch(rows: list[list[tuple[int, int, float, int, float, float]]], n_tokens: int = 2) -> SwapBatch:
    """rows[wallet] = [(t, sell_token, sell_qty, buy_token, buy_qty, usd), ...]"""
    width = max(len(r) for r in rows)
    shape = (len(rows), width)
    arrays = {
        "time": np.zeros(shape, np.int64), "sell_token": np.full(shape, -1, np.int32),
        "sell_qty": np.zeros(shape), "buy_token": np.full(shape, -1, np.int32),
        "buy_qty": np.zeros(shape), "usd": np.full(shape, np.nan), "fee_usd": np.zeros(shape),
        "valid": np.zeros(shape, bool),
    }
    for w, swaps in enumerate(rows):
        for s, (t, st_, sq, bt, bq, usd) in enumerate(swaps):
            arrays["time"][w, s] = t
            arrays["sell_token"][w, s] = st_
            arrays["sell_qty"][w, s] = sq
            arrays["buy_token"][w, s] = bt
            arrays["buy_qty"][w, s] = bq
            arrays["usd"][w, s] = usd
            arrays["valid"][w, s] = True
    return SwapBatch(n_tokens=n_tokens, **arrays)


def test_metrics_of_round_trips_hand_worked() -> None:
    day = DAY_S
    swaps = [
        (T0, USDC, 100, SOL, 10, 100.0),  # buy 10 SOL for 100
        (T0 + day, SOL, 10, USDC, 120, 120.0),  # sell: +20 on 100 (+20 %)
        (T0 + 2 * day, USDC, 120, SOL, 12, 120.0),  # buy 12 for 120
        (T0 + 3 * day, SOL, 12, USDC, 90, 90.0),  # sell: -30 on 120 (-25 %)
        (T0 + 4 * day, USDC, 90, SOL, 9, 90.0),  # buy 9 for 90
        (T0 + 5 * day, SOL, 9, USDC, 117, 117.0),  # sell: +27 on 90 (+30 %)
    ]
    m = compute_metrics(batch([swaps]), window_start=T0).row(0)
    assert m["trades"] == 3 and m["wins"] == 2
    assert m["win_rate_pct"] == pytest.approx(200 / 3)
    assert m["total_profit_usd"] == pytest.approx(17.0)
    assert m["capital_usd"] == pytest.approx(120.0)  # the most cost basis held at once
    assert m["roi_pct"] == pytest.approx(17.0 / 120 * 100)
    # equity 120 -> 140 -> 110 -> 137: drawdown 30/140
    assert m["max_drawdown_pct"] == pytest.approx(30 / 140 * 100)
    returns = np.array([0.20, -0.25, 0.30])
    assert m["sharpe"] == pytest.approx(returns.mean() / returns.std(ddof=1))
    assert m["sortino"] == pytest.approx(returns.mean() / math.sqrt((0.25**2) / 3))
    assert m["volume_usd"] == pytest.approx(637.0)
    assert (m["first_swap_at"], m["last_swap_at"]) == (T0, T0 + 5 * day)
    assert m["max_daily_profit_to_volume"] == pytest.approx(30 / 90)


def test_unvalued_swaps_and_sales_without_known_basis_realise_nothing() -> None:
    swaps = [
        (T0, SOL, 5, USDC, 50, 50.0),  # selling tokens bought before the history: no basis
        (T0 + 10, USDC, 10, SOL, 1, math.nan),  # could not be valued: skipped
        (T0 + 20, SOL, 1, USDC, 12, 12.0),
    ]
    m = compute_metrics(batch([swaps]), window_start=T0).row(0)
    assert m["trades"] == 0 and m["total_profit_usd"] == 0.0 and m["roi_pct"] == 0.0


def test_trades_before_the_window_build_positions_but_do_not_count() -> None:
    swaps = [
        (T0, USDC, 100, SOL, 10, 100.0),
        (T0 + 5, SOL, 5, USDC, 60, 60.0),  # before the window: +10, not counted
        (T0 + 100, SOL, 5, USDC, 40, 40.0),  # inside: -10 on the remaining basis of 50
    ]
    m = compute_metrics(batch([swaps]), window_start=T0 + 50).row(0)
    assert m["trades"] == 1 and m["total_profit_usd"] == pytest.approx(-10.0)


def test_wallets_are_independent_within_one_batch() -> None:
    a = [(T0, USDC, 100, SOL, 10, 100.0), (T0 + 1, SOL, 10, USDC, 150, 150.0)]
    b = [(T0, USDC, 100, 1, 10, 100.0), (T0 + 1, 1, 10, USDC, 80, 80.0), (T0 + 2, USDC, 5, SOL, 1, 5.0)]
    table = compute_metrics(batch([a, b]), window_start=T0)
    assert table.row(0)["total_profit_usd"] == pytest.approx(50.0)
    assert table.row(1)["total_profit_usd"] == pytest.approx(-20.0)


def test_eligibility_names_every_failed_rule() -> None:
    ok = eligibility(trades=60, first_swap_at=T0, last_swap_at=T0 + 100 * DAY_S, max_daily_ratio=0.1)
    assert ok.eligible and ok.reason == "eligible"
    bad = eligibility(trades=20, first_swap_at=T0, last_swap_at=T0 + 30 * DAY_S, max_daily_ratio=0.8)
    assert not bad.eligible
    assert "20 trades < 50" in bad.reason and "history 30.0 days < 90" in bad.reason
    assert "0.80 > 0.50" in bad.reason
