"""The vault program's behaviours, on the real program deployed in LiteSVM."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from solders.instruction import Instruction
from solders.keypair import Keypair

from contracts import errors
from contracts.testbed import Testbed
from contracts.vault_client import DEPOSIT_CAP, VAULT_ACCOUNT_SIZE, trade_events
from tests.contracts.scenarios import trade, trading_vault


def test_initialize_creates_an_active_vault_owned_by_the_signer(bed: Testbed) -> None:
    owner, _ = bed.new_owner()
    state = bed.vault_state(owner.pubkey())
    account = bed.svm.get_account(bed.vault.vault(owner.pubkey()))
    assert account is not None and account.owner == bed.vault.program_id
    assert len(account.data) == VAULT_ACCOUNT_SIZE
    assert (state.owner, state.total_deposited, state.bot_authority, state.is_active) == (
        owner.pubkey(),
        0,
        None,
        True,
    )
    assert state.created_at == 1_790_000_000


def test_a_second_initialize_is_refused(bed: Testbed) -> None:
    owner, _ = bed.new_owner()
    with pytest.raises(errors.UnknownProgramError) as info:  # System's AccountAlreadyInUse (custom 0)
        bed.send([bed.vault.initialize_vault(owner.pubkey())], [owner])
    assert info.value.code == 0


def test_initialize_succeeds_even_when_someone_prefunded_the_vault_address(bed: Testbed) -> None:
    owner = bed.funded_keypair()
    bed.svm.airdrop(bed.vault.vault(owner.pubkey()), 5_000)
    bed.send([bed.vault.initialize_vault(owner.pubkey())], [owner])
    assert bed.vault_state(owner.pubkey()).is_active


def test_deposit_moves_usdc_into_the_vault_and_counts_it(bed: Testbed) -> None:
    owner, user_usdc = bed.new_owner(300_000_000)
    bed.send([bed.vault.deposit(owner.pubkey(), user_usdc, bed.usdc, 200_000_000)], [owner])
    assert bed.balance(bed.vault.vault_token_account(owner.pubkey(), bed.usdc)) == 200_000_000
    assert bed.balance(user_usdc) == 100_000_000
    assert bed.vault_state(owner.pubkey()).total_deposited == 200_000_000


def test_deposits_stop_at_the_cumulative_cap(bed: Testbed) -> None:
    owner, user_usdc = bed.new_owner(2 * DEPOSIT_CAP)
    bed.send([bed.vault.deposit(owner.pubkey(), user_usdc, bed.usdc, DEPOSIT_CAP - 1)], [owner])
    bed.send([bed.vault.withdraw(owner.pubkey(), user_usdc, bed.usdc, DEPOSIT_CAP - 1)], [owner])
    with pytest.raises(errors.DepositCapExceeded) as info:
        bed.send([bed.vault.deposit(owner.pubkey(), user_usdc, bed.usdc, 2)], [owner])
    assert info.value.code == 6008
    bed.send([bed.vault.deposit(owner.pubkey(), user_usdc, bed.usdc, 1)], [owner])
    assert bed.vault_state(owner.pubkey()).total_deposited == DEPOSIT_CAP


def test_deposit_of_zero_is_refused(bed: Testbed) -> None:
    owner, user_usdc = bed.new_owner(10)
    with pytest.raises(errors.InvalidAmount):
        bed.send([bed.vault.deposit(owner.pubkey(), user_usdc, bed.usdc, 0)], [owner])


def test_deposit_signed_by_someone_else_is_refused(bed: Testbed) -> None:
    owner, _ = bed.new_owner()
    stranger = bed.funded_keypair()
    stranger_usdc = bed.token_account(stranger.pubkey(), bed.usdc)
    bed.mint_to(bed.usdc, stranger_usdc, 100)
    ix = bed.vault.deposit(owner.pubkey(), stranger_usdc, bed.usdc, 100)
    ix.accounts = [ix.accounts[0], type(ix.accounts[1])(stranger.pubkey(), True, False), *ix.accounts[2:]]
    with pytest.raises(errors.ConstraintHasOne):
        bed.send([ix], [stranger])


def test_deposit_of_another_mint_is_refused(bed: Testbed) -> None:
    owner, _ = bed.new_owner()
    other = bed.create_mint(6)
    bed.token_account(bed.vault.vault(owner.pubkey()), other)
    user_other = bed.token_account(owner.pubkey(), other)
    bed.mint_to(other, user_other, 100)
    with pytest.raises(errors.InvalidMint):
        bed.send([bed.vault.deposit(owner.pubkey(), user_other, other, 100)], [owner])


def test_grant_and_revoke_set_and_clear_the_bot_authority(bed: Testbed) -> None:
    owner, _ = bed.new_owner()
    bot = Keypair().pubkey()
    bed.send([bed.vault.grant_bot_authority(owner.pubkey(), bot)], [owner])
    assert bed.vault_state(owner.pubkey()).bot_authority == bot
    bed.send([bed.vault.revoke_bot_authority(owner.pubkey())], [owner])
    assert bed.vault_state(owner.pubkey()).bot_authority is None


@pytest.mark.parametrize("action", ["grant", "revoke", "deactivate"])
def test_vault_management_by_a_non_owner_is_refused(bed: Testbed, action: str) -> None:
    owner, _ = bed.new_owner()
    stranger = bed.funded_keypair()
    ix = {
        "grant": bed.vault.grant_bot_authority(owner.pubkey(), stranger.pubkey()),
        "revoke": bed.vault.revoke_bot_authority(owner.pubkey()),
        "deactivate": bed.vault.deactivate_vault(owner.pubkey()),
    }[action]
    ix.accounts = [ix.accounts[0], type(ix.accounts[1])(stranger.pubkey(), True, False), *ix.accounts[2:]]
    with pytest.raises(errors.ConstraintHasOne):
        bed.send([ix], [stranger])


def test_owner_signature_is_required(bed: Testbed) -> None:
    owner, _ = bed.new_owner()
    payer = bed.funded_keypair()
    ix = bed.vault.grant_bot_authority(owner.pubkey(), payer.pubkey())
    ix.accounts = [ix.accounts[0], type(ix.accounts[1])(owner.pubkey(), False, False), *ix.accounts[2:]]
    with pytest.raises(errors.AccountNotSigner):
        bed.send([ix], [payer])


def test_bot_trade_swaps_through_the_amm_and_emits_the_real_amount_out(bed: Testbed) -> None:
    owner, bot, sol, _ = trading_vault(bed)
    meta = trade(bed, owner, bot, sol, 100_000_000, 1)
    out = bed.balance(bed.vault.vault_token_account(owner.pubkey(), sol))
    assert out == 493_579_017  # quote(100e6, 10_000e6, 50_000e6, 30 bps)
    assert bed.balance(bed.vault.vault_token_account(owner.pubkey(), bed.usdc)) == 400_000_000
    (event,) = trade_events(meta.logs())
    assert (event.amount_in, event.amount_out, event.minimum_amount_out) == (100_000_000, out, 1)
    assert (event.vault, event.bot_authority, event.input_mint, event.output_mint) == (
        bed.vault.vault(owner.pubkey()),
        bot.pubkey(),
        bed.usdc,
        sol,
    )


def test_bot_trade_fails_with_slippage_exceeded_when_the_pool_moved(bed: Testbed) -> None:
    owner, bot, sol, _ = trading_vault(bed)
    expected = 493_579_017
    whale = bed.funded_keypair()
    whale_usdc, whale_sol = (
        bed.token_account(whale.pubkey(), bed.usdc),
        bed.token_account(whale.pubkey(), sol),
    )
    bed.mint_to(bed.usdc, whale_usdc, 5_000_000_000)
    bed.send([bed.amm.swap(whale.pubkey(), bed.usdc, sol, whale_usdc, whale_sol, 5_000_000_000, 1)], [whale])
    with pytest.raises(errors.SlippageExceeded):
        trade(bed, owner, bot, sol, 100_000_000, expected)
    assert bed.balance(bed.vault.vault_token_account(owner.pubkey(), bed.usdc)) == 500_000_000


def test_bot_trade_by_an_unauthorized_key_is_refused(bed: Testbed) -> None:
    owner, _, sol, _ = trading_vault(bed)
    with pytest.raises(errors.UnauthorizedBot):
        trade(bed, owner, bed.funded_keypair(), sol, 100_000_000, 1)


def test_bot_trade_after_revoke_is_refused(bed: Testbed) -> None:
    owner, bot, sol, _ = trading_vault(bed)
    bed.send([bed.vault.revoke_bot_authority(owner.pubkey())], [owner])
    with pytest.raises(errors.UnauthorizedBot):
        trade(bed, owner, bot, sol, 100_000_000, 1)


@pytest.mark.parametrize(("amount_in", "minimum_out"), [(0, 1), (100, 0)])
def test_bot_trade_with_a_zero_amount_is_refused(bed: Testbed, amount_in: int, minimum_out: int) -> None:
    owner, bot, sol, _ = trading_vault(bed)
    with pytest.raises(errors.InvalidAmount):
        trade(bed, owner, bot, sol, amount_in, minimum_out, route_amount=100)


def test_bot_trade_with_an_empty_route_is_refused(bed: Testbed) -> None:
    owner, bot, sol, _ = trading_vault(bed)
    with pytest.raises(errors.InvalidRouteData):
        trade(bed, owner, bot, sol, 100, 1, route_data=b"")


def test_withdraw_returns_tokens_to_the_owner(bed: Testbed) -> None:
    owner, user_usdc = bed.new_owner(300)
    bed.send([bed.vault.deposit(owner.pubkey(), user_usdc, bed.usdc, 300)], [owner])
    bed.send([bed.vault.withdraw(owner.pubkey(), user_usdc, bed.usdc, 120)], [owner])
    assert bed.balance(user_usdc) == 120


def test_withdraw_of_more_than_the_balance_is_refused(bed: Testbed) -> None:
    owner, user_usdc = bed.new_owner(300)
    bed.send([bed.vault.deposit(owner.pubkey(), user_usdc, bed.usdc, 300)], [owner])
    with pytest.raises(errors.InsufficientFunds):
        bed.send([bed.vault.withdraw(owner.pubkey(), user_usdc, bed.usdc, 301)], [owner])


def test_owner_withdraws_any_token_the_vault_holds_after_atrade(bed: Testbed) -> None:
    owner, bot, sol, _ = trading_vault(bed)
    trade(bed, owner, bot, sol, 100_000_000, 1)
    user_sol = bed.token_account(owner.pubkey(), sol)
    bed.send([bed.vault.withdraw(owner.pubkey(), user_sol, sol, 493_579_017)], [owner])
    assert bed.balance(user_sol) == 493_579_017


def test_deactivate_blocks_trade_and_deposit_but_not_withdraw(bed: Testbed) -> None:
    owner, bot, sol, _ = trading_vault(bed, deposit=500)
    bed.mint_to(bed.usdc, bed.token_account(owner.pubkey(), bed.usdc), 100)
    bed.send([bed.vault.deactivate_vault(owner.pubkey())], [owner])
    state = bed.vault_state(owner.pubkey())
    assert (state.is_active, state.bot_authority) == (False, None)
    with pytest.raises(errors.VaultInactive):
        trade(bed, owner, bot, sol, 100, 1)
    user_usdc = bed.token_account(owner.pubkey(), bed.usdc)
    with pytest.raises(errors.VaultInactive):
        bed.send([bed.vault.deposit(owner.pubkey(), user_usdc, bed.usdc, 100)], [owner])
    with pytest.raises(errors.VaultInactive):
        bed.send([bed.vault.grant_bot_authority(owner.pubkey(), bot.pubkey())], [owner])
    bed.send([bed.vault.withdraw(owner.pubkey(), user_usdc, bed.usdc, 500)], [owner])
    assert bed.balance(user_usdc) == 600


def test_the_allow_list_is_set_by_the_upgrade_authority_only(bed: Testbed) -> None:
    config = bed.vault.config()
    account = bed.svm.get_account(config)
    assert account is not None
    from contracts.vault_client import decode_config

    state = decode_config(bytes(account.data))
    assert (state.admin, state.usdc_mint, state.swap_programs) == (
        bed.admin.pubkey(),
        bed.usdc,
        (bed.amm.program_id,),
    )
    intruder = bed.funded_keypair()
    with pytest.raises(errors.ConstraintHasOne):
        bed.send([bed.vault.set_swap_programs(intruder.pubkey(), [intruder.pubkey()])], [intruder])
    bed.send([bed.vault.set_swap_programs(bed.admin.pubkey(), [])], [bed.admin])
    with pytest.raises(errors.InvalidSwapProgramList):
        bed.send([bed.vault.set_swap_programs(bed.admin.pubkey(), [bed.vault.program_id])], [bed.admin])


def test_a_second_config_by_someone_else_is_refused(bed: Testbed) -> None:
    intruder = bed.funded_keypair()
    with pytest.raises(errors.UnauthorizedAdmin):
        bed.send([bed.vault.initialize_config(intruder.pubkey(), bed.usdc, [intruder.pubkey()])], [intruder])


def test_an_amm_error_inside_bot_trade_is_reported_as_the_amms(bed: Testbed) -> None:
    owner, bot, sol, _ = trading_vault(bed)
    with pytest.raises(errors.AmmSlippageExceeded):
        trade(bed, owner, bot, sol, 100_000_000, 1, route_data=bed.amm.swap_data(100_000_000, 10**12))


@pytest.mark.parametrize(
    ("data", "error"),
    [(b"", errors.InstructionMissing), (b"\x01" * 8, errors.InstructionFallbackNotFound)],
    ids=["empty", "unknown-discriminator"],
)
def test_unknown_instructions_fail_with_anchors_error_numbers(
    bed: Testbed, data: bytes, error: type[Exception]
) -> None:
    payer = bed.funded_keypair()
    with pytest.raises(error):
        bed.send([Instruction(bed.vault.program_id, data, [])], [payer])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["deposit", "withdraw"]), st.integers(min_value=0, max_value=400_000_000)),
        min_size=1,
        max_size=8,
    )
)
def test_total_deposited_counts_every_accepted_deposit_and_never_passes_the_cap(
    programs: dict[str, Path], steps: list[tuple[str, int]]
) -> None:
    bed = Testbed.create(programs)
    owner, user_usdc = bed.new_owner(3 * DEPOSIT_CAP)
    accepted = 0
    for action, amount in steps:
        held = bed.balance(bed.vault.vault_token_account(owner.pubkey(), bed.usdc))
        if action == "deposit":
            ix = bed.vault.deposit(owner.pubkey(), user_usdc, bed.usdc, amount)
            should_pass = 0 < amount and accepted + amount <= DEPOSIT_CAP
        else:
            ix = bed.vault.withdraw(owner.pubkey(), user_usdc, bed.usdc, amount)
            should_pass = 0 < amount <= held
        try:
            bed.send([ix], [owner])
            passed = True
        except errors.VaultError:
            passed = False
        assert passed == should_pass
        if passed and action == "deposit":
            accepted += amount
    assert bed.vault_state(owner.pubkey()).total_deposited == accepted <= DEPOSIT_CAP
