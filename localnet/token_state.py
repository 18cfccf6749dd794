"""SPL Token account and mint layouts, read the way a validator's RPC reads them.

Owns: decoding the 165-byte token account and 82-byte mint layouts of the SPL Token program (and
the same base layouts under Token-2022), and rendering them as the RPC's ``uiTokenAmount`` and
``jsonParsed`` shapes. Pure functions over bytes; no chain access, so the chain and the RPC layer
share one reading of token state.

May import: the standard library, attrs, solders.
"""

from __future__ import annotations

import struct
from decimal import Decimal
from typing import Final

import attrs
from solders.pubkey import Pubkey

__all__ = [
    "TOKEN_2022_PROGRAM_ID",
    "TOKEN_PROGRAMS",
    "TOKEN_PROGRAM_ID",
    "MintState",
    "TokenAccountState",
    "mint_json_parsed",
    "parse_mint",
    "parse_token_account",
    "token_account_json_parsed",
    "ui_token_amount",
]

TOKEN_PROGRAM_ID: Final = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
TOKEN_2022_PROGRAM_ID: Final = Pubkey.from_string("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")
TOKEN_PROGRAMS: Final = frozenset({TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID})

TOKEN_ACCOUNT_LEN: Final = 165
MINT_LEN: Final = 82
_ACCOUNT_TYPE_OFFSET: Final = 165  # Token-2022 extensions: byte 165 says 1 = mint, 2 = account
_STATES: Final = ("uninitialized", "initialized", "frozen")


@attrs.frozen
class TokenAccountState:
    """The base fields of a token account."""

    mint: Pubkey
    owner: Pubkey
    amount: int
    delegate: Pubkey | None
    state: str
    is_native: int | None
    delegated_amount: int
    close_authority: Pubkey | None


@attrs.frozen
class MintState:
    """The base fields of a mint."""

    mint_authority: Pubkey | None
    supply: int
    decimals: int
    is_initialized: bool
    freeze_authority: Pubkey | None


def _coption_pubkey(data: bytes, offset: int) -> Pubkey | None:
    (tag,) = struct.unpack_from("<I", data, offset)
    return Pubkey.from_bytes(data[offset + 4 : offset + 36]) if tag == 1 else None


def _is_token_account_bytes(data: bytes) -> bool:
    if len(data) == TOKEN_ACCOUNT_LEN:
        return True
    return len(data) > TOKEN_ACCOUNT_LEN and data[_ACCOUNT_TYPE_OFFSET] == 2


def _is_mint_bytes(data: bytes) -> bool:
    if len(data) == MINT_LEN:
        return True
    return len(data) > TOKEN_ACCOUNT_LEN and data[_ACCOUNT_TYPE_OFFSET] == 1


def parse_token_account(owner_program: Pubkey, data: bytes) -> TokenAccountState | None:
    """The token account in ``data``, or None when it is not an initialized token account."""
    if owner_program not in TOKEN_PROGRAMS or not _is_token_account_bytes(data):
        return None
    state = data[108]
    if state == 0 or state >= len(_STATES):
        return None
    (native_tag,) = struct.unpack_from("<I", data, 109)
    return TokenAccountState(
        mint=Pubkey.from_bytes(data[0:32]),
        owner=Pubkey.from_bytes(data[32:64]),
        amount=struct.unpack_from("<Q", data, 64)[0],
        delegate=_coption_pubkey(data, 72),
        state=_STATES[state],
        is_native=struct.unpack_from("<Q", data, 113)[0] if native_tag == 1 else None,
        delegated_amount=struct.unpack_from("<Q", data, 121)[0],
        close_authority=_coption_pubkey(data, 129),
    )


def parse_mint(owner_program: Pubkey, data: bytes) -> MintState | None:
    """The mint in ``data``, or None when it is not an initialized mint."""
    if owner_program not in TOKEN_PROGRAMS or not _is_mint_bytes(data) or data[45] == 0:
        return None
    return MintState(
        mint_authority=_coption_pubkey(data, 0),
        supply=struct.unpack_from("<Q", data, 36)[0],
        decimals=data[44],
        is_initialized=True,
        freeze_authority=_coption_pubkey(data, 46),
    )


def ui_token_amount(amount: int, decimals: int) -> dict[str, object]:
    """The RPC's ``uiTokenAmount``: the raw amount as a string, the decimal as float and string."""
    scaled = Decimal(amount).scaleb(-decimals)
    text = format(scaled, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return {
        "amount": str(amount),
        "decimals": decimals,
        "uiAmount": float(scaled),
        "uiAmountString": text,
    }


def token_account_json_parsed(account: TokenAccountState, decimals: int) -> dict[str, object]:
    """``getAccountInfo`` jsonParsed ``parsed`` object of a token account."""
    info: dict[str, object] = {
        "isNative": account.is_native is not None,
        "mint": str(account.mint),
        "owner": str(account.owner),
        "state": account.state,
        "tokenAmount": ui_token_amount(account.amount, decimals),
    }
    if account.delegate is not None:
        info["delegate"] = str(account.delegate)
        info["delegatedAmount"] = ui_token_amount(account.delegated_amount, decimals)
    if account.close_authority is not None:
        info["closeAuthority"] = str(account.close_authority)
    if account.is_native is not None:
        info["rentExemptReserve"] = ui_token_amount(account.is_native, decimals)
    return {"info": info, "type": "account"}


def mint_json_parsed(mint: MintState) -> dict[str, object]:
    """``getAccountInfo`` jsonParsed ``parsed`` object of a mint."""
    return {
        "info": {
            "decimals": mint.decimals,
            "freezeAuthority": None if mint.freeze_authority is None else str(mint.freeze_authority),
            "isInitialized": mint.is_initialized,
            "mintAuthority": None if mint.mint_authority is None else str(mint.mint_authority),
            "supply": str(mint.supply),
        },
        "type": "mint",
    }
