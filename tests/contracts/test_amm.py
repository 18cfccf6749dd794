"""The AMM program: constant-product swaps at the exact integer quote, in both directions, and
refusal of malformed pools and foreign accounts."""

from __future__ import annotations

import pytest
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from contracts import errors
from contracts.amm_client import decode_pool, quote
from contracts.testbed import Testbed


def _pool(bed: Testbed, x: int = 10_000_000_000, y: int = 50_000_000_000) -> tuple[Pubkey, Pubkey]:
    other = bed.create_mint(9)
    bed.create_pool(bed.usdc, other, x, y, fee_bps=30)
    return bed.usdc, other


def test_swaps_pay_the_exact_quote_in_both_directions(bed: Testbed) -> None:
    usdc, other = _pool(bed)
    trader = bed.funded_keypair()
    t_usdc, t_other = bed.token_account(trader.pubkey(), usdc), bed.token_account(trader.pubkey(), other)
    bed.mint_to(usdc, t_usdc, 10**9)
    bed.send([bed.amm.swap(trader.pubkey(), usdc, other, t_usdc, t_other, 10**9, 1)], [trader])
    first = quote(10**9, 10_000_000_000, 50_000_000_000, 30)
    assert bed.balance(t_other) == first
    bed.send([bed.amm.swap(trader.pubkey(), other, usdc, t_other, t_usdc, first, 1)], [trader])
    back = quote(first, 50_000_000_000 - first, 11_000_000_000, 30)
    assert bed.balance(t_usdc) == back < 10**9  # a round trip pays the fee twice


def test_the_pool_account_records_its_mints_accounts_and_fee(bed: Testbed) -> None:
    usdc, other = _pool(bed)
    account = bed.svm.get_account(bed.amm.pool(usdc, other))
    assert account is not None and account.owner == bed.amm.program_id
    pool = decode_pool(bytes(account.data))
    assert {pool.mint_a, pool.mint_b} == {usdc, other} and bytes(pool.mint_a) < bytes(pool.mint_b)
    assert pool.vault_a == bed.amm.pool_token_account(usdc, other, pool.mint_a)
    assert pool.fee_bps == 30


def test_swap_below_the_minimum_output_is_refused(bed: Testbed) -> None:
    usdc, other = _pool(bed)
    trader = bed.funded_keypair()
    t_usdc, t_other = bed.token_account(trader.pubkey(), usdc), bed.token_account(trader.pubkey(), other)
    bed.mint_to(usdc, t_usdc, 10**6)
    with pytest.raises(errors.AmmSlippageExceeded):
        bed.send([bed.amm.swap(trader.pubkey(), usdc, other, t_usdc, t_other, 10**6, 10**12)], [trader])


def test_swap_against_accounts_that_are_not_the_pools_is_refused(bed: Testbed) -> None:
    usdc, other = _pool(bed)
    trader = bed.funded_keypair()
    t_usdc, t_other = bed.token_account(trader.pubkey(), usdc), bed.token_account(trader.pubkey(), other)
    ix = bed.amm.swap(trader.pubkey(), usdc, other, t_usdc, t_other, 10, 1)
    accounts = list(ix.accounts)
    accounts[5] = AccountMeta(t_usdc, False, True)  # "pool destination" is the trader's own account
    with pytest.raises(errors.AmmInvalidPoolAccount):
        bed.send([Instruction(ix.program_id, ix.data, accounts)], [trader])


def test_a_pool_with_a_fee_above_ten_percent_is_refused(bed: Testbed) -> None:
    other = bed.create_mint(9)
    pool = bed.amm.pool(bed.usdc, other)
    bed.token_account(pool, bed.usdc)
    bed.token_account(pool, other)
    with pytest.raises(errors.AmmInvalidFee):
        bed.send([bed.amm.initialize_pool(bed.admin.pubkey(), bed.usdc, other, 1001)], [bed.admin])


def test_pool_token_accounts_must_belong_to_the_pool(bed: Testbed) -> None:
    other = bed.create_mint(9)
    ix = bed.amm.initialize_pool(bed.admin.pubkey(), bed.usdc, other, 30)
    accounts = list(ix.accounts)
    mint_a, mint_b = accounts[2].pubkey, accounts[3].pubkey
    accounts[4] = AccountMeta(bed.token_account(bed.admin.pubkey(), mint_a), False, False)
    accounts[5] = AccountMeta(bed.token_account(bed.admin.pubkey(), mint_b), False, False)
    with pytest.raises(errors.ConstraintTokenOwner):
        bed.send([Instruction(ix.program_id, ix.data, accounts)], [bed.admin])


def test_a_second_pool_for_the_same_pair_is_refused(bed: Testbed) -> None:
    usdc, other = _pool(bed)
    with pytest.raises(errors.UnknownProgramError):  # System's AccountAlreadyInUse
        bed.send([bed.amm.initialize_pool(bed.admin.pubkey(), usdc, other, 30)], [bed.admin])


def test_mints_in_the_wrong_order_are_refused(bed: Testbed) -> None:
    other = bed.create_mint(9)
    ix = bed.amm.initialize_pool(bed.admin.pubkey(), bed.usdc, other, 30)
    accounts = list(ix.accounts)
    accounts[2], accounts[3] = accounts[3], accounts[2]
    with pytest.raises(errors.AmmInvalidMintOrder):
        bed.send([Instruction(ix.program_id, ix.data, accounts)], [bed.admin])
