"""The rebalance plan as a specification: one table case per limit, the order the limits apply in,
and invariants checked over thousands of seeded random portfolios (never sells more than held,
never a leg over max_trade_usd, buys always funded, targets capped, stale mints untouched).

Planning is pure, so these tests need no chain and no database. Mints are plain symbols here
(the planner never parses them). No timing is asserted: the "well under 1 ms" budget is a design
note, not a test (a loaded CI machine would make it flaky).
"""

from __future__ import annotations

import json
import math
import random
import struct
from typing import Any

import pytest
from solders.pubkey import Pubkey

from actors.planning import CHECKS, Limits, Plan, PlanInput, Rejection, plan_rebalance
from actors.portfolio import (
    TOKEN_ACCOUNT_SIZE,
    Holding,
    PortfolioError,
    decode_token_account,
    unpriced,
    weights,
)

USDC = "USDC"
DECIMALS = {"USDC": 6, "JUP": 6, "WIF": 6, "RAY": 6, "BONK": 5}
PRICES = {"JUP": 0.5, "WIF": 2.0, "RAY": 1.5, "BONK": 0.00002}
LIMITS = Limits(min_trade_usd=1.0, max_trade_usd=1_000.0, slippage_pct=1.0, max_position_pct=100.0,
                max_daily_loss_usd=None)


def holdings(**ui: float) -> dict[str, Holding]:
    """A vault from UI amounts (JUP=80 is 80 JUP)."""
    return {m: Holding(m, round(v * 10 ** DECIMALS[m]), DECIMALS[m]) for m, v in ui.items()}


def usd(**value: float) -> dict[str, Holding]:
    """A vault from USD values at PRICES (USDC at 1)."""
    return holdings(**{m: v / PRICES.get(m, 1.0) for m, v in value.items()})


def plan(vault: dict[str, Holding], target: dict[str, float], **changes: Any) -> Plan:
    inp = PlanInput(usdc_mint=USDC, target_weights=target, vault=vault,
                    prices=changes.pop("prices", PRICES), stale_mints=changes.pop("stale", frozenset()),
                    limits=changes.pop("limits", LIMITS), **changes)
    return plan_rebalance(inp)


def limits(**changes: Any) -> Limits:
    fields = {"min_trade_usd": 1.0, "max_trade_usd": 1_000.0, "slippage_pct": 1.0,
              "max_position_pct": 100.0, "max_daily_loss_usd": None, **changes}
    return Limits(**fields)


def legs(p: Plan) -> list[tuple[str, str, int]]:
    return [(leg.input_mint, leg.output_mint, leg.amount_in) for leg in p.legs]


def checks(p: Plan) -> list[str]:
    return [r.check for r in p.rejections]


# ------------------------------------------------------------------------------ mirroring


def test_an_all_usdc_vault_buys_the_trader_weights_in_usdc_base_units() -> None:
    p = plan(usd(USDC=100), {"JUP": 0.4, "WIF": 0.3, USDC: 0.3})

    assert legs(p) == [(USDC, "JUP", 40_000_000), (USDC, "WIF", 30_000_000)]
    assert [leg.usd_value for leg in p.legs] == [40.0, 30.0]
    assert p.target == pytest.approx({"JUP": 0.4, "WIF": 0.3, USDC: 0.3})
    assert p.current == {USDC: 1.0} and p.total_usd == 100.0
    assert p.rejections == () and not p.blocked
    assert p.legs[0].reason == "increase JUP 0.0%->40.0%"


def test_sells_come_first_and_a_zero_target_sells_the_whole_holding() -> None:
    vault = usd(JUP=80, USDC=20)
    p = plan(vault, {"WIF": 0.5, USDC: 0.5})

    assert legs(p) == [("JUP", USDC, vault["JUP"].amount), (USDC, "WIF", 50_000_000)]
    assert p.legs[0].reason == "sell out JUP 80.0%->0.0%"


def test_an_over_weight_mint_is_reduced_to_its_target_in_its_own_base_units() -> None:
    p = plan(usd(JUP=40, USDC=60), {"JUP": 0.25, USDC: 0.75})

    assert legs(p) == [("JUP", USDC, 30_000_000)]  # 15 USD of JUP at 0.5
    assert p.legs[0].usd_value == pytest.approx(15.0)
    assert p.legs[0].reason == "reduce JUP 40.0%->25.0%"


def test_a_five_decimal_mint_is_sold_in_its_own_base_units() -> None:
    p = plan(usd(BONK=10, USDC=90), {"BONK": 0.05, USDC: 0.95})

    assert legs(p) == [("BONK", USDC, 250_000 * 10**5)]  # 5 USD at 0.00002 = 250,000 BONK


def test_target_weights_are_normalised_and_usdc_takes_the_rest() -> None:
    p = plan(usd(USDC=100), {"JUP": 2.0, "WIF": 2.0, "RAY": 0.0, "BONK": -1.0})

    assert p.target == pytest.approx({"JUP": 0.5, "WIF": 0.5, USDC: 0.0})
    assert legs(p) == [(USDC, "JUP", 50_000_000), (USDC, "WIF", 50_000_000)]


def test_a_drift_inside_the_band_makes_no_leg_and_no_rejection() -> None:
    p = plan(usd(JUP=40.5, USDC=59.5), {"JUP": 0.4, USDC: 0.6})

    assert p.legs == () and p.rejections == ()


def test_a_wider_band_tolerates_a_bigger_drift() -> None:
    vault, target = usd(JUP=43, USDC=57), {"JUP": 0.4, USDC: 0.6}

    assert legs(plan(vault, target)) == [("JUP", USDC, 6_000_000)]
    assert plan(vault, target, limits=limits(rebalance_band_pct=5.0)).legs == ()


def test_symbols_name_mints_in_reasons_else_the_start_of_the_address() -> None:
    mint = "JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN"
    prices = {mint: 1.0}
    vault = {USDC: Holding(USDC, 10_000_000, 6)}

    target = {mint: 0.5, USDC: 0.5}
    assert plan(vault, target, prices=prices).legs[0].reason == "increase JUPyiwrY 0.0%->50.0%"
    named = plan(vault, target, prices=prices, symbols={mint: "JUP"})
    assert named.legs[0].reason == "increase JUP 0.0%->50.0%"


@pytest.mark.parametrize("target", [{}, {"JUP": 0.0}, {"JUP": -1.0, "WIF": math.nan}])
def test_a_target_without_weight_plans_nothing_rather_than_selling_everything(
    target: dict[str, float]
) -> None:
    p = plan(usd(JUP=50, USDC=50), target)

    assert p.legs == () and checks(p) == ["no_target"] and not p.blocked


def test_a_trader_all_in_usdc_is_mirrored_by_selling_out() -> None:
    vault = usd(JUP=50, USDC=50)

    assert legs(plan(vault, {USDC: 1.0})) == [("JUP", USDC, vault["JUP"].amount)]


def test_an_empty_vault_plans_nothing() -> None:
    p = plan({}, {"JUP": 1.0})

    assert p.legs == () and p.total_usd == 0.0 and p.current == {}


def test_the_plan_is_a_function_of_its_input() -> None:
    vault, target = usd(JUP=70, WIF=5, USDC=25), {"WIF": 0.6, "RAY": 0.2, USDC: 0.2}

    assert plan(vault, target) == plan(vault, target)
    assert vault == usd(JUP=70, WIF=5, USDC=25)  # the input is not touched


# ------------------------------------------------------------------------------ each limit


@pytest.mark.parametrize(("global_kill", "user_kill", "detail"), [
    (True, False, "global kill switch on"),
    (False, True, "user kill switch on"),
    (True, True, "global and user kill switch on"),
])
def test_a_kill_switch_stops_everything_with_one_rejection(
    global_kill: bool, user_kill: bool, detail: str
) -> None:
    p = plan(usd(JUP=90, USDC=10), {"WIF": 0.9, USDC: 0.1}, global_kill=global_kill, user_kill=user_kill,
             open_breakers=("rpc",), stale=frozenset({"JUP"}), limits=limits(max_position_pct=20))

    assert p.legs == () and p.blocked
    assert checks(p) == ["kill_switch"] and p.rejections[0].detail.startswith(detail)


def test_an_open_breaker_stops_everything_and_names_the_breakers() -> None:
    p = plan(usd(USDC=100), {"JUP": 1.0}, open_breakers=("rpc", "price_feed"))

    assert p.legs == () and p.blocked
    assert p.rejections == (Rejection("breaker", "open: rpc, price_feed: no trading"),)


def test_without_a_kill_switch_or_breaker_the_plan_is_not_blocked() -> None:
    p = plan(usd(USDC=100), {"JUP": 1.0}, limits=limits(max_trade_usd=10))

    assert not p.blocked and p.rejections  # clipped, but not blocked


def test_a_stale_mint_is_neither_sold_nor_bought_and_its_share_stays_in_usdc() -> None:
    vault = usd(JUP=50, USDC=50)
    p = plan(vault, {"WIF": 0.5, "RAY": 0.5}, stale=frozenset({"JUP", "WIF"}))

    # JUP is held at an unknown price: out of the total; WIF's share is not bought
    assert legs(p) == [(USDC, "RAY", 25_000_000)]
    assert p.total_usd == 50.0 and "JUP" not in p.current
    assert p.target == pytest.approx({"RAY": 0.5, USDC: 0.5})
    assert p.rejections == (Rejection("stale_price", "JUP: price stale or unknown; held as is"),
                            Rejection("stale_price", "WIF: price stale or unknown; held as is"))


def test_a_mint_without_any_price_is_treated_as_stale() -> None:
    p = plan(usd(JUP=50, USDC=50), {"WIF": 1.0}, prices={"JUP": 0.5})

    assert legs(p) == [("JUP", USDC, usd(JUP=50)["JUP"].amount)]
    assert checks(p) == ["stale_price"] and "WIF" in p.rejections[0].detail


def test_a_leg_under_the_minimum_trade_value_is_dropped() -> None:
    p = plan(usd(JUP=12, USDC=18), {"JUP": 0.35, USDC: 0.65}, limits=limits(min_trade_usd=2.0))

    assert p.legs == ()  # 5 % of 30 USD = 1.50 USD
    assert p.rejections == (Rejection("min_trade_value", "JUP: 1.50 USD < minimum 2.00"),)


def test_a_leg_over_the_maximum_trade_amount_is_clipped_to_it() -> None:
    p = plan(usd(JUP=500, USDC=500), {"WIF": 0.5, USDC: 0.5}, limits=limits(max_trade_usd=100))

    # the sell-out is clipped too, so it sells 100 USD of JUP, not the whole holding
    assert legs(p) == [("JUP", USDC, 200_000_000), (USDC, "WIF", 100_000_000)]
    assert p.rejections == (Rejection("max_trade_amount", "JUP: 500.00 USD clipped to 100.00"),
                            Rejection("max_trade_amount", "WIF: 500.00 USD clipped to 100.00"))


def test_the_slippage_tolerance_is_carried_in_the_plan_json_not_applied() -> None:
    p = plan(usd(USDC=100), {"JUP": 0.5, USDC: 0.5}, limits=limits(slippage_pct=2.0))

    assert p.as_json()["slippage_pct"] == 2.0
    assert legs(p) == [(USDC, "JUP", 50_000_000)]


@pytest.mark.parametrize(("loss", "buys"), [(49.99, True), (50.0, False), (75.0, False)])
def test_at_the_daily_loss_limit_sells_go_on_and_buys_stop(loss: float, buys: bool) -> None:
    p = plan(usd(JUP=60, USDC=40), {"JUP": 0.2, "WIF": 0.4, USDC: 0.4},
             limits=limits(max_daily_loss_usd=50.0), daily_loss_usd=loss)

    assert legs(p)[0] == ("JUP", USDC, 80_000_000)
    assert [leg.output_mint for leg in p.legs] == ([USDC, "WIF"] if buys else [USDC])
    assert ("max_daily_loss" in checks(p)) is not buys


def test_no_daily_loss_limit_means_buys_whatever_the_loss() -> None:
    p = plan(usd(USDC=100), {"JUP": 0.5, USDC: 0.5}, daily_loss_usd=10_000.0)

    assert legs(p) == [(USDC, "JUP", 50_000_000)]


def test_a_target_weight_over_the_max_position_is_capped_and_the_rest_stays_in_usdc() -> None:
    p = plan(usd(USDC=100), {"JUP": 0.6, "WIF": 0.2, USDC: 0.2}, limits=limits(max_position_pct=25))

    assert p.target == pytest.approx({"JUP": 0.25, "WIF": 0.2, USDC: 0.55})
    assert legs(p) == [(USDC, "JUP", 25_000_000), (USDC, "WIF", 20_000_000)]
    assert p.rejections == (Rejection("max_position", "JUP target 60.0% capped at 25.0%"),)


def test_a_position_over_the_cap_is_sold_down_to_it() -> None:
    p = plan(usd(JUP=60, USDC=40), {"JUP": 0.6, USDC: 0.4}, limits=limits(max_position_pct=30))

    assert legs(p) == [("JUP", USDC, 60_000_000)]  # 30 USD of JUP
    assert p.legs[0].reason == "reduce JUP 60.0%->30.0%"


def test_buys_are_funded_by_the_vault_usdc_plus_the_sells_at_the_price() -> None:
    p = plan(usd(JUP=50, WIF=30, USDC=20), {"RAY": 1.0})

    assert [leg.input_mint for leg in p.legs] == ["JUP", "WIF", USDC]
    assert legs(p)[-1] == (USDC, "RAY", 100_000_000)  # 20 held + 50 + 30 from the sells
    assert p.rejections == ()


# A 128 USD vault: 4 USDC and 124 USD of JUP; JUP's drift (1/128) is inside the band, so nothing
# is sold, and the buys (3 + 2 USD) need more than the 4 USDC there is.
SHORT_VAULT = usd(USDC=4, JUP=124)
SHORT_TARGET = {"JUP": 123 / 128, "WIF": 3 / 128, "RAY": 2 / 128}


def test_buys_short_of_usdc_are_scaled_down_together_and_the_plan_says_so() -> None:
    p = plan(SHORT_VAULT, SHORT_TARGET)

    assert legs(p) == [(USDC, "RAY", 1_600_000), (USDC, "WIF", 2_400_000)]
    assert p.rejections == (Rejection(
        "vault_balance", "buys need 5.00 USDC; the vault has 4.00 + 0.00 from sells: scaled down"),)


def test_scaling_drops_a_buy_that_falls_under_the_minimum_and_rescales_the_rest() -> None:
    p = plan(SHORT_VAULT, SHORT_TARGET, limits=limits(min_trade_usd=1.7))

    assert legs(p) == [(USDC, "WIF", 3_000_000)]  # RAY scaled to 1.60 < 1.70: dropped; WIF fits whole
    assert checks(p) == ["min_trade_value", "vault_balance"]
    assert p.rejections[0].detail == "RAY: buy scaled to 1.60 USD < minimum 1.70"


def test_a_buy_the_vault_cannot_fund_down_to_the_minimum_is_dropped() -> None:
    p = plan(usd(JUP=99.5, USDC=0.5), {"JUP": 0.99, "WIF": 0.01}, limits=limits(min_trade_usd=0.6))

    assert p.legs == ()  # JUP drifts 0.5 %: inside the band; WIF wants 1 USD, 0.50 is there
    assert checks(p) == ["min_trade_value", "vault_balance"]


# ------------------------------------------------------------------------------ order


def test_the_rejections_are_listed_in_the_order_the_limits_apply() -> None:
    vault = usd(USDC=20, JUP=70, BONK=10, RAY=10)
    p = plan(vault, {"JUP": 0.6, "BONK": 0.085, "WIF": 0.2, USDC: 0.115}, stale=frozenset({"RAY"}),
             limits=limits(min_trade_usd=2, max_trade_usd=15, max_position_pct=50, max_daily_loss_usd=5),
             daily_loss_usd=5)

    assert checks(p) == ["stale_price", "min_trade_value", "max_trade_amount", "max_daily_loss",
                         "max_position"]
    assert legs(p) == [("JUP", USDC, 30_000_000)]  # 20 USD wanted, clipped to 15; no buy of WIF
    assert checks(p) == sorted(checks(p), key=CHECKS.index)


def test_a_kill_switch_comes_before_a_breaker() -> None:
    p = plan(usd(USDC=100), {"JUP": 1.0}, user_kill=True, open_breakers=("rpc",))

    assert checks(p) == ["kill_switch"]


# ------------------------------------------------------------------------------ records


def test_the_plan_json_is_json_and_carries_legs_rejections_weights_and_limits() -> None:
    p = plan(usd(JUP=60, USDC=40), {"JUP": 0.2, "WIF": 0.4, USDC: 0.4}, limits=limits(max_trade_usd=30))

    record = json.loads(json.dumps(p.as_json()))
    assert record["legs"][0] == {"input_mint": "JUP", "output_mint": USDC, "amount_in": 60_000_000,
                                 "usd_value": 30.0, "reason": "reduce JUP 60.0%->20.0%"}
    assert [r["check"] for r in record["rejections"]] == ["max_trade_amount", "max_trade_amount"]
    assert record["total_usd"] == 100.0 and record["blocked"] is False
    assert record["current"] == {USDC: 0.4, "JUP": 0.6}
    assert record["limits"]["max_trade_usd"] == 30 and record["slippage_pct"] == 1.0


@pytest.mark.parametrize("bad", [
    {"slippage_pct": 5.5}, {"slippage_pct": -1}, {"max_position_pct": 0}, {"max_position_pct": 101},
    {"max_trade_usd": 0}, {"min_trade_usd": -1}, {"max_daily_loss_usd": -5}, {"min_trade_usd": math.nan},
    {"rebalance_band_pct": -0.1},
])
def test_limits_out_of_range_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        limits(**bad)


def test_slippage_bps_of_the_limits() -> None:
    assert limits(slippage_pct=0.5).slippage_bps == 50 and limits(slippage_pct=5).slippage_bps == 500


def test_weights_are_value_shares_and_unpriced_mints_are_named_apart() -> None:
    held = {**usd(JUP=30, USDC=10), **holdings(WIF=5, RAY=0)}

    assert weights(held, {"JUP": 0.5, USDC: 1.0}) == pytest.approx({"JUP": 0.75, USDC: 0.25})
    assert unpriced(held, {"JUP": 0.5, USDC: 1.0}) == {"WIF"}  # RAY is held at zero
    assert weights(held, {"JUP": 0.5}, usdc_mint=USDC) == pytest.approx({"JUP": 0.75, USDC: 0.25})
    assert unpriced(held, {"JUP": 0.5}) == {"WIF", USDC}
    assert weights(holdings(RAY=0), {"RAY": 1.5}) == {}


def test_token_account_bytes_decode_to_mint_and_amount_and_anything_else_is_refused() -> None:
    mint, owner = bytes(range(32)), bytes(32)
    data = mint + owner + struct.pack("<Q", 123_456_789) + bytes(TOKEN_ACCOUNT_SIZE - 72)

    assert decode_token_account(data) == (str(Pubkey.from_bytes(mint)), 123_456_789)
    with pytest.raises(PortfolioError, match="not an SPL token account"):
        decode_token_account(data[:-1])


# ------------------------------------------------------------------------------ invariants


def random_input(rng: random.Random) -> PlanInput:
    mints = rng.sample(["JUP", "WIF", "RAY", "BONK"], rng.randint(1, 4))
    prices = {m: PRICES[m] * rng.uniform(0.2, 5) for m in mints if rng.random() > 0.1}
    vault = {m: Holding(m, rng.choice([0, rng.randint(0, 10 ** rng.randint(3, 12))]), DECIMALS[m])
             for m in mints}
    vault[USDC] = Holding(USDC, rng.choice([0, rng.randint(0, 10 ** rng.randint(5, 10))]), 6)
    target = {m: rng.choice([0.0, rng.random()]) for m in [*mints, USDC]}
    max_trade = rng.uniform(1, 2_000)
    return PlanInput(
        usdc_mint=USDC, target_weights=target, vault=vault, prices=prices,
        stale_mints=frozenset(m for m in mints if rng.random() < 0.15),
        limits=Limits(min_trade_usd=rng.uniform(0, 10), max_trade_usd=max_trade,
                      slippage_pct=rng.uniform(0, 5), max_position_pct=rng.uniform(5, 100),
                      max_daily_loss_usd=rng.choice([None, rng.uniform(0, 100)]),
                      rebalance_band_pct=rng.uniform(0, 3)),
        daily_loss_usd=rng.uniform(0, 120), global_kill=rng.random() < 0.05, user_kill=rng.random() < 0.05,
        open_breakers=("rpc",) if rng.random() < 0.05 else (),
    )


@pytest.mark.parametrize("seed", range(8))
def test_invariants_hold_on_random_portfolios(seed: int) -> None:
    rng = random.Random(seed)
    for case in range(500):
        inp = random_input(rng)
        p = plan_rebalance(inp)
        where = f"seed {seed} case {case}: {inp}"
        assert_invariants(inp, p, where)


def assert_invariants(inp: PlanInput, p: Plan, where: str) -> None:
    lim = inp.limits
    killed = inp.global_kill or inp.user_kill or bool(inp.open_breakers)
    assert p.blocked is killed, where
    if killed:
        assert p.legs == () and len(p.rejections) == 1, where
        return
    if not any(w > 0 for w in inp.target_weights.values()):
        assert p.legs == () and checks(p) == ["no_target"], where
    sells = [leg for leg in p.legs if leg.output_mint == USDC]
    buys = [leg for leg in p.legs if leg.input_mint == USDC]
    assert p.legs == (*sells, *buys), where  # sells first, every leg is to or from USDC
    assert len({leg.input_mint for leg in sells} | {leg.output_mint for leg in buys}) == len(p.legs), where
    for leg in sells:  # never more than held, never a stale or unpriced mint
        held = inp.vault[leg.input_mint]
        assert 0 < leg.amount_in <= held.amount, where
        assert leg.input_mint not in inp.stale_mints and leg.input_mint in inp.prices, where
        assert p.current.get(leg.input_mint, 0) > p.target.get(leg.input_mint, 0), where
    for leg in buys:
        assert leg.output_mint not in inp.stale_mints and leg.output_mint in inp.prices, where
        assert p.current.get(leg.output_mint, 0) < p.target[leg.output_mint], where
    for leg in p.legs:  # within the trade size limits (a base unit of rounding below the minimum)
        assert leg.usd_value <= lim.max_trade_usd * (1 + 1e-9), where
        unit = inp.prices.get(leg.input_mint, 1.0) / 10 ** inp.vault[leg.input_mint].decimals \
            if leg.input_mint in inp.vault else 1e-6
        assert leg.usd_value >= lim.min_trade_usd - unit - 1e-9, where
    # buys funded by the USDC held plus the sells' proceeds at the price
    usdc = inp.vault[USDC].amount
    proceeds = sum(math.floor(leg.usd_value * 10**6) for leg in sells)
    assert sum(leg.amount_in for leg in buys) <= usdc + proceeds, where
    if lim.max_daily_loss_usd is not None and inp.daily_loss_usd >= lim.max_daily_loss_usd:
        assert buys == [], where
    # the target: capped, no stale mint, sums to 1 with USDC taking the rest
    for mint, share in p.target.items():
        if mint != USDC:
            assert share <= lim.max_position_pct / 100 + 1e-12, where
            assert mint not in inp.stale_mints and mint in inp.prices, where
    assert sum(p.target.values()) == pytest.approx(1.0) or p.target[USDC] == 0.0, where
    assert set(checks(p)) <= set(CHECKS) and checks(p) == sorted(checks(p), key=CHECKS.index), where
