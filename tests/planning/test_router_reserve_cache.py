"""The router's reserve cache against the real local chain: with ``reserve_max_age_s`` a pool is
read once per that age whatever the number of quotes (concurrent quotes of a stale pool share one
read), both directions of a pair share the pool's read, and without it every quote reads the chain.

The chain is tests/trades' market node; the reads are counted by a pass-through `SolanaRpc` around
the real RPC client (every call still goes to the chain).
"""

# ruff: noqa: F811 -- the fixtures imported from tests/trades are parameters here by design

from __future__ import annotations

from collections.abc import Sequence

import trio
from solders.pubkey import Pubkey
from solders.rpc.requests import Body, GetMultipleAccounts

from actors.router import LocalAmmRouter, Quote
from actors.rpc_client import R, RpcClient, RpcNodeError, SolanaRpc
from tests.trades.conftest import Desk, desk, market_node, rpc  # noqa: F401

AGE_S = 0.3


class CountingRpc(SolanaRpc):
    """Passes every call to the real client and counts the ``getMultipleAccounts`` among them."""

    def __init__(self, inner: RpcClient) -> None:
        self.inner = inner
        self.reads = 0

    async def call(
        self, request: Body, resp_type: type[R], *, timeout: float | None = None, retry: bool = True
    ) -> R:
        if isinstance(request, GetMultipleAccounts):
            self.reads += 1
        return await self.inner.call(request, resp_type, timeout=timeout, retry=retry)

    async def batch(
        self, requests: Sequence[Body], resp_type: type[R], *, timeout: float | None = None
    ) -> list[R | RpcNodeError]:
        return await self.inner.batch(requests, resp_type, timeout=timeout)


async def quote(router: LocalAmmRouter, desk: Desk, mint_in: Pubkey, mint_out: Pubkey, amount: int) -> Quote:
    return await router.quote(
        str(mint_in), str(mint_out), amount, 100, authority=desk.vault.vault(desk.owner),
        source=desk.vault.vault_token_account(desk.owner, mint_in),
        destination=desk.vault.vault_token_account(desk.owner, mint_out), timeout=5.0)


async def test_quotes_within_the_age_read_the_pool_once_in_both_directions_then_again_after_it(
    desk: Desk, rpc: RpcClient
) -> None:
    counting = CountingRpc(rpc)
    router = LocalAmmRouter(counting, desk.amm, reserve_max_age_s=AGE_S)
    first = await quote(router, desk, desk.usdc, desk.jup, 1_000_000)
    again = await quote(router, desk, desk.usdc, desk.jup, 1_000_000)
    back = await quote(router, desk, desk.jup, desk.usdc, 1_000_000)
    assert counting.reads == 1
    assert again.expected_out == first.expected_out  # the same reserves
    assert back.expected_out > 0
    await trio.sleep(AGE_S + 0.05)  # the copy is now older than the age: the next quote reads again
    await quote(router, desk, desk.usdc, desk.jup, 1_000_000)
    assert counting.reads == 2


async def test_concurrent_quotes_of_a_stale_pool_share_one_read(desk: Desk, rpc: RpcClient) -> None:
    counting = CountingRpc(rpc)
    router = LocalAmmRouter(counting, desk.amm, reserve_max_age_s=AGE_S)
    quotes: list[Quote] = []

    async def one(amount: int) -> None:
        quotes.append(await quote(router, desk, desk.usdc, desk.jup, amount))

    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(one, 1_000_000 + i)
    assert len(quotes) == 20
    assert counting.reads == 1


async def test_without_an_age_every_quote_reads_the_chain(desk: Desk, rpc: RpcClient) -> None:
    counting = CountingRpc(rpc)
    router = LocalAmmRouter(counting, desk.amm)
    for _ in range(3):
        await quote(router, desk, desk.usdc, desk.jup, 1_000_000)
    assert counting.reads == 3
