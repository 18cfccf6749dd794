"""``jsonParsed`` instructions: the validator's parsed shapes for the programs the local chain uses.

Owns: rendering one compiled instruction (top-level or inner) as the RPC's jsonParsed object. The
System program (transfer, createAccount), SPL Token (transfer, transferChecked, mintTo,
mintToChecked, initializeMint, initializeAccount3, closeAccount), the Associated Token Account
program (create, createIdempotent) and Memo are parsed as a validator parses them; any other
instruction is answered in the validator's "partially decoded" form (accounts, base58 data,
programId), which is also what a validator does for a program it has no parser for.

May import: the standard library, solders, localnet.base58, localnet.token_state.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

from solders.pubkey import Pubkey

from localnet.base58 import b58encode
from localnet.token_state import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID, ui_token_amount

__all__ = ["parse_instruction"]

SYSTEM_PROGRAM_ID: Final = Pubkey.default()
ATA_PROGRAM_ID: Final = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
MEMO_PROGRAM_ID: Final = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")

Parsed = tuple[str, object] | None  # (program name, parsed value)


def _system(accounts: Sequence[str], data: bytes) -> Parsed:
    if len(data) < 4:
        return None
    (kind,) = struct.unpack_from("<I", data, 0)
    if kind == 2 and len(data) >= 12 and len(accounts) >= 2:
        (lamports,) = struct.unpack_from("<Q", data, 4)
        info = {"destination": accounts[1], "lamports": lamports, "source": accounts[0]}
        return "system", {"info": info, "type": "transfer"}
    if kind == 0 and len(data) >= 52 and len(accounts) >= 2:
        lamports, space = struct.unpack_from("<QQ", data, 4)
        info = {
            "lamports": lamports,
            "newAccount": accounts[1],
            "owner": str(Pubkey.from_bytes(data[20:52])),
            "source": accounts[0],
            "space": space,
        }
        return "system", {"info": info, "type": "createAccount"}
    return None


def _token(program: str, accounts: Sequence[str], data: bytes) -> Parsed:
    if not data:
        return None
    tag = data[0]
    info: dict[str, object]
    if tag == 3 and len(data) >= 9 and len(accounts) >= 3:
        (amount,) = struct.unpack_from("<Q", data, 1)
        info = {
            "amount": str(amount),
            "authority": accounts[2],
            "destination": accounts[1],
            "source": accounts[0],
        }
        return program, {"info": info, "type": "transfer"}
    if tag == 12 and len(data) >= 10 and len(accounts) >= 4:
        (amount,) = struct.unpack_from("<Q", data, 1)
        info = {
            "authority": accounts[3],
            "destination": accounts[2],
            "mint": accounts[1],
            "source": accounts[0],
            "tokenAmount": ui_token_amount(amount, data[9]),
        }
        return program, {"info": info, "type": "transferChecked"}
    if tag == 7 and len(data) >= 9 and len(accounts) >= 3:
        (amount,) = struct.unpack_from("<Q", data, 1)
        info = {
            "account": accounts[1],
            "amount": str(amount),
            "mint": accounts[0],
            "mintAuthority": accounts[2],
        }
        return program, {"info": info, "type": "mintTo"}
    if tag == 14 and len(data) >= 10 and len(accounts) >= 3:
        (amount,) = struct.unpack_from("<Q", data, 1)
        info = {
            "account": accounts[1],
            "mint": accounts[0],
            "mintAuthority": accounts[2],
            "tokenAmount": ui_token_amount(amount, data[9]),
        }
        return program, {"info": info, "type": "mintToChecked"}
    if tag == 0 and len(data) >= 35 and len(accounts) >= 2:
        info = {
            "decimals": data[1],
            "mint": accounts[0],
            "mintAuthority": str(Pubkey.from_bytes(data[2:34])),
            "rentSysvar": accounts[1],
        }
        if data[34] == 1 and len(data) >= 67:
            info["freezeAuthority"] = str(Pubkey.from_bytes(data[35:67]))
        return program, {"info": info, "type": "initializeMint"}
    if tag == 18 and len(data) >= 33 and len(accounts) >= 2:
        info = {"account": accounts[0], "mint": accounts[1], "owner": str(Pubkey.from_bytes(data[1:33]))}
        return program, {"info": info, "type": "initializeAccount3"}
    if tag == 9 and len(accounts) >= 3:
        info = {"account": accounts[0], "destination": accounts[1], "owner": accounts[2]}
        return program, {"info": info, "type": "closeAccount"}
    return None


def _associated_token(accounts: Sequence[str], data: bytes) -> Parsed:
    if len(accounts) < 6 or (data and data[0] not in (0, 1)):
        return None
    kind = "createIdempotent" if data and data[0] == 1 else "create"
    info = {
        "account": accounts[1],
        "mint": accounts[3],
        "source": accounts[0],
        "systemProgram": accounts[4],
        "tokenProgram": accounts[5],
        "wallet": accounts[2],
    }
    return "spl-associated-token-account", {"info": info, "type": kind}


def _parse(program_id: Pubkey, accounts: Sequence[str], data: bytes) -> Parsed:
    if program_id == SYSTEM_PROGRAM_ID:
        return _system(accounts, data)
    if program_id == TOKEN_PROGRAM_ID:
        return _token("spl-token", accounts, data)
    if program_id == TOKEN_2022_PROGRAM_ID:
        return _token("spl-token-2022", accounts, data)
    if program_id == ATA_PROGRAM_ID:
        return _associated_token(accounts, data)
    if program_id == MEMO_PROGRAM_ID:
        try:
            return "spl-memo", data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def parse_instruction(
    program_id: Pubkey, accounts: Sequence[Pubkey], data: bytes, stack_height: int | None
) -> dict[str, object]:
    """One instruction in the RPC's jsonParsed form (parsed when known, partially decoded otherwise)."""
    names = [str(account) for account in accounts]
    parsed = _parse(program_id, names, data)
    if parsed is None:
        return {
            "accounts": names,
            "data": b58encode(data),
            "programId": str(program_id),
            "stackHeight": stack_height,
        }
    program, value = parsed
    return {"parsed": value, "program": program, "programId": str(program_id), "stackHeight": stack_height}
