"""Trading styles for the seeded market: who trades how, planned as round trips with target returns.

Genesis turns each planned round trip into real swaps on the local AMM -- the trader buys a token
with USDC, the market maker moves the pool, the trader sells -- while warping the chain's clock,
so the histories the scorer reads are real transactions. This module only plans; it is pure and
deterministic for a seed.

A plan is shaped so that the scorer's own metrics (`actors.trader_metrics`: trades are closing
sells, ROI is profit over the peak capital deployed, drawdown is on the realised equity curve)
come out at the style's figures. With one position open at a time and a constant stake, the
equity curve in units of the stake starts at 1; a first streak of `k` losses of size `l = D / k`
makes the maximum drawdown exactly `D`; every other loss follows a win, so it cannot dig deeper;
and wins of size `w = (R + losses * l) / wins` bring the total return to `R`.
"""

from __future__ import annotations

import random

import attrs

DAY_S = 86_400
# The shaped part of a history fits inside the scorer's default 90-day window, with room for the
# days between the last trade and the first scoring run.
SHAPED_DAYS = 85.0


@attrs.frozen
class Style:
    name: str
    trades: int
    win_rate_pct: float
    roi_pct: float
    max_drawdown_pct: float
    span_days: float
    stake_usdc: float
    tokens: tuple[str, ...] = ("JUP", "BONK", "WIF", "RAY")
    loss_streak: int = 3


@attrs.frozen
class RoundTrip:
    open_at: int  # seconds after the history starts
    close_at: int
    token: str
    stake_usdc: float
    target_return: float  # e.g. 0.02 = +2 %


# The seed's reference traders (DESIGN section 7; issue 4).
PROFESSIONAL = Style("professional", 100, 80.0, 90.0, 10.0, 125.0, 200.0)
GAMBLER = Style("gambler", 20, 50.0, 300.0, 70.0, 125.0, 100.0, ("BONK", "WIF"), loss_streak=5)
SAFE_BET = Style("safe_bet", 200, 95.0, 20.0, 2.0, 125.0, 500.0, ("JUP", "RAY"), loss_streak=2)
REFERENCE = (PROFESSIONAL, GAMBLER, SAFE_BET)


def returns_for(style: Style, rng: random.Random) -> list[float]:
    """Per-trade returns whose sum is the ROI and whose deepest dip is the drawdown."""
    wins = round(style.trades * style.win_rate_pct / 100.0)
    losses = style.trades - wins
    if losses == 0:
        return [style.roi_pct / 100.0 / style.trades] * style.trades
    drawdown = style.max_drawdown_pct / 100.0
    streak = max(1, min(style.loss_streak, losses))
    loss = drawdown / streak
    win = (style.roi_pct / 100.0 + losses * loss) / max(wins, 1)
    out = [-loss] * streak
    equity, peak = 1.0 - drawdown, 1.0
    wins_left, losses_left = wins, losses - streak
    while wins_left + losses_left:
        slots = wins_left + losses_left
        shallow = (peak - (equity - loss)) / peak <= 0.9 * drawdown
        lose = losses_left > 0 and (
            wins_left == 0 or (shallow and rng.random() < 2.0 * losses_left / slots))
        step = -loss if lose else win
        out.append(step)
        equity += step
        peak = max(peak, equity)
        if lose:
            losses_left -= 1
        else:
            wins_left -= 1
    return out


def plan(style: Style, seed: int) -> list[RoundTrip]:
    """The style's round trips; the shaped ones fit the last `SHAPED_DAYS` of its history.

    The scorer measures a rolling window (90 days by default), so the returns that carry the
    style's shape are placed inside it. A history longer than that opens with one break-even round
    trip at its very start: the history is long enough for eligibility, and the windowed metrics
    are untouched by it.
    """
    rng = random.Random(f"{seed}:{style.name}")
    returns = returns_for(style, rng)
    span = int(style.span_days * DAY_S)
    shaped = min(span, int(SHAPED_DAYS * DAY_S))
    start = span - shaped
    trips = []
    if start > 0:
        trips.append(RoundTrip(0, min(start // 2, DAY_S), rng.choice(style.tokens), style.stake_usdc, 0.0))
    slot = shaped // len(returns)
    for i, target in enumerate(returns):
        opened = start + i * slot + rng.randrange(0, max(1, slot // 4))
        closed = opened + max(60, int(slot * rng.uniform(0.3, 0.7)))
        trips.append(RoundTrip(opened, closed, rng.choice(style.tokens), style.stake_usdc, target))
    return trips


def styles(count: int, seed: int) -> list[Style]:
    """The three reference traders and `count - 3` others of distinct, seeded styles.

    Among the others are wallets the scorer must show but never follow: too few trades, too short
    a history, and one with a single wild day.
    """
    rng = random.Random(seed)
    # kind: (trades, win rate %, ROI %, max drawdown %, span days, stake USDC, tokens, loss streak)
    kinds: list[tuple[str, tuple[int, int], tuple[float, float], tuple[float, float], tuple[float, float],
                      tuple[float, float], tuple[float, float], tuple[str, ...], int]] = [
        ("scalper", (150, 260), (55, 70), (10, 60), (3, 12), (121, 140), (50, 150), ("JUP", "RAY"), 3),
        ("swing", (50, 90), (55, 75), (20, 150), (8, 25), (121, 150), (100, 400), ("JUP", "WIF"), 3),
        ("degen", (30, 80), (35, 55), (-40, 400), (30, 85), (121, 140), (20, 100), ("BONK", "WIF"), 4),
        ("loser", (60, 120), (25, 45), (-60, -5), (20, 60), (121, 140), (50, 200), ("RAY", "BONK"), 3),
        ("newcomer", (55, 100), (55, 80), (10, 80), (5, 20), (20, 60), (50, 200), ("JUP", "BONK"), 3),
        ("sparse", (5, 30), (50, 80), (5, 60), (3, 15), (121, 150), (100, 300), ("WIF", "RAY"), 2),
    ]
    out = list(REFERENCE)
    for i in range(max(0, count - len(REFERENCE))):
        kind, trades, win, roi, dd, span, stake, tokens, streak = kinds[i % len(kinds)]
        out.append(Style(
            f"{kind}-{i // len(kinds) + 1}", rng.randint(*trades), rng.uniform(*win), rng.uniform(*roi),
            rng.uniform(*dd), rng.uniform(*span), rng.uniform(*stake), tokens, streak,
        ))
    return out
