"""A LiteSVM chain with the vault and the AMM really deployed: the bed for tests and benchmarks.

Owns: deploying both programs through the upgradeable loader, configuring the vault (USDC mint,
swap allow-list), creating mints, token accounts, pools and funded vaults, and sending
transactions with failures raised as the named exceptions of `contracts.errors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata, TransactionMetadata
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    initialize_mint,
    mint_to,
)
from spl.token.models import InitializeMintParams, MintToParams

from contracts.amm_client import AmmClient
from contracts.build import ensure_built
from contracts.deploy import deploy_upgradeable
from contracts.errors import raise_for_error
from contracts.pda import TOKEN_PROGRAM_ID, associated_token_address
from contracts.vault_client import VaultAccount, VaultClient, decode_vault

MINT_SIZE = 82
USDC_DECIMALS = 6


@attrs.define
class Testbed:
    __test__ = False  # not a pytest test class

    svm: LiteSVM
    admin: Keypair  # payer and upgrade authority of both programs
    vault: VaultClient
    amm: AmmClient
    usdc: Pubkey
    mint_authority: Keypair

    @classmethod
    def create(
        cls, programs: dict[str, Path] | None = None, swap_programs: Sequence[Pubkey] | None = None
    ) -> Testbed:
        """A fresh chain: both programs deployed, a USDC mint, the vault configured with the AMM allowed."""
        built = programs or ensure_built()
        svm = LiteSVM()
        admin = Keypair()
        svm.airdrop(admin.pubkey(), 1_000 * 10**9)
        vault_id = deploy_upgradeable(svm, admin, Keypair(), built["vault"].read_bytes())
        amm_id = deploy_upgradeable(svm, admin, Keypair(), built["amm"].read_bytes())
        clock = svm.get_clock()
        clock.unix_timestamp = 1_790_000_000
        svm.set_clock(clock)
        bed = cls(svm, admin, VaultClient(vault_id), AmmClient(amm_id), Pubkey.default(), Keypair())
        bed.usdc = bed.create_mint(USDC_DECIMALS)
        allowed = [amm_id] if swap_programs is None else list(swap_programs)
        bed.send([bed.vault.initialize_config(admin.pubkey(), bed.usdc, allowed)], [admin])
        return bed

    # ---- transactions ----

    def send(self, ixs: Sequence[Instruction], signers: Sequence[Keypair]) -> TransactionMetadata:
        """Send one transaction (first signer pays); raise the named error if it fails."""
        msg = Message.new_with_blockhash(list(ixs), signers[0].pubkey(), self.svm.latest_blockhash())
        result = self.svm.send_transaction(VersionedTransaction(msg, list(signers)))
        self.svm.expire_blockhash()
        if isinstance(result, FailedTransactionMetadata):
            raise_for_error(result.err(), tuple(result.meta().logs()), self.program_names)
        assert isinstance(result, TransactionMetadata)
        return result

    def funded_keypair(self, sol: int = 10) -> Keypair:
        kp = Keypair()
        self.svm.airdrop(kp.pubkey(), sol * 10**9)
        return kp

    @property
    def program_names(self) -> dict[str, str]:
        return {str(self.vault.program_id): "vault", str(self.amm.program_id): "amm"}

    # ---- tokens ----

    def create_mint(self, decimals: int) -> Pubkey:
        mint = Keypair()
        self.send(
            [
                create_account(
                    CreateAccountParams(
                        from_pubkey=self.admin.pubkey(),
                        to_pubkey=mint.pubkey(),
                        lamports=self.svm.minimum_balance_for_rent_exemption(MINT_SIZE),
                        space=MINT_SIZE,
                        owner=TOKEN_PROGRAM_ID,
                    )
                ),
                initialize_mint(
                    InitializeMintParams(
                        decimals=decimals,
                        program_id=TOKEN_PROGRAM_ID,
                        mint=mint.pubkey(),
                        mint_authority=self.mint_authority.pubkey(),
                        freeze_authority=None,
                    )
                ),
            ],
            [self.admin, mint],
        )
        return mint.pubkey()

    def token_account(self, wallet: Pubkey, mint: Pubkey) -> Pubkey:
        """The wallet's associated token account, created if missing (wallet may be a PDA)."""
        self.send(
            [create_idempotent_associated_token_account(self.admin.pubkey(), wallet, mint)], [self.admin]
        )
        return associated_token_address(wallet, mint)

    def mint_to(self, mint: Pubkey, account: Pubkey, amount: int) -> None:
        self.send(
            [
                mint_to(
                    MintToParams(
                        program_id=TOKEN_PROGRAM_ID,
                        mint=mint,
                        dest=account,
                        mint_authority=self.mint_authority.pubkey(),
                        amount=amount,
                    )
                )
            ],
            [self.admin, self.mint_authority],
        )

    def balance(self, token_account: Pubkey) -> int:
        account = self.svm.get_account(token_account)
        assert account is not None, f"no token account {token_account}"
        return int.from_bytes(bytes(account.data)[64:72], "little")

    # ---- vaults and pools ----

    def vault_state(self, owner: Pubkey) -> VaultAccount:
        account = self.svm.get_account(self.vault.vault(owner))
        assert account is not None, "vault not initialized"
        return decode_vault(bytes(account.data))

    def new_owner(self, usdc: int = 0) -> tuple[Keypair, Pubkey]:
        """An owner with an initialized vault (and its USDC token account) and `usdc` base units in hand."""
        owner = self.funded_keypair()
        self.send([self.vault.initialize_vault(owner.pubkey())], [owner])
        self.token_account(self.vault.vault(owner.pubkey()), self.usdc)
        user_usdc = self.token_account(owner.pubkey(), self.usdc)
        if usdc:
            self.mint_to(self.usdc, user_usdc, usdc)
        return owner, user_usdc

    def create_pool(
        self, mint_x: Pubkey, mint_y: Pubkey, amount_x: int, amount_y: int, fee_bps: int = 30
    ) -> Pubkey:
        pool = self.amm.pool(mint_x, mint_y)
        self.token_account(pool, mint_x)
        self.token_account(pool, mint_y)
        self.send([self.amm.initialize_pool(self.admin.pubkey(), mint_x, mint_y, fee_bps)], [self.admin])
        provider = self.funded_keypair()
        px, py = self.token_account(provider.pubkey(), mint_x), self.token_account(provider.pubkey(), mint_y)
        self.mint_to(mint_x, px, amount_x)
        self.mint_to(mint_y, py, amount_y)
        self.send(
            [self.amm.add_liquidity(provider.pubkey(), mint_x, mint_y, px, py, amount_x, amount_y)],
            [provider],
        )
        return pool
