"""Constant-product arithmetic the local market needs beyond ``contracts.amm_client.quote``.

Owns: the searches that turn "where should the pool be" into "how much should the market maker
swap" -- the amount that makes a trader's sell return a target, and the amount that moves a
pool's price to a target. Every answer is checked against the program's exact integer formula
(``quote``), so fees and rounding are the program's, not an approximation of them.

May import: the standard library, contracts.amm_client.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from contracts.amm_client import quote

__all__ = ["after_swap", "mm_amount_for_price", "mm_amount_for_sell_target"]


def after_swap(amount_in: int, reserve_in: int, reserve_out: int, fee_bps: int) -> tuple[int, int]:
    """The (reserve_in, reserve_out) after a swap of ``amount_in``: the whole input stays in the
    pool (the fee too), the output leaves it."""
    return reserve_in + amount_in, reserve_out - quote(amount_in, reserve_in, reserve_out, fee_bps)


def _smallest(predicate: Callable[[int], bool], high: int) -> int:
    """The smallest x in [0, high] with ``predicate(x)`` (monotone); ``high`` if none."""
    low = 0
    if predicate(0):
        return 0
    while low < high:
        mid = (low + high) // 2
        if predicate(mid):
            high = mid
        else:
            low = mid + 1
    return high


def mm_amount_for_sell_target(
    qty: int,
    target_out: int,
    reserve_token: int,
    reserve_usdc: int,
    fee_bps: int,
    max_usdc: int,
    max_token: int,
) -> tuple[str, int]:
    """The market maker's swap before a trader sells ``qty`` tokens so that the sell returns
    ``target_out`` USDC (as near as integers allow): ``("buy", usdc_in)`` pushes the price up,
    ``("sell", token_in)`` pushes it down."""

    def sell_out(rt: int, ru: int) -> int:
        return quote(qty, rt, ru, fee_bps)

    if sell_out(reserve_token, reserve_usdc) < target_out:

        def high_enough(usdc_in: int) -> bool:
            ru, rt = after_swap(usdc_in, reserve_usdc, reserve_token, fee_bps)
            return sell_out(rt, ru) >= target_out

        return "buy", _smallest(high_enough, max_usdc)

    def low_enough(token_in: int) -> bool:
        rt, ru = after_swap(token_in, reserve_token, reserve_usdc, fee_bps)
        return sell_out(rt, ru) <= target_out

    return "sell", _smallest(low_enough, max_token)


def mm_amount_for_price(target_price: float, reserve_token: int, reserve_usdc: int) -> tuple[str, int]:
    """The swap that moves the pool's price (USDC base units per token base unit) to about
    ``target_price``, along the constant product (the fee makes it land a hair short)."""
    k = reserve_token * reserve_usdc
    wanted_token = math.isqrt(int(k / target_price))
    if wanted_token < reserve_token:
        # fewer tokens in the pool: buy them with USDC
        wanted_usdc = k // max(wanted_token, 1)
        return "buy", max(0, wanted_usdc - reserve_usdc)
    return "sell", wanted_token - reserve_token
