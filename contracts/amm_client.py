"""The AMM program's Python client: pool PDAs, instruction builders, the pool decoder, the quote.

Owns: the typed face of the AMM's interface and `quote()`, the exact integer formula the C
program implements (tests compare the two).
"""

from __future__ import annotations

import attrs
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from contracts.coder import build_instruction, decode_typed, encode_instruction_data
from contracts.definitions import AMM
from contracts.pda import (
    SYSTEM_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    associated_token_address,
    pool_address,
    sorted_mints,
)

FEE_DENOMINATOR = 10_000


@attrs.frozen
class Pool:
    mint_a: Pubkey
    mint_b: Pubkey
    vault_a: Pubkey
    vault_b: Pubkey
    fee_bps: int
    bump: int


def decode_pool(data: bytes) -> Pool:
    return Pool(**decode_typed(AMM.accounts[0], data))


def quote(amount_in: int, reserve_in: int, reserve_out: int, fee_bps: int) -> int:
    """Constant-product output, rounded down in the pool's favour (the C program's formula)."""
    in_after_fee = amount_in * (FEE_DENOMINATOR - fee_bps) // FEE_DENOMINATOR
    return reserve_out * in_after_fee // (reserve_in + in_after_fee)


@attrs.frozen
class AmmClient:
    program_id: Pubkey

    def pool(self, mint_x: Pubkey, mint_y: Pubkey) -> Pubkey:
        return pool_address(mint_x, mint_y, self.program_id)[0]

    def pool_token_account(self, mint_x: Pubkey, mint_y: Pubkey, mint: Pubkey) -> Pubkey:
        """The pool PDA's associated token account for `mint`."""
        return associated_token_address(self.pool(mint_x, mint_y), mint)

    def initialize_pool(self, payer: Pubkey, mint_x: Pubkey, mint_y: Pubkey, fee_bps: int) -> Instruction:
        a, b = sorted_mints(mint_x, mint_y)
        return build_instruction(
            self.program_id,
            AMM.instruction("initialize_pool"),
            {
                "pool": self.pool(a, b),
                "payer": payer,
                "mint_a": a,
                "mint_b": b,
                "vault_a": self.pool_token_account(a, b, a),
                "vault_b": self.pool_token_account(a, b, b),
                "system_program": SYSTEM_PROGRAM_ID,
            },
            {"fee_bps": fee_bps},
        )

    def add_liquidity(
        self,
        provider: Pubkey,
        mint_x: Pubkey,
        mint_y: Pubkey,
        provider_x: Pubkey,
        provider_y: Pubkey,
        amount_x: int,
        amount_y: int,
    ) -> Instruction:
        a, _ = sorted_mints(mint_x, mint_y)
        if a != mint_x:
            provider_x, provider_y, amount_x, amount_y = provider_y, provider_x, amount_y, amount_x
            mint_x, mint_y = mint_y, mint_x
        return build_instruction(
            self.program_id,
            AMM.instruction("add_liquidity"),
            {
                "pool": self.pool(mint_x, mint_y),
                "provider": provider,
                "provider_a": provider_x,
                "provider_b": provider_y,
                "vault_a": self.pool_token_account(mint_x, mint_y, mint_x),
                "vault_b": self.pool_token_account(mint_x, mint_y, mint_y),
                "token_program": TOKEN_PROGRAM_ID,
            },
            {"amount_a": amount_x, "amount_b": amount_y},
        )

    def swap_accounts(
        self,
        authority: Pubkey,
        input_mint: Pubkey,
        output_mint: Pubkey,
        user_source: Pubkey,
        user_destination: Pubkey,
    ) -> list[AccountMeta]:
        """The swap's accounts in order; `authority` is marked non-signer so that it can be the vault PDA
        in a bot_trade route (use `swap()` for a direct swap)."""
        return [
            AccountMeta(self.pool(input_mint, output_mint), False, False),
            AccountMeta(authority, False, False),
            AccountMeta(user_source, False, True),
            AccountMeta(user_destination, False, True),
            AccountMeta(self.pool_token_account(input_mint, output_mint, input_mint), False, True),
            AccountMeta(self.pool_token_account(input_mint, output_mint, output_mint), False, True),
            AccountMeta(TOKEN_PROGRAM_ID, False, False),
        ]

    @staticmethod
    def swap_data(amount_in: int, minimum_amount_out: int) -> bytes:
        return encode_instruction_data(
            AMM.instruction("swap"), {"amount_in": amount_in, "minimum_amount_out": minimum_amount_out}
        )

    def swap(
        self,
        authority: Pubkey,
        input_mint: Pubkey,
        output_mint: Pubkey,
        user_source: Pubkey,
        user_destination: Pubkey,
        amount_in: int,
        minimum_amount_out: int,
    ) -> Instruction:
        metas = self.swap_accounts(authority, input_mint, output_mint, user_source, user_destination)
        metas[1] = AccountMeta(authority, True, False)
        return Instruction(self.program_id, self.swap_data(amount_in, minimum_amount_out), metas)
