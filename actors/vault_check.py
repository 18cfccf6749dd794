"""The enable check: does this owner's vault let this engine's bot trade for it?

Owns: `check_vault`, one ``getAccountInfo`` of the owner's vault PDA (confirmed commitment, under
the caller's deadline), and the `VaultCheck` it answers with. The bot is enabled for a user only
when the vault exists, belongs to the vault program, decodes, is active and names exactly this
engine's bot key as its authority; otherwise ``reason`` says which of these failed, naming the
vault PDA (and the other authority, when it is another bot's).

Failure it contains: a vault in any state but "ready" -- an answer (`VaultCheck(ok=False)`), not an
exception. An RPC failure is not contained: the typed `actors.rpc_client.RpcError` propagates, so
"the chain could not be asked" is never mistaken for "the vault refused".

May import: the standard library, attrs, solders, `contracts`, `actors.rpc_client`. Never `engine`.
"""

from __future__ import annotations

import attrs
from solders.commitment_config import CommitmentLevel
from solders.pubkey import Pubkey

from actors.rpc_client import SolanaRpc
from contracts.coder import DecodeError
from contracts.vault_client import VaultClient, decode_vault

__all__ = ["VaultCheck", "check_vault"]


@attrs.frozen
class VaultCheck:
    ok: bool
    vault_address: str  # the owner's vault PDA, checked or not
    reason: str | None = None  # None exactly when ok


async def check_vault(
    rpc: SolanaRpc, vault: VaultClient, owner: Pubkey, bot: Pubkey, *, timeout: float
) -> VaultCheck:
    address = vault.vault(owner)

    def refused(reason: str) -> VaultCheck:
        return VaultCheck(ok=False, vault_address=str(address), reason=reason)

    answer = await rpc.get_account_info(address, CommitmentLevel.Confirmed, timeout=timeout)
    account = answer.value
    if account is None:
        return refused(f"no vault account at {address}: the owner {owner} has not initialised a vault")
    if account.owner != vault.program_id:
        return refused(f"the account at {address} is not owned by the vault program {vault.program_id}"
                       f" (its owner is {account.owner})")
    try:
        state = decode_vault(bytes(account.data))
    except DecodeError as exc:
        return refused(f"the account at {address} cannot be decoded as a vault: {exc}")
    if not state.is_active:
        return refused(f"the vault {address} is inactive (deactivated by its owner)")
    if state.bot_authority is None:
        return refused(f"the vault {address} has granted no bot authority (its owner must grant {bot})")
    if state.bot_authority != bot:
        return refused(f"the vault {address} grants another bot authority, {state.bot_authority},"
                       f" not this engine's bot {bot}")
    return VaultCheck(ok=True, vault_address=str(address))
