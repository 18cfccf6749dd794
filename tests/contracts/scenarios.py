"""Scenario helpers shared by the vault, attack and fuzz tests: a funded vault with a bot and a
pool, and a bot trade through the AMM."""

from __future__ import annotations

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.transaction_metadata import TransactionMetadata

from contracts.testbed import Testbed


def trading_vault(bed: Testbed, deposit: int = 500_000_000) -> tuple[Keypair, Keypair, Pubkey, Pubkey]:
    """A funded vault with a bot, a SOL-like mint and a USDC/SOL pool: (owner, bot, sol mint, vault)."""
    owner, user_usdc = bed.new_owner(deposit)
    bed.send([bed.vault.deposit(owner.pubkey(), user_usdc, bed.usdc, deposit)], [owner])
    sol = bed.create_mint(9)
    bed.create_pool(bed.usdc, sol, 10_000_000_000, 50_000_000_000)
    bot = bed.funded_keypair()
    bed.send([bed.vault.grant_bot_authority(owner.pubkey(), bot.pubkey())], [owner])
    vault = bed.vault.vault(owner.pubkey())
    bed.token_account(vault, sol)
    return owner, bot, sol, vault


def trade(
    bed: Testbed,
    owner: Keypair,
    bot: Keypair,
    sol: Pubkey,
    amount_in: int,
    minimum_out: int,
    route_amount: int | None = None,
    route_data: bytes | None = None,
) -> TransactionMetadata:
    vault = bed.vault.vault(owner.pubkey())
    vin = bed.vault.vault_token_account(owner.pubkey(), bed.usdc)
    vout = bed.vault.vault_token_account(owner.pubkey(), sol)
    route = bed.amm.swap_accounts(vault, bed.usdc, sol, vin, vout)
    data = bed.amm.swap_data(route_amount or amount_in, 1) if route_data is None else route_data
    ix = bed.vault.bot_trade(
        owner.pubkey(), bot.pubkey(), bed.usdc, sol, bed.amm.program_id, amount_in, minimum_out, data, route
    )
    return bed.send([ix], [bot])
