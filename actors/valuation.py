"""USD valuation of swaps: a stablecoin leg values a swap directly, otherwise stored price history.

What it owns: the valuation rule and its SQL. A swap with a stablecoin leg is worth that leg (a
stablecoin is taken at $1); any other swap is worth its sold leg at the latest `token_prices`
price of the sold mint at or before the swap's time -- or, failing that, its bought leg priced the
same way -- provided the price is at most `max_price_age_s` older than the swap. A swap that cannot
be valued keeps `usd_value` NULL: it is stored, excluded from the metrics, counted, and tried
again on every run (the price feed may have filled the gap since). The fee is valued with the
price of wrapped SOL; without one it counts as $0.

Which failure it contains: none of its own -- it is arithmetic and two statements; database
errors propagate typed (`sql.errors`) to the scorer, which fails the run.

May import: the standard library, `actors.swap_extraction`, `actors.database`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from decimal import Decimal
from typing import Final

from actors.database import Database
from actors.swap_extraction import Swap

WRAPPED_SOL: Final = "So11111111111111111111111111111111111111112"
LAMPORTS_PER_SOL: Final = 1_000_000_000
DEFAULT_MAX_PRICE_AGE_S: Final = 86_400.0


def stable_usd(swap: Swap, stablecoins: Collection[str]) -> Decimal | None:
    """The USD value of a swap with a stablecoin leg (the sold one if both are), else None."""
    if swap.sold_mint in stablecoins:
        return Decimal(swap.sold_amount).scaleb(-swap.sold_decimals)
    if swap.bought_mint in stablecoins:
        return Decimal(swap.bought_amount).scaleb(-swap.bought_decimals)
    return None


_PRICE_AT = """(SELECT p.usd_price FROM token_prices p
                 WHERE p.mint = {mint} AND p.at <= s2.block_time
                   AND p.at >= s2.block_time - make_interval(secs => $2)
                 ORDER BY p.at DESC LIMIT 1)"""

REVALUE_SQL: Final = f"""
UPDATE swaps AS s SET usd_value = round(v.usd, 6)
FROM (
    SELECT s2.signature, COALESCE(
        s2.sold_amount / power(10::numeric, s2.sold_decimals) * {_PRICE_AT.format(mint="s2.sold_mint")},
        s2.bought_amount / power(10::numeric, s2.bought_decimals) * {_PRICE_AT.format(mint="s2.bought_mint")}
    ) AS usd
    FROM swaps s2
    WHERE s2.usd_value IS NULL AND s2.wallet = ANY($1::varchar[])
) AS v
WHERE s.signature = v.signature AND v.usd IS NOT NULL
"""

FEE_SQL: Final = f"""
UPDATE swaps AS s SET fee_usd = round(v.usd, 6)
FROM (
    SELECT s2.signature,
           s2.fee_lamports / {LAMPORTS_PER_SOL}::numeric * {_PRICE_AT.format(mint="$3")} AS usd
    FROM swaps s2
    WHERE s2.fee_usd IS NULL AND s2.wallet = ANY($1::varchar[])
) AS v
WHERE s.signature = v.signature AND v.usd IS NOT NULL
"""

UNVALUED_SQL: Final = "SELECT count(*) FROM swaps WHERE usd_value IS NULL AND wallet = ANY($1::varchar[])"


async def revalue(
    db: Database, wallets: Sequence[str], *, max_price_age_s: float = DEFAULT_MAX_PRICE_AGE_S,
    timeout: float,
) -> int:
    """Value what stored price history now allows; return how many swaps remain unvalued."""
    wallets = list(wallets)
    await db.execute(REVALUE_SQL, wallets, max_price_age_s, timeout=timeout)
    await db.execute(FEE_SQL, wallets, max_price_age_s, WRAPPED_SOL, timeout=timeout)
    unvalued: int = await db.fetchval(UNVALUED_SQL, wallets, timeout=timeout)
    return unvalued
