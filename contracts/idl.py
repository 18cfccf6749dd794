"""The Anchor IDL JSON of both programs, generated from `contracts.definitions`.

Owns: rendering the definitions in the pre-0.30 Anchor IDL format (camelCase instruction, account
and field names; `isMut`/`isSigner`; `publicKey`) that anchorpy 0.21 loads, and the checked-in files
`contracts/idl/xorj_vault.json` and `contracts/idl/xorj_amm.json`. A test fails when the files
and the definitions disagree; regenerate with `python -m contracts idl`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from contracts.borsh import Fields, IdlType
from contracts.definitions import AMM, VAULT, ProgramDef

IDL_DIR = Path(__file__).resolve().parent / "idl"
PROGRAMS: tuple[ProgramDef, ...] = (VAULT, AMM)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _type(typ: IdlType) -> Any:
    return typ


def _fields(fields: Fields) -> list[dict[str, Any]]:
    return [{"name": camel(name), "type": _type(typ)} for name, typ in fields]


def render(program: ProgramDef) -> dict[str, Any]:
    return {
        "version": program.version,
        "name": program.name,
        "instructions": [
            {
                "name": camel(ix.name),
                "accounts": [
                    {"name": camel(a.name), "isMut": a.writable, "isSigner": a.signer} for a in ix.accounts
                ],
                "args": _fields(ix.args),
            }
            for ix in program.instructions
        ],
        "accounts": [
            {"name": t.name, "type": {"kind": "struct", "fields": _fields(t.fields)}}
            for t in program.accounts
        ],
        "events": [
            {"name": t.name, "fields": [{**f, "index": False} for f in _fields(t.fields)]}
            for t in program.events
        ],
        "errors": [{"code": e.code, "name": e.name, "msg": e.msg} for e in program.errors],
    }


def render_text(program: ProgramDef) -> str:
    return json.dumps(render(program), indent=2) + "\n"


def idl_path(program: ProgramDef) -> Path:
    return IDL_DIR / f"{program.name}.json"


def write_all() -> list[Path]:
    IDL_DIR.mkdir(exist_ok=True)
    paths = []
    for program in PROGRAMS:
        path = idl_path(program)
        path.write_text(render_text(program))
        paths.append(path)
    return paths
