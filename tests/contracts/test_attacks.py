"""Attacks on the vault: what a stolen bot key, a hostile route or forged accounts can try, and
that each fails without moving value."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from solders.account import Account
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from contracts import errors
from contracts.amm_client import AmmClient
from contracts.borsh import encode_struct
from contracts.definitions import VAULT
from contracts.deploy import deploy_upgradeable
from contracts.pda import TOKEN_PROGRAM_ID
from contracts.testbed import Testbed
from tests.contracts.scenarios import trade, trading_vault


def _with_account(ix: Instruction, index: int, meta: AccountMeta) -> Instruction:
    accounts = list(ix.accounts)
    accounts[index] = meta
    return Instruction(ix.program_id, ix.data, accounts)


def _vault_balances(bed: Testbed, owner: Keypair, sol: Pubkey) -> tuple[int, int]:
    return (
        bed.balance(bed.vault.vault_token_account(owner.pubkey(), bed.usdc)),
        bed.balance(bed.vault.vault_token_account(owner.pubkey(), sol)),
    )


def test_the_bot_cannot_withdraw(bed: Testbed) -> None:
    owner, bot, sol, _ = trading_vault(bed)
    bot_usdc = bed.token_account(bot.pubkey(), bed.usdc)
    as_owner = _with_account(
        bed.vault.withdraw(owner.pubkey(), bot_usdc, bed.usdc, 1), 1, AccountMeta(bot.pubkey(), True, False)
    )
    with pytest.raises(errors.ConstraintHasOne):
        bed.send([as_owner], [bot])
    unsigned_owner = _with_account(
        bed.vault.withdraw(owner.pubkey(), bot_usdc, bed.usdc, 1),
        1,
        AccountMeta(owner.pubkey(), False, False),
    )
    with pytest.raises(errors.AccountNotSigner):
        bed.send([unsigned_owner], [bot])
    assert _vault_balances(bed, owner, sol) == (500_000_000, 0)
    assert bed.balance(bot_usdc) == 0


def test_the_bot_cannot_route_the_output_to_itself(bed: Testbed) -> None:
    owner, bot, sol, vault = trading_vault(bed)
    bot_sol = bed.token_account(bot.pubkey(), sol)
    vin = bed.vault.vault_token_account(owner.pubkey(), bed.usdc)
    route = bed.amm.swap_accounts(vault, bed.usdc, sol, vin, bot_sol)
    ix = bed.vault.bot_trade(
        owner.pubkey(),
        bot.pubkey(),
        bed.usdc,
        sol,
        bed.amm.program_id,
        100_000_000,
        1,
        bed.amm.swap_data(100_000_000, 1),
        route,
    )
    with pytest.raises(errors.SlippageExceeded):
        bed.send([ix], [bot])
    assert bed.balance(bot_sol) == 0


def test_a_swap_program_off_the_allow_list_is_refused(bed: Testbed, programs: dict[str, Path]) -> None:
    owner, bot, sol, vault = trading_vault(bed)
    rogue = AmmClient(deploy_upgradeable(bed.svm, bot, Keypair(), programs["amm"].read_bytes()))
    for program_id in (rogue.program_id, TOKEN_PROGRAM_ID):
        vin = bed.vault.vault_token_account(owner.pubkey(), bed.usdc)
        vout = bed.vault.vault_token_account(owner.pubkey(), sol)
        ix = bed.vault.bot_trade(
            owner.pubkey(),
            bot.pubkey(),
            bed.usdc,
            sol,
            program_id,
            100,
            1,
            rogue.swap_data(100, 1),
            rogue.swap_accounts(vault, bed.usdc, sol, vin, vout),
        )
        with pytest.raises(errors.SwapProgramNotAllowed):
            bed.send([ix], [bot])
    assert _vault_balances(bed, owner, sol) == (500_000_000, 0)


def test_an_output_account_the_vault_does_not_own_is_refused(bed: Testbed) -> None:
    owner, bot, sol, vault = trading_vault(bed)
    bot_sol = bed.token_account(bot.pubkey(), sol)
    vin = bed.vault.vault_token_account(owner.pubkey(), bed.usdc)
    ix = bed.vault.bot_trade(
        owner.pubkey(),
        bot.pubkey(),
        bed.usdc,
        sol,
        bed.amm.program_id,
        100,
        1,
        bed.amm.swap_data(100, 1),
        bed.amm.swap_accounts(vault, bed.usdc, sol, vin, bot_sol),
    )
    ix = _with_account(ix, 3, AccountMeta(bot_sol, False, True))
    with pytest.raises(errors.ConstraintTokenOwner):
        bed.send([ix], [bot])


def _forged_vault(bed: Testbed, owner: Pubkey, bot: Pubkey, program_owner: Pubkey) -> Pubkey:
    data = VAULT.accounts[0].discriminator + encode_struct(
        VAULT.accounts[0].fields,
        {
            "owner": owner,
            "total_deposited": 0,
            "bot_authority": bot,
            "is_active": True,
            "created_at": 0,
            "bump": 255,
        },
    )
    address = Keypair().pubkey()
    data = data.ljust(91, b"\0")
    bed.svm.set_account(address, Account(10**9, data, program_owner, False, 0))
    return address


@pytest.mark.parametrize(
    ("program_owned", "error"), [(True, errors.ConstraintSeeds), (False, errors.AccountOwnedByWrongProgram)]
)
def test_a_spoofed_vault_pda_is_refused(bed: Testbed, program_owned: bool, error: type[Exception]) -> None:
    owner, _bot, sol, _vault = trading_vault(bed)
    thief = bed.funded_keypair()
    fake = _forged_vault(
        bed, owner.pubkey(), thief.pubkey(), bed.vault.program_id if program_owned else Pubkey.default()
    )
    ix = bed.vault.bot_trade(
        owner.pubkey(),
        thief.pubkey(),
        bed.usdc,
        sol,
        bed.amm.program_id,
        100,
        1,
        bed.amm.swap_data(100, 1),
        [],
    )
    ix = _with_account(ix, 0, AccountMeta(fake, False, True))
    with pytest.raises(error):
        bed.send([ix], [thief])
    # A forged vault that names the thief as owner, used against the victim's vault token account.
    fake_owned = _forged_vault(
        bed, thief.pubkey(), thief.pubkey(), bed.vault.program_id if program_owned else Pubkey.default()
    )
    thief_usdc = bed.token_account(thief.pubkey(), bed.usdc)
    withdraw = bed.vault.withdraw(thief.pubkey(), thief_usdc, bed.usdc, 1)
    withdraw = _with_account(withdraw, 0, AccountMeta(fake_owned, False, False))
    withdraw = _with_account(
        withdraw, 3, AccountMeta(bed.vault.vault_token_account(owner.pubkey(), bed.usdc), False, True)
    )
    with pytest.raises(error):
        bed.send([withdraw], [thief])
    assert _vault_balances(bed, owner, sol) == (500_000_000, 0)


def test_a_route_that_spends_more_than_amount_in_is_refused(bed: Testbed) -> None:
    owner, bot, sol, _ = trading_vault(bed)
    with pytest.raises(errors.InvalidRouteData):
        trade(bed, owner, bot, sol, 1_000_000, 1, route_amount=400_000_000)
    assert _vault_balances(bed, owner, sol) == (500_000_000, 0)


def test_a_duplicate_account_passed_twice_is_refused(bed: Testbed) -> None:
    owner, bot, sol, vault = trading_vault(bed)
    vin = bed.vault.vault_token_account(owner.pubkey(), bed.usdc)
    ix = bed.vault.bot_trade(
        owner.pubkey(),
        bot.pubkey(),
        bed.usdc,
        bed.usdc,
        bed.amm.program_id,
        100,
        1,
        bed.amm.swap_data(100, 1),
        bed.amm.swap_accounts(vault, bed.usdc, sol, vin, vin),
    )
    with pytest.raises(errors.ConstraintDuplicateMutableAccount):
        bed.send([ix], [bot])
    user_usdc = bed.token_account(owner.pubkey(), bed.usdc)
    bed.mint_to(bed.usdc, user_usdc, 10)
    dup = _with_account(
        bed.vault.deposit(owner.pubkey(), vin, bed.usdc, 10), 2, AccountMeta(vin, False, True)
    )
    with pytest.raises(errors.ConstraintDuplicateMutableAccount):
        bed.send([dup], [owner])


def test_a_route_through_another_vault_token_account_is_refused(bed: Testbed) -> None:
    owner, bot, sol, vault = trading_vault(bed)
    # The vault also holds a third token; the bot names USDC->SOL but routes the third token's account.
    gem = bed.create_mint(6)
    bed.create_pool(gem, sol, 10_000_000, 10_000_000)
    vault_gem = bed.token_account(vault, gem)
    bed.mint_to(gem, vault_gem, 1_000_000)
    vout = bed.vault.vault_token_account(owner.pubkey(), sol)
    ix = bed.vault.bot_trade(
        owner.pubkey(),
        bot.pubkey(),
        bed.usdc,
        sol,
        bed.amm.program_id,
        100,
        1,
        bed.amm.swap_data(1_000_000, 1),
        bed.amm.swap_accounts(vault, gem, sol, vault_gem, vout),
    )
    with pytest.raises(errors.RouteTouchesOtherVaultAccount):
        bed.send([ix], [bot])
    assert bed.balance(vault_gem) == 1_000_000


def test_no_sequence_of_bot_signed_instructions_moves_value_out(bed: Testbed) -> None:
    """A seeded random walk over everything a stolen bot key can sign: each success must be a trade
    whose input spend <= amount_in and output rise >= minimum_amount_out >= 1; owner state never changes."""
    owner, bot, sol, vault = trading_vault(bed)
    rng = random.Random(1234)
    bot_usdc, bot_sol = bed.token_account(bot.pubkey(), bed.usdc), bed.token_account(bot.pubkey(), sol)
    vin = bed.vault.vault_token_account(owner.pubkey(), bed.usdc)
    vout = bed.vault.vault_token_account(owner.pubkey(), sol)
    signer = AccountMeta(bot.pubkey(), True, False)

    def candidates() -> list[tuple[str, Instruction, int, int]]:
        amount = rng.choice([1, 1000, 10**6, 10**8, 10**9])
        minimum = rng.choice([1, 10, 10**6])
        dest = rng.choice([vout, vout, bot_sol])
        src = rng.choice([vin, vin, bot_usdc])
        route = bed.amm.swap_accounts(vault, bed.usdc, sol, src, dest)
        return [
            (
                "trade",
                bed.vault.bot_trade(
                    owner.pubkey(),
                    bot.pubkey(),
                    bed.usdc,
                    sol,
                    bed.amm.program_id,
                    amount,
                    minimum,
                    bed.amm.swap_data(rng.choice([amount, 2 * amount]), 1),
                    route,
                ),
                amount,
                minimum,
            ),
            (
                "withdraw",
                _with_account(
                    bed.vault.withdraw(
                        owner.pubkey(), rng.choice([bot_usdc, bot_sol]), rng.choice([bed.usdc, sol]), amount
                    ),
                    1,
                    signer,
                ),
                0,
                0,
            ),
            (
                "grant",
                _with_account(bed.vault.grant_bot_authority(owner.pubkey(), bot.pubkey()), 1, signer),
                0,
                0,
            ),
            ("deactivate", _with_account(bed.vault.deactivate_vault(owner.pubkey()), 1, signer), 0, 0),
        ]

    before_state = bed.vault_state(owner.pubkey())
    trades = 0
    for _ in range(80):
        kind, ix, amount, minimum = rng.choices(candidates(), weights=[6, 2, 1, 1])[0]
        usdc0, sol0 = _vault_balances(bed, owner, sol)
        try:
            bed.send([ix], [bot])
        except (errors.ProgramError, errors.TransactionFailed):
            assert _vault_balances(bed, owner, sol) == (usdc0, sol0)
            continue
        usdc1, sol1 = _vault_balances(bed, owner, sol)
        assert kind == "trade"
        trades += 1
        assert usdc0 - usdc1 <= amount and sol1 - sol0 >= minimum >= 1
    assert trades > 0  # the walk did exercise successful trades
    assert bed.vault_state(owner.pubkey()) == before_state
    assert bed.balance(bot_usdc) == 0 and bed.balance(bot_sol) == 0
