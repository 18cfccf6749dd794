"""The router and the portfolio reads against the real local chain and programs: a quote is what a
real ``bot_trade`` then receives (to the base unit, at zero slippage), the vault's holdings are
each of its token accounts' balances, a trader's holdings are the sum of its token accounts.

The node is ``tests/trades``' market with the market maker switched off (``--market-maker-slots
0``): the market maker moves every pool every few slots, so comparing a quote with what a trade
receives a moment later would race it. Nothing else trades on this node but these tests, one at a
time. The desk, the RPC client and the trade store are tests/trades' fixtures.
"""

# ruff: noqa: F811 -- the fixtures imported from tests/trades are parameters here by design

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import trio
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from actors.portfolio import Holding, trader_holdings, vault_holdings
from actors.router import LocalAmmRouter, NoRoute, Quote
from actors.rpc_client import RpcClient
from actors.trade_execution import execute_attempt
from actors.trade_lifecycle import TradeStatus, intent_id
from actors.trade_store import NewTrade, TradeStore
from contracts.pda import TOKEN_PROGRAM_ID
from tests.infra.conftest import db_url, gateway, pg_server, schema, xorj_home  # noqa: F401
from tests.localnet.conftest import LocalnetNode, start_node, stop_node
from tests.trades.conftest import MARKET, TRADE_USDC, Desk, desk, rpc, store  # noqa: F401

QUIET_MARKET = (*MARKET, "--market-maker-slots", "0")


@pytest.fixture(scope="session")
def market_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalnetNode]:
    """tests/trades' market, without the market maker (overrides its ``market_node`` for ``desk``)."""
    node = start_node(tmp_path_factory.mktemp("planning-market"), *QUIET_MARKET, deadline_s=120.0)
    yield node
    assert stop_node(node) == 0


def mints_of(desk: Desk) -> dict[str, int]:
    return {m["mint"]: m["decimals"] for m in desk.node.manifest["mints"].values()}


async def quote(
    desk: Desk, rpc: RpcClient, input_mint: Pubkey, output_mint: Pubkey, amount_in: int, slippage_bps: int = 0
) -> Quote:
    router = LocalAmmRouter(rpc, desk.amm)
    return await router.quote(
        str(input_mint), str(output_mint), amount_in, slippage_bps,
        authority=desk.vault.vault(desk.owner),
        source=desk.vault.vault_token_account(desk.owner, input_mint),
        destination=desk.vault.vault_token_account(desk.owner, output_mint), timeout=5.0)


async def trade(store: TradeStore, rpc: RpcClient, desk: Desk, q: Quote, sold: Pubkey, bought: Pubkey) -> Any:
    """One real bot_trade of the quote's route, with the vault's minimum the quote's ``minimum_out``."""
    intent = await store.insert_intent(NewTrade(
        user_id="user-1", intent_id=intent_id("user-1", f"job-{uuid.uuid4().hex[:8]}", 0),
        from_token=str(sold), to_token=str(bought), amount=Decimal(q.amount_in) / 10**6,
        amount_in=q.amount_in, minimum_amount_out=q.minimum_out))
    return await execute_attempt(store, rpc, desk.bot, desk.vault, desk.owner, intent, q.route, desk.settings)


async def balance(rpc: RpcClient, account: Pubkey) -> int:
    return int((await rpc.get_token_account_balance(account, timeout=5.0)).value.amount)


# ------------------------------------------------------------------------------ router


async def test_a_quote_is_the_amms_own_math_and_its_route_is_the_vaults_swap_leg(
    rpc: RpcClient, desk: Desk
) -> None:
    q = await quote(desk, rpc, desk.usdc, desk.jup, TRADE_USDC, slippage_bps=100)

    assert q.expected_out == await desk.quote(rpc, TRADE_USDC) > 0
    assert q.minimum_out == q.expected_out * 9_900 // 10_000
    assert q.route == desk.route(TRADE_USDC)  # the AMM leg's own minimum is 0: the vault enforces it
    assert q.amount_in == TRADE_USDC and 0.0 <= q.price_impact_pct < 0.1


async def test_a_bot_trade_at_a_zero_slippage_quote_receives_exactly_the_quote_both_ways(
    store: TradeStore, rpc: RpcClient, desk: Desk
) -> None:
    jup_account = desk.vault.vault_token_account(desk.owner, desk.jup)
    usdc_account = desk.vault.vault_token_account(desk.owner, desk.usdc)
    jup_before = await balance(rpc, jup_account)

    bought_q = await quote(desk, rpc, desk.usdc, desk.jup, TRADE_USDC)
    bought = await trade(store, rpc, desk, bought_q, desk.usdc, desk.jup)

    assert bought_q.minimum_out == bought_q.expected_out  # one base unit less would fail the trade
    assert (bought.status, bought.amount_out) == (TradeStatus.CONFIRMED, bought_q.expected_out)
    assert await balance(rpc, jup_account) - jup_before == bought_q.expected_out

    usdc_before = await balance(rpc, usdc_account)
    sold_q = await quote(desk, rpc, desk.jup, desk.usdc, bought_q.expected_out)
    sold = await trade(store, rpc, desk, sold_q, desk.jup, desk.usdc)

    assert (sold.status, sold.amount_out) == (TradeStatus.CONFIRMED, sold_q.expected_out)
    assert await balance(rpc, usdc_account) - usdc_before == sold_q.expected_out
    assert 0 < sold_q.expected_out < TRADE_USDC  # a round trip pays the fee twice


async def test_a_pair_without_a_pool_has_no_route_and_the_error_names_it(rpc: RpcClient, desk: Desk) -> None:
    wif = Pubkey.from_string(desk.node.manifest["mints"]["WIF"]["mint"])

    with pytest.raises(NoRoute) as caught:
        await quote(desk, rpc, desk.jup, wif, 1_000_000)

    assert str(desk.jup) in str(caught.value) and str(wif) in str(caught.value)
    with pytest.raises(ValueError, match="amount_in"):
        await quote(desk, rpc, desk.usdc, desk.jup, 0)


async def test_the_price_impact_grows_with_the_size_of_the_trade(rpc: RpcClient, desk: Desk) -> None:
    small = await quote(desk, rpc, desk.usdc, desk.jup, 10**6)
    large = await quote(desk, rpc, desk.usdc, desk.jup, 10**12)

    assert small.price_impact_pct < 0.01 < large.price_impact_pct < 100.0


# ------------------------------------------------------------------------------ portfolio


async def test_vault_holdings_are_each_token_accounts_balance(rpc: RpcClient, desk: Desk) -> None:
    mints = mints_of(desk)
    held = await vault_holdings(rpc, desk.vault, desk.owner, mints, timeout=5.0)

    assert set(held) == set(mints)
    for mint, decimals in mints.items():
        account = desk.vault.vault_token_account(desk.owner, Pubkey.from_string(mint))
        exists = (await rpc.get_account_info(account, timeout=5.0)).value is not None
        expected = await balance(rpc, account) if exists else 0
        assert held[mint] == Holding(mint, expected, decimals)
    assert held[str(desk.usdc)].amount > 0  # the demo deposit: the comparison is not all zeros


async def test_a_vault_that_does_not_exist_holds_zero_of_everything(rpc: RpcClient, desk: Desk) -> None:
    held = await vault_holdings(rpc, desk.vault, Keypair().pubkey(), mints_of(desk), timeout=5.0)

    assert {h.amount for h in held.values()} == {0}


def parsed_token_accounts(node: LocalnetNode, wallet: str) -> dict[str, tuple[int, int]]:
    """mint -> (summed amount, decimals) of ``wallet``'s token accounts, as the node parses them."""
    answer = node.result("getTokenAccountsByOwner",
                         [wallet, {"programId": str(TOKEN_PROGRAM_ID)}, {"encoding": "jsonParsed"}])
    out: dict[str, tuple[int, int]] = {}
    for keyed in answer["value"]:
        info = keyed["account"]["data"]["parsed"]["info"]
        amount = int(info["tokenAmount"]["amount"])
        out[info["mint"]] = (out.get(info["mint"], (0, 0))[0] + amount, info["tokenAmount"]["decimals"])
    return {mint: total for mint, total in out.items() if total[0] > 0}


async def test_a_traders_holdings_are_the_sum_of_its_token_accounts(rpc: RpcClient, desk: Desk) -> None:
    traders = [t["pubkey"] for t in desk.node.manifest["traders"][:4]]
    for wallet in traders:
        expected = await trio.to_thread.run_sync(parsed_token_accounts, desk.node, wallet)

        read_decimals = await trader_holdings(rpc, wallet, timeout=5.0)
        given_decimals = await trader_holdings(rpc, wallet, timeout=5.0, decimals=mints_of(desk))

        assert expected, wallet  # a trader with holdings: the comparison is not empty
        assert {m: (h.amount, h.decimals) for m, h in read_decimals.items()} == expected
        assert given_decimals == read_decimals


async def test_a_wallet_without_token_accounts_holds_nothing(rpc: RpcClient) -> None:
    assert await trader_holdings(rpc, str(Keypair().pubkey()), timeout=5.0) == {}
