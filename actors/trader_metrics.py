"""Performance metrics of trader wallets from their swaps, vectorised across wallets with numpy.

Input is a `SwapBatch`: many wallets' swaps padded into `[wallets, swaps]` arrays, oldest first.
Each swap has a sell leg and a buy leg; a leg in a stablecoin is cash (token id -1). The book of
each wallet is kept at average cost per token:

- a buy leg adds the quantity and its USD value (plus the fee when the other leg is cash) to the
  token's position;
- a sell leg of a token held is a *trade*: it realises `proceeds - cost basis - fee` on the part of
  the quantity whose cost is known (tokens bought before the history starts, or in swaps that
  could not be valued, have no known basis and realise nothing);
- a swap without a USD value (`usd` NaN) is skipped here; the scorer counts it.

Per wallet, over the trades realised inside the window (`time >= window_start`):
trade count, wins, win rate %, total realised profit, ROI % (profit over the peak capital deployed
in the window, i.e. the largest total cost basis held), max drawdown % of the realised equity curve
(`capital + cumulative profit`), volume (USD of every valued swap in the window), and the Sharpe
and Sortino ratios of the per-trade return series (`profit / cost basis`; per trade, not
annualised; risk-free rate 0). First and last swap times span the whole batch, for eligibility.

The work is a loop over swap positions with numpy operations across all wallets at each step, so
the cost is O(swaps per wallet) Python steps however many wallets are scored; it is CPU work that
the scorer runs off the event loop.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
B = npt.NDArray[np.bool_]

DAY_S = 86_400
MIN_TRADES = 50
MIN_HISTORY_DAYS = 90.0
MAX_DAILY_PROFIT_TO_VOLUME = 0.50


@attrs.frozen(eq=False)
class SwapBatch:
    time: I64  # unix seconds
    sell_token: I32  # -1: the sold leg is cash (a stablecoin)
    sell_qty: F64
    buy_token: I32  # -1: the bought leg is cash
    buy_qty: F64
    usd: F64  # USD value of the swap; NaN when it could not be valued
    fee_usd: F64
    valid: B  # False in padding
    n_tokens: int

    @property
    def shape(self) -> tuple[int, int]:
        w, s = self.valid.shape
        return w, s


@attrs.frozen(eq=False)
class MetricsTable:
    """One entry per wallet, in the batch's wallet order."""

    trades: I64
    wins: I64
    win_rate_pct: F64
    total_profit_usd: F64
    capital_usd: F64
    roi_pct: F64
    max_drawdown_pct: F64
    volume_usd: F64
    sharpe: F64
    sortino: F64  # NaN when there is no losing trade (no downside to divide by)
    first_swap_at: I64  # 0 when the wallet has no swap
    last_swap_at: I64
    max_daily_profit_to_volume: F64

    def row(self, i: int) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return None if not math.isfinite(x) else float(x)

        return {
            "trades": int(self.trades[i]),
            "wins": int(self.wins[i]),
            "win_rate_pct": float(self.win_rate_pct[i]),
            "total_profit_usd": float(self.total_profit_usd[i]),
            "capital_usd": float(self.capital_usd[i]),
            "roi_pct": float(self.roi_pct[i]),
            "max_drawdown_pct": float(self.max_drawdown_pct[i]),
            "volume_usd": float(self.volume_usd[i]),
            "sharpe": float(self.sharpe[i]),
            "sortino": num(float(self.sortino[i])),
            "first_swap_at": int(self.first_swap_at[i]),
            "last_swap_at": int(self.last_swap_at[i]),
            "max_daily_profit_to_volume": float(self.max_daily_profit_to_volume[i]),
        }


def compute_metrics(batch: SwapBatch, window_start: int) -> MetricsTable:
    w, s_count = batch.shape
    rows = np.arange(w)
    qty = np.zeros((w, batch.n_tokens))
    cost = np.zeros((w, batch.n_tokens))
    pnl = np.full((w, s_count), np.nan)
    ret = np.full((w, s_count), np.nan)
    peak_deployed = np.zeros(w)
    valued = batch.valid & np.isfinite(batch.usd)
    in_window = batch.time >= window_start

    for s in range(s_count):
        ok = valued[:, s]
        usd = batch.usd[:, s]
        fee = batch.fee_usd[:, s]
        sold = batch.sell_token[:, s]
        selling = ok & (sold >= 0)
        if selling.any():
            r, tok = rows[selling], sold[selling]
            held, held_cost = qty[r, tok], cost[r, tok]
            wanted = batch.sell_qty[selling, s]
            q = np.minimum(wanted, held)
            known = np.divide(q, wanted, out=np.zeros_like(q), where=wanted > 0)
            basis = np.divide(held_cost * q, held, out=np.zeros_like(q), where=held > 0)
            gain = (usd[selling] - fee[selling]) * known - basis
            qty[r, tok] = held - q
            cost[r, tok] = held_cost - basis
            counted = (basis > 0) & in_window[selling, s]
            pnl[r[counted], s] = gain[counted]
            ret[r[counted], s] = gain[counted] / basis[counted]
        bought = batch.buy_token[:, s]
        buying = ok & (bought >= 0)
        if buying.any():
            r, tok = rows[buying], bought[buying]
            qty[r, tok] += batch.buy_qty[buying, s]
            cost[r, tok] += usd[buying] + np.where(sold[buying] < 0, fee[buying], 0.0)
        step = ok & in_window[:, s]
        if step.any():
            peak_deployed = np.where(step, np.maximum(peak_deployed, cost.sum(axis=1)), peak_deployed)

    traded = ~np.isnan(pnl)
    trades = traded.sum(axis=1)
    wins = (traded & (np.nan_to_num(pnl) > 0)).sum(axis=1)
    profit = np.nan_to_num(pnl)
    total = profit.sum(axis=1)
    capital = peak_deployed
    has_capital = capital > 0
    roi = np.divide(total * 100.0, capital, out=np.zeros(w), where=has_capital)

    equity = capital[:, None] + np.cumsum(profit, axis=1)
    peak = np.maximum.accumulate(np.maximum(equity, capital[:, None]), axis=1)
    drawdown = np.divide(peak - equity, peak, out=np.zeros_like(equity), where=peak > 0)
    max_dd = np.clip(drawdown.max(axis=1, initial=0.0) * 100.0, 0.0, None)

    n = np.maximum(trades, 1)
    r = np.nan_to_num(ret)
    mean = r.sum(axis=1) / n
    var = np.where(traded, (r - mean[:, None]) ** 2, 0.0).sum(axis=1) / np.maximum(trades - 1, 1)
    std = np.sqrt(var)
    sharpe = np.divide(mean, std, out=np.zeros(w), where=(trades >= 2) & (std > 0))
    downside = np.sqrt((np.minimum(r, 0.0) ** 2).sum(axis=1) / n)
    sortino = np.divide(mean, downside, out=np.full(w, np.nan), where=(trades >= 2) & (downside > 0))

    window_valued = valued & in_window
    volume = np.where(window_valued, batch.usd, 0.0).sum(axis=1)
    big = np.iinfo(np.int64).max
    first = np.where(batch.valid, batch.time, big).min(axis=1, initial=big)
    last = np.where(batch.valid, batch.time, 0).max(axis=1, initial=0)
    first = np.where(first == big, 0, first)

    return MetricsTable(
        trades=trades.astype(np.int64),
        wins=wins.astype(np.int64),
        win_rate_pct=np.divide(wins * 100.0, trades, out=np.zeros(w), where=trades > 0),
        total_profit_usd=total,
        capital_usd=capital,
        roi_pct=roi,
        max_drawdown_pct=max_dd,
        volume_usd=volume,
        sharpe=sharpe,
        sortino=sortino,
        first_swap_at=first.astype(np.int64),
        last_swap_at=last.astype(np.int64),
        max_daily_profit_to_volume=_max_daily_ratio(batch, profit, window_valued, window_start),
    )


def _max_daily_ratio(batch: SwapBatch, profit: F64, window_valued: B, window_start: int) -> F64:
    """Per wallet, the largest |realised profit / volume| of any single day in the window."""
    w, _ = batch.shape
    if not window_valued.any():
        return np.zeros(w)
    day = np.where(window_valued, (batch.time - window_start) // DAY_S, 0)
    days = int(day.max()) + 1
    wallet = np.broadcast_to(np.arange(w)[:, None], day.shape)
    day_profit = np.zeros((w, days))
    day_volume = np.zeros((w, days))
    np.add.at(day_profit, (wallet[window_valued], day[window_valued]), profit[window_valued])
    np.add.at(day_volume, (wallet[window_valued], day[window_valued]), batch.usd[window_valued])
    ratio = np.divide(np.abs(day_profit), day_volume, out=np.zeros_like(day_profit), where=day_volume > 0)
    result: F64 = ratio.max(axis=1)
    return result


@attrs.frozen
class Eligibility:
    eligible: bool
    reason: str


def eligibility(trades: int, first_swap_at: int, last_swap_at: int, max_daily_ratio: float) -> Eligibility:
    """At least 50 trades, at least 90 days of history, no day with |profit / volume| over 50 %."""
    problems = []
    if trades < MIN_TRADES:
        problems.append(f"{trades} trades < {MIN_TRADES}")
    span_days = (last_swap_at - first_swap_at) / DAY_S if last_swap_at > first_swap_at else 0.0
    if span_days < MIN_HISTORY_DAYS:
        problems.append(f"history {span_days:.1f} days < {MIN_HISTORY_DAYS:g}")
    if max_daily_ratio > MAX_DAILY_PROFIT_TO_VOLUME:
        problems.append(
            f"a day with |profit/volume| {max_daily_ratio:.2f} > {MAX_DAILY_PROFIT_TO_VOLUME:.2f}")
    return Eligibility(not problems, "; ".join(problems) if problems else "eligible")
