"""The rebalance plan: which trades bring a user's vault to the followed trader's weights, within
the user's limits. Pure: no I/O, no clock, no randomness -- the same input gives the same plan.

Owns: `plan_rebalance(PlanInput) -> Plan` and the order in which the limits of DESIGN section 8
apply (issue 6). Each limit that changes or stops something leaves a `Rejection` in the plan, so
an operator reads from ``execution_jobs.plan`` why a trade was or was not made:

1. ``kill_switch``: the global or the user's kill switch is on -> no legs, this one rejection;
2. ``breaker``: a circuit breaker is open -> no legs, this one rejection;
   (``no_target``: a target without any positive weight -> no legs: an empty or unreadable
   trader portfolio is never taken as "sell everything"; a trader all in USDC is {USDC: 1});
3. ``stale_price``: a mint whose price is stale or unknown (in ``stale_mints``, or missing from
   ``prices``) is held as it is -- neither sold nor bought; its value is left out of the portfolio
   total, and its target share stays in USDC;
4. ``min_trade_value``: a leg worth less than ``min_trade_usd`` is dropped;
5. ``max_trade_amount``: a leg worth more than ``max_trade_usd`` is clipped to it (the next
   rebalance carries on from there);
6. slippage tolerance is the router's (``minimum_out``); the plan only carries it (`as_json`);
7. ``max_daily_loss``: today's realised loss at or past the limit -> no buys, sells still allowed;
8. ``max_position``: each non-USDC target weight is capped at ``max_position_pct``; the excess
   stays in USDC;
9. ``vault_balance``: a sell never exceeds what the vault holds; buys are funded by the vault's
   USDC plus what the planned sells return (at the price) and are scaled down together if short.

The checks are listed in that order in ``Plan.rejections`` whatever order the arithmetic meets
them in (the target's cap is computed before any leg, for instance). A mint whose current weight
is within ``rebalance_band_pct`` points of its target gets no leg: no churn on noise. Sells
(token -> USDC) come first in ``Plan.legs``, then buys (USDC -> token); ``amount_in`` is in base
units of the input mint. Selling a mint down to a zero target sells the whole holding (no dust).

The target weights are normalised over their positive entries; USDC's target is what the other
mints leave. Cost: a few dict passes over the mints -- far below a millisecond for a handful.

Failure it contains: none at run time (it cannot fail on valid input); invalid `Limits` are
refused when constructed (`ValueError`).

May import: the standard library, attrs, `actors.portfolio` (`Holding`). Never `engine`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

import attrs

from actors.portfolio import Holding

__all__ = ["CHECKS", "Limits", "Plan", "PlanInput", "PlannedLeg", "Rejection", "plan_rebalance"]

CHECKS: Final = (
    "kill_switch", "breaker", "no_target", "stale_price", "min_trade_value", "max_trade_amount",
    "max_daily_loss", "max_position", "vault_balance",
)
_BLOCKING: Final = frozenset({"kill_switch", "breaker"})
MAX_SLIPPAGE_PCT: Final = 5.0
DEFAULT_USDC_DECIMALS: Final = 6


def _non_negative(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value}")


def _positive(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be a finite number > 0, got {value}")


def _slippage(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (math.isfinite(value) and 0 <= value <= MAX_SLIPPAGE_PCT):
        raise ValueError(f"{attribute.name} must be in [0, {MAX_SLIPPAGE_PCT}], got {value}")


def _percent(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (math.isfinite(value) and 0 < value <= 100):
        raise ValueError(f"{attribute.name} must be in (0, 100], got {value}")


def _optional_non_negative(
    _inst: object, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{attribute.name} must be None or a finite number >= 0, got {value}")


@attrs.frozen
class Limits:
    """The user's limits in USD and percent (``slippage_pct`` already capped at 5)."""

    min_trade_usd: float = attrs.field(validator=_non_negative)
    max_trade_usd: float = attrs.field(validator=_positive)
    slippage_pct: float = attrs.field(validator=_slippage)
    max_position_pct: float = attrs.field(validator=_percent)
    max_daily_loss_usd: float | None = attrs.field(validator=_optional_non_negative)
    rebalance_band_pct: float = attrs.field(default=1.0, validator=_non_negative)

    @property
    def slippage_bps(self) -> int:
        return round(self.slippage_pct * 100)


@attrs.frozen
class PlanInput:
    usdc_mint: str
    target_weights: Mapping[str, float] = attrs.field(hash=False)  # the followed trader's weights
    vault: Mapping[str, Holding] = attrs.field(hash=False)  # the user's vault now
    prices: Mapping[str, float] = attrs.field(hash=False)  # fresh prices only (USD); USDC 1.0 if absent
    stale_mints: frozenset[str]  # stale or unknown price: never traded
    limits: Limits
    daily_loss_usd: float = 0.0  # realised today so far, positive = loss
    global_kill: bool = False
    user_kill: bool = False
    open_breakers: tuple[str, ...] = ()
    symbols: Mapping[str, str] = attrs.field(factory=dict, hash=False)  # mint -> symbol, for reasons


@attrs.frozen
class PlannedLeg:
    input_mint: str
    output_mint: str
    amount_in: int  # base units of input_mint
    usd_value: float
    reason: str  # e.g. "reduce JUP 40.0%->25.0%"

    def is_sell(self, usdc_mint: str) -> bool:
        return self.output_mint == usdc_mint


@attrs.frozen
class Rejection:
    check: str  # one of CHECKS
    detail: str


@attrs.frozen
class Plan:
    legs: tuple[PlannedLeg, ...]
    rejections: tuple[Rejection, ...]
    target: Mapping[str, float] = attrs.field(hash=False)  # the capped target weights
    current: Mapping[str, float] = attrs.field(hash=False)  # the vault's weights (priced mints)
    total_usd: float  # the vault's priced value
    limits: Limits | None = None

    @property
    def blocked(self) -> bool:
        """A kill switch or an open breaker stopped everything."""
        return any(r.check in _BLOCKING for r in self.rejections)

    def as_json(self) -> dict[str, object]:
        """What goes into ``execution_jobs.plan``."""
        return {
            "total_usd": self.total_usd,
            "target": dict(self.target),
            "current": dict(self.current),
            "legs": [attrs.asdict(leg) for leg in self.legs],
            "rejections": [attrs.asdict(r) for r in self.rejections],
            "blocked": self.blocked,
            "slippage_pct": None if self.limits is None else self.limits.slippage_pct,
            "limits": None if self.limits is None else attrs.asdict(self.limits),
        }


@attrs.frozen
class _Want:
    mint: str
    usd: float
    current: float
    target: float


def _fresh(price: float | None) -> bool:
    return price is not None and math.isfinite(price) and price > 0


def plan_rebalance(inp: PlanInput) -> Plan:
    """The legs that move the vault towards the (capped) target, and why others were not made."""
    usdc, limits = inp.usdc_mint, inp.limits
    rejections: list[Rejection] = []
    label = _Label(inp.symbols)

    usdc_price = inp.prices.get(usdc, 1.0)
    usdc_price = usdc_price if _fresh(usdc_price) else 1.0
    usdc_holding = inp.vault.get(usdc)
    usdc_decimals = usdc_holding.decimals if usdc_holding is not None else DEFAULT_USDC_DECIMALS
    usdc_held = usdc_holding.amount if usdc_holding is not None else 0

    # valuation: priced holdings only; a stale one is held as it is
    stale: set[str] = set()
    values: dict[str, float] = {usdc: usdc_held / 10**usdc_decimals * usdc_price}
    for mint, holding in inp.vault.items():
        if mint == usdc or holding.amount <= 0:
            continue
        price = inp.prices.get(mint)
        if mint in inp.stale_mints or price is None or not _fresh(price):
            stale.add(mint)
            continue
        values[mint] = holding.ui * price
    total = sum(values.values())
    current = {m: v / total for m, v in values.items() if v > 0} if total > 0 else {}

    # target: normalised, stale mints' share stays in USDC, capped at max_position_pct
    raw = {m: w for m, w in inp.target_weights.items() if math.isfinite(w) and w > 0}
    weight_sum = sum(raw.values())
    cap = limits.max_position_pct / 100
    target: dict[str, float] = {}
    for mint in sorted(raw):
        if mint == usdc:
            continue
        if mint in inp.stale_mints or not _fresh(inp.prices.get(mint)):
            stale.add(mint)
            continue
        share = raw[mint] / weight_sum
        if share > cap:
            rejections.append(
                Rejection("max_position", f"{label(mint)} target {share:.1%} capped at {cap:.1%}"))
            share = cap
        target[mint] = share
    target[usdc] = max(0.0, 1.0 - sum(target.values()))

    def finish(legs: tuple[PlannedLeg, ...], found: list[Rejection]) -> Plan:
        ordered = sorted(found, key=lambda r: CHECKS.index(r.check))
        return Plan(legs, tuple(ordered), target, current, total, limits)

    kills = [name for name, on in (("global", inp.global_kill), ("user", inp.user_kill)) if on]
    if kills:
        return finish((), [Rejection("kill_switch", f"{' and '.join(kills)} kill switch on: no trading")])
    if inp.open_breakers:
        return finish((), [Rejection("breaker", f"open: {', '.join(inp.open_breakers)}: no trading")])
    if weight_sum <= 0:  # nothing known to mirror: never read as "sell everything"
        return finish((), [Rejection("no_target", "the target has no positive weight: nothing to mirror")])
    for mint in sorted(stale):
        rejections.append(Rejection("stale_price", f"{label(mint)}: price stale or unknown; held as is"))
    if total <= 0:
        return finish((), rejections)

    band = limits.rebalance_band_pct / 100
    sells: list[_Want] = []
    buys: list[_Want] = []
    for mint in sorted((set(target) | set(values)) - {usdc}):
        now, goal = values.get(mint, 0.0) / total, target.get(mint, 0.0)
        if abs(goal - now) < band or goal == now:
            continue
        want = _Want(mint, abs(goal - now) * total, now, goal)
        (sells if goal < now else buys).append(want)

    legs = [leg for want in sells
            if (leg := _sell(want, inp, usdc, usdc_price, usdc_decimals, label, rejections)) is not None]

    if limits.max_daily_loss_usd is not None and inp.daily_loss_usd >= limits.max_daily_loss_usd:
        rejections.append(Rejection(
            "max_daily_loss",
            f"realised loss today {inp.daily_loss_usd:.2f} USD >= limit {limits.max_daily_loss_usd:.2f}"
            f": no buys ({len(buys)} skipped)"))
        buys = []

    # proceeds at the price, in USDC base units (floored: never counts on more than it gets)
    proceeds = sum(_base_units(leg.usd_value / usdc_price, usdc_decimals) for leg in legs)
    legs += _buys(buys, usdc_held + proceeds, usdc_held, inp, usdc, usdc_price, usdc_decimals, label,
                  rejections)
    return finish(tuple(legs), rejections)


@attrs.frozen
class _Label:
    """How a mint is named in reasons: its symbol, or the start of its address."""

    symbols: Mapping[str, str] = attrs.field(hash=False)

    def __call__(self, mint: str) -> str:
        return self.symbols.get(mint, mint[:8])


def _base_units(ui: float, decimals: int) -> int:
    """``ui`` in base units, rounded down -- after float noise (< 0.001 unit) is rounded away, so
    5 / 0.00002 is 250,000 and not 249,999.99999."""
    return math.floor(round(ui * 10.0**decimals, 3))


def _clip(
    want: _Want, usd: float, limits: Limits, label: _Label, rejections: list[Rejection]
) -> float | None:
    """``usd`` clipped to max_trade_usd, or None (dropped) under min_trade_usd; rejections noted."""
    if usd > limits.max_trade_usd:
        rejections.append(Rejection(
            "max_trade_amount", f"{label(want.mint)}: {usd:.2f} USD clipped to {limits.max_trade_usd:.2f}"))
        usd = limits.max_trade_usd
    if usd < limits.min_trade_usd:
        rejections.append(Rejection(
            "min_trade_value", f"{label(want.mint)}: {usd:.2f} USD < minimum {limits.min_trade_usd:.2f}"))
        return None
    return usd


def _sell(
    want: _Want, inp: PlanInput, usdc: str, usdc_price: float, usdc_decimals: int, label: _Label,
    rejections: list[Rejection],
) -> PlannedLeg | None:
    holding, price = inp.vault[want.mint], inp.prices[want.mint]
    usd = _clip(want, want.usd, inp.limits, label, rejections)
    if usd is None:
        return None
    if want.target == 0 and usd == want.usd:
        amount = holding.amount  # sell out: no dust left behind
    else:
        amount = _base_units(usd / price, holding.decimals)
        if amount > holding.amount:
            rejections.append(Rejection(
                "vault_balance",
                f"{label(want.mint)}: sell of {amount} clipped to the {holding.amount} held"))
            amount = holding.amount
    if amount <= 0:
        rejections.append(Rejection("min_trade_value", f"{label(want.mint)}: rounds to 0 base units"))
        return None
    verb = "sell out" if want.target == 0 else "reduce"
    return PlannedLeg(want.mint, usdc, amount, amount / 10**holding.decimals * price,
                      f"{verb} {label(want.mint)} {want.current:.1%}->{want.target:.1%}")


def _buys(
    wants: list[_Want], available: int, usdc_held: int, inp: PlanInput, usdc: str, usdc_price: float,
    usdc_decimals: int, label: _Label, rejections: list[Rejection],
) -> list[PlannedLeg]:
    """Buys funded by ``available`` USDC base units, scaled down together if short. Scaling may
    push a buy under the minimum: it is dropped and the rest rescaled, until stable."""
    unit = 10**usdc_decimals
    need: dict[str, int] = {}
    for want in wants:
        usd = _clip(want, want.usd, inp.limits, label, rejections)
        if usd is not None:
            need[want.mint] = _base_units(usd / usdc_price, usdc_decimals)
    by_mint = {w.mint: w for w in wants}
    amounts = dict(need)
    scaled = False
    while amounts:
        wanted = sum(need[m] for m in amounts)
        if wanted <= available:
            amounts = {m: need[m] for m in amounts}
            break
        scaled = True
        amounts = {m: need[m] * available // wanted for m in amounts}  # integer: sum <= available
        small = [m for m, a in amounts.items() if a / unit * usdc_price < inp.limits.min_trade_usd or a <= 0]
        if not small:
            break
        for mint in small:
            rejections.append(Rejection(
                "min_trade_value",
                f"{label(mint)}: buy scaled to {amounts[mint] / unit * usdc_price:.2f} USD "
                f"< minimum {inp.limits.min_trade_usd:.2f}"))
            del amounts[mint]
    if scaled:
        rejections.append(Rejection(
            "vault_balance",
            f"buys need {sum(need.values()) / unit:.2f} USDC; the vault has {usdc_held / unit:.2f} "
            f"+ {(available - usdc_held) / unit:.2f} from sells: scaled down"))
    return [
        PlannedLeg(usdc, mint, amount, amount / unit * usdc_price,
                   f"increase {label(mint)} {by_mint[mint].current:.1%}->{by_mint[mint].target:.1%}")
        for mint, amount in sorted(amounts.items()) if amount > 0
    ]
