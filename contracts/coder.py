"""Encoding instructions and decoding accounts and events from `contracts.definitions`.

Owns: the Anchor wire format -- discriminator + borsh arguments for instructions, discriminator +
borsh fields for accounts, `Program data: <base64>` log lines for events. The typed clients
(`vault_client`, `amm_client`) are thin layers over this.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from contracts.borsh import BorshError, decode_struct, encode_struct
from contracts.definitions import InstructionDef, TypeDef

PROGRAM_DATA_PREFIX = "Program data: "


class DecodeError(ValueError):
    """Bytes that are not the declared account or event."""


def encode_instruction_data(ix: InstructionDef, args: Mapping[str, Any]) -> bytes:
    return ix.discriminator + encode_struct(ix.args, dict(args))


def build_instruction(
    program_id: Pubkey,
    ix: InstructionDef,
    accounts: Mapping[str, Pubkey],
    args: Mapping[str, Any] | None = None,
    remaining: Sequence[AccountMeta] = (),
) -> Instruction:
    """The instruction `ix` with its declared accounts in order, then `remaining`."""
    missing = [a.name for a in ix.accounts if a.name not in accounts]
    if missing:
        raise KeyError(f"{ix.name}: missing accounts {missing}")
    metas = [AccountMeta(accounts[a.name], a.signer, a.writable) for a in ix.accounts]
    return Instruction(program_id, encode_instruction_data(ix, args or {}), [*metas, *remaining])


def decode_typed(typedef: TypeDef, data: bytes) -> dict[str, Any]:
    """Decode an account's data or an event's payload (discriminator first); trailing bytes allowed."""
    if data[:8] != typedef.discriminator:
        raise DecodeError(f"not a {typedef.name}: discriminator {data[:8].hex()}")
    try:
        values, _ = decode_struct(typedef.fields, data, 8)
    except BorshError as exc:
        raise DecodeError(f"{typedef.name}: {exc}") from exc
    return values


def events_in_logs(typedef: TypeDef, logs: Iterable[str]) -> list[dict[str, Any]]:
    """Every `typedef` event among a transaction's `Program data:` log lines."""
    out = []
    for line in logs:
        if not line.startswith(PROGRAM_DATA_PREFIX):
            continue
        try:
            raw = base64.b64decode(line[len(PROGRAM_DATA_PREFIX) :].split(" ")[0], validate=True)
        except binascii.Error:
            continue
        if raw[:8] == typedef.discriminator:
            out.append(decode_typed(typedef, raw))
    return out
