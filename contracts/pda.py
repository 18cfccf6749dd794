"""Program-derived addresses of the vault and the AMM, and the associated token accounts.

Owns: every seed layout the programs use, so no other module spells a seed.

Every derivation is a pure function of its arguments and costs a ``find_program_address`` (~100 us,
up to 255 hashes), so each is memoised in a bounded LRU cache: an executor derives the same vault
and token accounts at every decision. The bounds hold every account of ``_USERS_CACHED`` users.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from solders.pubkey import Pubkey

_USERS_CACHED: Final = 20_000  # vaults
_TOKEN_ACCOUNTS_PER_USER: Final = 8  # a vault's token accounts: one per market mint

TOKEN_PROGRAM_ID = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
ASSOCIATED_TOKEN_PROGRAM_ID = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
SYSTEM_PROGRAM_ID = Pubkey.from_string("11111111111111111111111111111111")
BPF_LOADER_UPGRADEABLE_ID = Pubkey.from_string("BPFLoaderUpgradeab1e11111111111111111111111")


@lru_cache(maxsize=_USERS_CACHED)
def vault_address(owner: Pubkey, vault_program: Pubkey) -> tuple[Pubkey, int]:
    return Pubkey.find_program_address([b"vault", bytes(owner)], vault_program)


@lru_cache(maxsize=64)
def config_address(vault_program: Pubkey) -> tuple[Pubkey, int]:
    return Pubkey.find_program_address([b"config"], vault_program)


@lru_cache(maxsize=64)
def program_data_address(program: Pubkey) -> Pubkey:
    return Pubkey.find_program_address([bytes(program)], BPF_LOADER_UPGRADEABLE_ID)[0]


def sorted_mints(mint_x: Pubkey, mint_y: Pubkey) -> tuple[Pubkey, Pubkey]:
    """The pool's (mint_a, mint_b): bytewise order, so each pair has one pool."""
    return (mint_x, mint_y) if bytes(mint_x) < bytes(mint_y) else (mint_y, mint_x)


@lru_cache(maxsize=1024)
def pool_address(mint_x: Pubkey, mint_y: Pubkey, amm_program: Pubkey) -> tuple[Pubkey, int]:
    mint_a, mint_b = sorted_mints(mint_x, mint_y)
    return Pubkey.find_program_address([b"pool", bytes(mint_a), bytes(mint_b)], amm_program)


@lru_cache(maxsize=_TOKEN_ACCOUNTS_PER_USER * _USERS_CACHED)
def associated_token_address(wallet: Pubkey, mint: Pubkey) -> Pubkey:
    """The associated token account; `wallet` may be a PDA (off the curve)."""
    return Pubkey.find_program_address(
        [bytes(wallet), bytes(TOKEN_PROGRAM_ID), bytes(mint)], ASSOCIATED_TOKEN_PROGRAM_ID
    )[0]
