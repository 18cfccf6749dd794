"""The router: a quote and the swap leg (`Route`) for one planned trade of the vault.

Owns: the `Router` protocol the executor asks (input mint, output mint, base-unit amount, the
user's slippage in bps) and `LocalAmmRouter`, its implementation over the project's AMM (one
constant-product pool per token/USDC pair). A Jupiter router can implement the same protocol
later; the executor does not change.

`LocalAmmRouter.quote` reads the pool and its two token accounts in ONE ``getMultipleAccounts``
(one consistent slot), prices the swap with `contracts.amm_client.quote` -- the AMM's exact
integer formula -- and returns ``minimum_out = expected_out * (10_000 - slippage_bps) // 10_000``
for the vault's ``bot_trade``. The AMM leg inside the route carries minimum 0: the vault measures
its own output balance and fails with SlippageExceeded (6007), the one slippage error the trade
lifecycle has to understand (as in tests/trades).

With ``reserve_max_age_s > 0`` the router keeps each pool's read (keyed by the pool address) for
that long -- a slot's length is the natural choice: the reserves cannot be fresher than the slot
they were read at -- and concurrent quotes of a pool whose copy is stale share one read (single
flight), so a fan-out to thousands of executors reads each pool once per slot instead of once per
user. A quote is then at most that old; the vault's on-chain minimum-out check still bounds what
any trade receives. The default 0 reads on every quote (no cache).

Failure it contains: a pair without a pool (or an account that is not the pool it should be) is
`NoRoute`, naming the pair -- the executor records it and skips the leg. RPC errors propagate
typed (`actors.rpc_client.RpcError`); the read runs under the caller's ``timeout``.

May import: the standard library, attrs, solders, `contracts` (AMM client), `actors.rpc_client`,
`actors.trade_execution` (`Route`), `actors.portfolio` (token account decoding). Never `engine`.
"""

from __future__ import annotations

from typing import Final, Protocol

import attrs
import trio
from solders.pubkey import Pubkey

from actors.portfolio import PortfolioError, decode_token_account
from actors.rpc_client import SolanaRpc
from actors.trade_execution import Route
from contracts.amm_client import FEE_DENOMINATOR, AmmClient, Pool, decode_pool, quote

__all__ = ["SLOT_S", "LocalAmmRouter", "NoRoute", "Quote", "Router", "minimum_out"]

BPS: Final = 10_000
SLOT_S: Final = 0.4  # a Solana slot: the natural ``reserve_max_age_s``


class NoRoute(Exception):
    """No pool (no route) for the pair."""

    def __init__(self, input_mint: str, output_mint: str, detail: str = "no pool for the pair") -> None:
        super().__init__(f"no route {input_mint} -> {output_mint}: {detail}")
        self.input_mint = input_mint
        self.output_mint = output_mint


@attrs.frozen
class Quote:
    """What the route gives for ``amount_in`` now, and the least the vault must accept."""

    route: Route
    amount_in: int
    expected_out: int
    minimum_out: int
    price_impact_pct: float


class Router(Protocol):
    async def quote(
        self, input_mint: str, output_mint: str, amount_in: int, slippage_bps: int, *,
        authority: Pubkey, source: Pubkey, destination: Pubkey, timeout: float,
    ) -> Quote: ...


def minimum_out(expected_out: int, slippage_bps: int) -> int:
    if not 0 <= slippage_bps < BPS:
        raise ValueError(f"slippage_bps must be in [0, {BPS}), got {slippage_bps}")
    return expected_out * (BPS - slippage_bps) // BPS


@attrs.frozen
class _PoolRead:
    """One validated read of a pool: its state and both reserves (by mint), at ``read_at`` (trio time)."""

    state: Pool
    reserves: dict[str, int] = attrs.field(hash=False)
    read_at: float


class LocalAmmRouter:
    """Quotes and routes over the project's AMM program (see the module docstring)."""

    def __init__(self, rpc: SolanaRpc, amm: AmmClient, *, reserve_max_age_s: float = 0.0) -> None:
        if not reserve_max_age_s >= 0:
            raise ValueError(f"reserve_max_age_s must be >= 0, got {reserve_max_age_s}")
        self._rpc = rpc
        self._amm = amm
        self._max_age_s = reserve_max_age_s
        self._reads: dict[Pubkey, _PoolRead] = {}
        self._locks: dict[Pubkey, trio.Lock] = {}

    async def quote(
        self, input_mint: str, output_mint: str, amount_in: int, slippage_bps: int, *,
        authority: Pubkey, source: Pubkey, destination: Pubkey, timeout: float,
    ) -> Quote:
        """``authority`` is the vault PDA; ``source`` / ``destination`` its token accounts."""
        if amount_in <= 0:
            raise ValueError(f"amount_in must be > 0, got {amount_in}")
        if input_mint == output_mint:
            raise NoRoute(input_mint, output_mint, "same mint")
        mint_in, mint_out = Pubkey.from_string(input_mint), Pubkey.from_string(output_mint)
        read = await self._pool_read(mint_in, mint_out, input_mint, output_mint, timeout)
        reserve_in, reserve_out = read.reserves[input_mint], read.reserves[output_mint]
        expected = quote(amount_in, reserve_in, reserve_out, read.state.fee_bps)
        accounts = self._amm.swap_accounts(authority, mint_in, mint_out, source, destination)
        route = Route(self._amm.program_id, self._amm.swap_data(amount_in, 0), tuple(accounts))
        return Quote(route, amount_in, expected, minimum_out(expected, slippage_bps),
                     _impact_pct(amount_in, expected, reserve_in, reserve_out, read.state.fee_bps))

    async def _pool_read(
        self, mint_in: Pubkey, mint_out: Pubkey, input_mint: str, output_mint: str, timeout: float
    ) -> _PoolRead:
        pool = self._amm.pool(mint_in, mint_out)
        if self._max_age_s <= 0:
            return await self._read(pool, mint_in, mint_out, input_mint, output_mint, timeout)
        cached = self._reads.get(pool)
        if cached is not None and trio.current_time() - cached.read_at <= self._max_age_s:
            return cached
        # Single flight: waiters find the copy the first caller read. The holder's read runs under
        # its own deadline, so a waiter waits at most one read's timeout longer than its own.
        async with self._locks.setdefault(pool, trio.Lock()):
            cached = self._reads.get(pool)
            if cached is None or trio.current_time() - cached.read_at > self._max_age_s:
                cached = await self._read(pool, mint_in, mint_out, input_mint, output_mint, timeout)
                self._reads[pool] = cached
        return cached

    async def _read(
        self, pool: Pubkey, mint_in: Pubkey, mint_out: Pubkey, input_mint: str, output_mint: str,
        timeout: float,
    ) -> _PoolRead:
        reserve_keys = [self._amm.pool_token_account(mint_in, mint_out, m) for m in (mint_in, mint_out)]
        answer = await self._rpc.get_multiple_accounts([pool, *reserve_keys], timeout=timeout)
        read_at = trio.current_time()
        pool_account, in_account, out_account = answer.value
        if pool_account is None:
            raise NoRoute(input_mint, output_mint)
        if pool_account.owner != self._amm.program_id:
            raise NoRoute(input_mint, output_mint, f"pool {pool} is not owned by the AMM")
        state = decode_pool(bytes(pool_account.data))
        if {state.mint_a, state.mint_b} != {mint_in, mint_out}:
            raise NoRoute(input_mint, output_mint, f"pool {pool} trades another pair")
        if in_account is None or out_account is None:
            raise NoRoute(input_mint, output_mint, f"pool {pool} has no reserve account")
        try:
            reserve_in = _reserve(bytes(in_account.data), input_mint)
            reserve_out = _reserve(bytes(out_account.data), output_mint)
        except PortfolioError as exc:
            raise NoRoute(input_mint, output_mint, str(exc)) from exc
        return _PoolRead(state, {input_mint: reserve_in, output_mint: reserve_out}, read_at)


def _reserve(data: bytes, mint: str) -> int:
    found, amount = decode_token_account(data)
    if found != mint:
        raise PortfolioError(f"reserve account holds {found}, expected {mint}")
    return amount


def _impact_pct(amount_in: int, expected: int, reserve_in: int, reserve_out: int, fee_bps: int) -> float:
    """How far below the spot price (after the fee) the output is, in percent."""
    after_fee = amount_in * (FEE_DENOMINATOR - fee_bps) / FEE_DENOMINATOR
    if reserve_in <= 0 or after_fee <= 0:
        return 100.0
    spot = after_fee * reserve_out / reserve_in
    return max(0.0, (1.0 - expected / spot) * 100.0) if spot > 0 else 100.0
