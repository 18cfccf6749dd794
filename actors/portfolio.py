"""Portfolio reads: what a trader's wallet and a user's vault hold on chain, and value weights.

Owns: decoding SPL token accounts (mint at bytes 0..32, amount u64 LE at 64..72) and mints
(decimals at byte 44) from base64 account data, and the two reads the executor makes before it
plans (`actors.planning`):

- `trader_holdings`: one ``getTokenAccountsByOwner`` (program = SPL Token) for the followed
  wallet, summed per mint, zero balances skipped; the decimals of a mint not in ``decimals`` are
  read with one ``getMultipleAccounts`` over those mints;
- `vault_holdings`: one ``getMultipleAccounts`` over the vault PDA's associated token accounts of
  the given mints; an account that does not exist holds 0.

`weights` / `unpriced` turn holdings and prices into value shares; a mint without a price is left
out of the weights (never guessed) and named by `unpriced`.

Failure it contains: an account that is not what it should be (not an SPL token account, another
mint at a vault ATA, a mint that does not exist) is a `PortfolioError`, never a silent zero. RPC
errors propagate typed (`actors.rpc_client.RpcError`); each read runs under its ``timeout``, the
whole read's deadline (a two-call read shares it).

May import: the standard library, trio, attrs, solders, `contracts` (pda, vault client),
`actors.rpc_client`. Never imports `engine`.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Final

import attrs
import trio
from solders.account import Account
from solders.pubkey import Pubkey
from solders.rpc.config import RpcTokenAccountsFilterProgramId

from actors.rpc_client import SolanaRpc
from contracts.pda import TOKEN_PROGRAM_ID
from contracts.vault_client import VaultClient

__all__ = [
    "TOKEN_ACCOUNT_SIZE",
    "Holding",
    "PortfolioError",
    "decode_mint_decimals",
    "decode_token_account",
    "trader_holdings",
    "unpriced",
    "vault_holdings",
    "weights",
]

TOKEN_ACCOUNT_SIZE: Final = 165
MINT_SIZE: Final = 82
MAX_MULTIPLE_ACCOUNTS: Final = 100  # getMultipleAccounts' limit per call


class PortfolioError(Exception):
    """An account the portfolio read depends on is missing or not what it should be."""


@attrs.frozen
class Holding:
    """``amount`` base units of ``mint`` (``decimals`` places)."""

    mint: str
    amount: int
    decimals: int

    @property
    def ui(self) -> float:
        return float(self.amount / 10**self.decimals)


def decode_token_account(data: bytes) -> tuple[str, int]:
    """(mint, amount) of an SPL token account's data."""
    if len(data) != TOKEN_ACCOUNT_SIZE:
        raise PortfolioError(f"not an SPL token account: {len(data)} bytes")
    (amount,) = struct.unpack_from("<Q", data, 64)
    return str(Pubkey.from_bytes(data[:32])), int(amount)


def decode_mint_decimals(data: bytes) -> int:
    if len(data) != MINT_SIZE:
        raise PortfolioError(f"not an SPL mint: {len(data)} bytes")
    return data[44]


def _remaining(deadline: float) -> float:
    # A non-positive budget still reaches the client, which fails at once with RpcTimeout.
    return max(deadline - trio.current_time(), 1e-6)


async def _accounts(
    rpc: SolanaRpc, keys: Sequence[Pubkey], deadline: float
) -> list[Account | None]:
    out: list[Account | None] = []
    for start in range(0, len(keys), MAX_MULTIPLE_ACCOUNTS):
        chunk = keys[start : start + MAX_MULTIPLE_ACCOUNTS]
        answer = await rpc.get_multiple_accounts(chunk, timeout=_remaining(deadline))
        out.extend(answer.value)
    return out


async def trader_holdings(
    rpc: SolanaRpc, wallet: str, decimals: Mapping[str, int] | None = None, *, timeout: float
) -> dict[str, Holding]:
    """Every SPL token the wallet holds (non-zero), summed over its token accounts, by mint."""
    deadline = trio.current_time() + timeout
    answer = await rpc.get_token_accounts_by_owner(
        Pubkey.from_string(wallet), RpcTokenAccountsFilterProgramId(TOKEN_PROGRAM_ID),
        timeout=_remaining(deadline))
    amounts: dict[str, int] = {}
    for keyed in answer.value:
        account = keyed.account
        if not isinstance(account, Account):  # jsonParsed answers are never asked for
            raise PortfolioError(f"token account {keyed.pubkey} came back parsed, not as bytes")
        if account.owner != TOKEN_PROGRAM_ID:
            raise PortfolioError(f"token account {keyed.pubkey} is owned by {account.owner}")
        mint, amount = decode_token_account(bytes(account.data))
        amounts[mint] = amounts.get(mint, 0) + amount
    held = {mint: amount for mint, amount in amounts.items() if amount > 0}
    known = dict(decimals or {})
    missing = sorted(m for m in held if m not in known)
    if missing:
        mints = await _accounts(rpc, [Pubkey.from_string(m) for m in missing], deadline)
        for mint, info in zip(missing, mints, strict=True):
            if info is None or info.owner != TOKEN_PROGRAM_ID:
                raise PortfolioError(f"mint {mint} held by {wallet} is not an SPL mint")
            known[mint] = decode_mint_decimals(bytes(info.data))
    return {mint: Holding(mint, amount, known[mint]) for mint, amount in held.items()}


async def vault_holdings(
    rpc: SolanaRpc, vault: VaultClient, owner: Pubkey, mints: Mapping[str, int], *, timeout: float
) -> dict[str, Holding]:
    """What the owner's vault holds of each of ``mints`` (mint -> decimals), zeros included."""
    deadline = trio.current_time() + timeout
    order = list(mints)
    keys = [vault.vault_token_account(owner, Pubkey.from_string(m)) for m in order]
    accounts = await _accounts(rpc, keys, deadline)
    out: dict[str, Holding] = {}
    for mint, key, account in zip(order, keys, accounts, strict=True):
        amount = 0
        if account is not None:
            if account.owner != TOKEN_PROGRAM_ID:
                raise PortfolioError(f"vault token account {key} is owned by {account.owner}")
            found, amount = decode_token_account(bytes(account.data))
            if found != mint:
                raise PortfolioError(f"vault token account {key} holds {found}, expected {mint}")
        out[mint] = Holding(mint, amount, mints[mint])
    return out


def _price(mint: str, prices: Mapping[str, float], usdc_mint: str | None) -> float | None:
    price = prices.get(mint)
    if price is None and mint == usdc_mint:
        return 1.0
    return price


def weights(
    holdings: Mapping[str, Holding], prices: Mapping[str, float], *, usdc_mint: str | None = None
) -> dict[str, float]:
    """Each priced mint's share of the priced value (sums to 1 when that value is > 0, else {}).

    ``usdc_mint`` is valued at 1.0 when ``prices`` has no price for it."""
    values = {}
    for mint, holding in holdings.items():
        price = _price(mint, prices, usdc_mint)
        if price is not None and holding.amount > 0:
            values[mint] = holding.ui * price
    total = sum(values.values())
    if total <= 0:
        return {}
    return {mint: value / total for mint, value in values.items()}


def unpriced(
    holdings: Mapping[str, Holding], prices: Mapping[str, float], *, usdc_mint: str | None = None
) -> frozenset[str]:
    """The held mints (non-zero) that `weights` leaves out for want of a price."""
    return frozenset(m for m, h in holdings.items()
                     if h.amount > 0 and _price(m, prices, usdc_mint) is None)
