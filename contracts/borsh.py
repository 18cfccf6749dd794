"""A tiny borsh codec for the types the two programs use, driven by Anchor IDL type names.

Owns: encoding and decoding of `u8 u16 u32 u64 i64 bool publicKey bytes {"vec": T} {"option": T}`
and structs given as `(name, type)` field lists. Chosen over `borsh-construct` (not installed,
unmaintained since 2022, pins older `construct`): the subset we need is ~60 lines and its types are
exactly the IDL's, so the client and the IDL JSON share one description.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, TypeAlias

from solders.pubkey import Pubkey

IdlType: TypeAlias = "str | dict[str, IdlType]"
Fields = Sequence[tuple[str, IdlType]]

_INTS = {"u8": "<B", "u16": "<H", "u32": "<I", "u64": "<Q", "i64": "<q", "i32": "<i", "bool": "<?"}


class BorshError(ValueError):
    """Bytes that do not decode as the declared type."""


def encode(typ: IdlType, value: Any) -> bytes:
    if isinstance(typ, str):
        if typ in _INTS:
            return struct.pack(_INTS[typ], value)
        if typ == "publicKey":
            return bytes(value)
        if typ == "bytes":
            return struct.pack("<I", len(value)) + bytes(value)
        raise BorshError(f"unknown type {typ!r}")
    if "vec" in typ:
        return struct.pack("<I", len(value)) + b"".join(encode(typ["vec"], v) for v in value)
    if "option" in typ:
        return b"\0" if value is None else b"\1" + encode(typ["option"], value)
    raise BorshError(f"unknown type {typ!r}")


def decode(typ: IdlType, data: bytes, offset: int = 0) -> tuple[Any, int]:
    """Decode one value at `offset`; return it and the offset after it."""
    try:
        if isinstance(typ, str):
            if typ in _INTS:
                fmt = _INTS[typ]
                (value,) = struct.unpack_from(fmt, data, offset)
                if typ == "bool" and data[offset] > 1:
                    raise BorshError(f"bool byte {data[offset]}")
                return value, offset + struct.calcsize(fmt)
            if typ == "publicKey":
                if offset + 32 > len(data):
                    raise BorshError("short publicKey")
                return Pubkey.from_bytes(data[offset : offset + 32]), offset + 32
            if typ == "bytes":
                (n,) = struct.unpack_from("<I", data, offset)
                if offset + 4 + n > len(data):
                    raise BorshError("short bytes")
                return data[offset + 4 : offset + 4 + n], offset + 4 + n
        elif "vec" in typ:
            (n,) = struct.unpack_from("<I", data, offset)
            offset += 4
            items = []
            for _ in range(n):
                item, offset = decode(typ["vec"], data, offset)
                items.append(item)
            return items, offset
        elif "option" in typ:
            tag = data[offset]
            if tag == 0:
                return None, offset + 1
            if tag != 1:
                raise BorshError(f"option tag {tag}")
            return decode(typ["option"], data, offset + 1)
    except (struct.error, IndexError) as exc:
        raise BorshError(f"truncated {typ!r} at {offset}") from exc
    raise BorshError(f"unknown type {typ!r}")


def encode_struct(fields: Fields, values: dict[str, Any]) -> bytes:
    return b"".join(encode(typ, values[name]) for name, typ in fields)


def decode_struct(fields: Fields, data: bytes, offset: int = 0) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    for name, typ in fields:
        out[name], offset = decode(typ, data, offset)
    return out, offset
