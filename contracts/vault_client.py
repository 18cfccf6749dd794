"""The vault program's Python client: instruction builders, account and event decoders.

Owns: the typed face of the vault's interface (contracts/definitions.py holds the encodings).
Builders return solders `Instruction`s; callers sign and send them (LiteSVM in tests, RPC later).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from contracts.coder import build_instruction, decode_typed, events_in_logs
from contracts.definitions import VAULT
from contracts.pda import (
    SYSTEM_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    associated_token_address,
    config_address,
    program_data_address,
    vault_address,
)

VAULT_ACCOUNT_SIZE = 91
DEPOSIT_CAP = 1_000_000_000  # 1,000 USDC, 6 decimals: the canary cap, cumulative per vault


@attrs.frozen
class VaultAccount:
    owner: Pubkey
    total_deposited: int
    bot_authority: Pubkey | None
    is_active: bool
    created_at: int
    bump: int


@attrs.frozen
class VaultConfig:
    admin: Pubkey
    usdc_mint: Pubkey
    swap_programs: tuple[Pubkey, ...]
    bump: int


@attrs.frozen
class TradeExecuted:
    vault: Pubkey
    bot_authority: Pubkey
    input_mint: Pubkey
    output_mint: Pubkey
    amount_in: int
    amount_out: int
    minimum_amount_out: int
    timestamp: int


def decode_vault(data: bytes) -> VaultAccount:
    return VaultAccount(**decode_typed(VAULT.accounts[0], data))


def decode_config(data: bytes) -> VaultConfig:
    values = decode_typed(VAULT.accounts[1], data)
    values["swap_programs"] = tuple(values["swap_programs"])
    return VaultConfig(**values)


def trade_events(logs: Iterable[str]) -> list[TradeExecuted]:
    return [TradeExecuted(**e) for e in events_in_logs(VAULT.events[0], logs)]


@attrs.frozen
class VaultClient:
    """Instruction builders for one deployed vault program."""

    program_id: Pubkey

    def vault(self, owner: Pubkey) -> Pubkey:
        return vault_address(owner, self.program_id)[0]

    def config(self) -> Pubkey:
        return config_address(self.program_id)[0]

    def vault_token_account(self, owner: Pubkey, mint: Pubkey) -> Pubkey:
        """The vault PDA's associated token account for `mint`."""
        return associated_token_address(self.vault(owner), mint)

    def _ix(
        self,
        name: str,
        accounts: dict[str, Pubkey],
        args: dict[str, object] | None = None,
        remaining: Sequence[AccountMeta] = (),
    ) -> Instruction:
        return build_instruction(self.program_id, VAULT.instruction(name), accounts, args, remaining)

    def initialize_config(
        self, admin: Pubkey, usdc_mint: Pubkey, swap_programs: Sequence[Pubkey]
    ) -> Instruction:
        return self._ix(
            "initialize_config",
            {
                "config": self.config(),
                "admin": admin,
                "program_data": program_data_address(self.program_id),
                "system_program": SYSTEM_PROGRAM_ID,
            },
            {"usdc_mint": usdc_mint, "swap_programs": list(swap_programs)},
        )

    def set_swap_programs(self, admin: Pubkey, swap_programs: Sequence[Pubkey]) -> Instruction:
        return self._ix(
            "set_swap_programs",
            {"config": self.config(), "admin": admin},
            {"swap_programs": list(swap_programs)},
        )

    def initialize_vault(self, owner: Pubkey) -> Instruction:
        return self._ix(
            "initialize_vault",
            {"vault": self.vault(owner), "owner": owner, "system_program": SYSTEM_PROGRAM_ID},
        )

    def deposit(self, owner: Pubkey, user_token_account: Pubkey, mint: Pubkey, amount: int) -> Instruction:
        return self._ix(
            "deposit",
            {
                "vault": self.vault(owner),
                "owner": owner,
                "user_token_account": user_token_account,
                "vault_token_account": self.vault_token_account(owner, mint),
                "mint": mint,
                "token_program": TOKEN_PROGRAM_ID,
                "config": self.config(),
            },
            {"amount": amount},
        )

    def withdraw(self, owner: Pubkey, user_token_account: Pubkey, mint: Pubkey, amount: int) -> Instruction:
        return self._ix(
            "withdraw",
            {
                "vault": self.vault(owner),
                "owner": owner,
                "user_token_account": user_token_account,
                "vault_token_account": self.vault_token_account(owner, mint),
                "mint": mint,
                "token_program": TOKEN_PROGRAM_ID,
            },
            {"amount": amount},
        )

    def grant_bot_authority(self, owner: Pubkey, bot: Pubkey) -> Instruction:
        return self._ix(
            "grant_bot_authority", {"vault": self.vault(owner), "owner": owner, "bot_authority": bot}
        )

    def revoke_bot_authority(self, owner: Pubkey) -> Instruction:
        return self._ix("revoke_bot_authority", {"vault": self.vault(owner), "owner": owner})

    def deactivate_vault(self, owner: Pubkey) -> Instruction:
        return self._ix("deactivate_vault", {"vault": self.vault(owner), "owner": owner})

    def bot_trade(
        self,
        owner: Pubkey,
        bot: Pubkey,
        input_mint: Pubkey,
        output_mint: Pubkey,
        swap_program: Pubkey,
        amount_in: int,
        minimum_amount_out: int,
        route_data: bytes,
        route_accounts: Sequence[AccountMeta],
    ) -> Instruction:
        """A trade from the vault's `input_mint` account to its `output_mint` account through
        `swap_program`; `route_data` is the swap's instruction data, `route_accounts` its accounts
        (the vault PDA among them as a non-signer: the vault signs for itself in the CPI)."""
        return self._ix(
            "bot_trade",
            {
                "vault": self.vault(owner),
                "bot_authority": bot,
                "vault_input_token_account": self.vault_token_account(owner, input_mint),
                "vault_output_token_account": self.vault_token_account(owner, output_mint),
                "input_mint": input_mint,
                "output_mint": output_mint,
                "swap_program": swap_program,
                "token_program": TOKEN_PROGRAM_ID,
                "config": self.config(),
            },
            {"amount_in": amount_in, "minimum_amount_out": minimum_amount_out, "route_data": route_data},
            route_accounts,
        )
