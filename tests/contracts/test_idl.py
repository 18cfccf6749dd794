"""One description, no drift: the checked-in IDL JSON, the C constants (discriminators, error
numbers), the named exceptions and the client all agree with contracts/definitions.py."""

from __future__ import annotations

import hashlib
import json
import re

from contracts import errors
from contracts.borsh import decode_struct, encode_struct
from contracts.build import PROGRAMS_DIR
from contracts.definitions import AMM, VAULT
from contracts.idl import PROGRAMS, idl_path, render_text


def _c_defines(path: str, prefix: str) -> dict[str, int]:
    text = (PROGRAMS_DIR / path).read_text()
    return {m[1]: int(m[2], 0) for m in re.finditer(rf"#define ({prefix}\w+)\s+(0x[0-9a-fA-F]+|\d+)", text)}


def _upper_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


def test_checked_in_idl_json_matches_the_definitions() -> None:
    for program in PROGRAMS:
        assert idl_path(program).read_text() == render_text(program), (
            f"{idl_path(program).name} is stale: run `python -m contracts idl`"
        )


def test_idl_uses_anchor_discriminator_names() -> None:
    vault = json.loads(idl_path(VAULT).read_text())
    assert [ix["name"] for ix in vault["instructions"]][2:] == [
        "initializeVault",
        "deposit",
        "withdraw",
        "grantBotAuthority",
        "revokeBotAuthority",
        "botTrade",
        "deactivateVault",
    ]
    assert [e["code"] for e in vault["errors"][:9]] == list(range(6000, 6009))
    assert vault["errors"][8]["name"] == "DepositCapExceeded"


def test_c_discriminator_constants_are_the_sha256_of_the_names() -> None:
    defines = {
        k: v.to_bytes(8, "little")
        for k, v in _c_defines("discriminators.h", "").items()
        if k.startswith(("IX_", "ACCOUNT_", "EVENT_"))
    }
    expected = {f"IX_{ix.name.upper()}": ix.discriminator for p in PROGRAMS for ix in p.instructions}
    expected |= {
        "ACCOUNT_VAULT": VAULT.accounts[0].discriminator,
        "ACCOUNT_CONFIG": VAULT.accounts[1].discriminator,
        "ACCOUNT_POOL": AMM.accounts[0].discriminator,
        "EVENT_TRADE_EXECUTED": VAULT.events[0].discriminator,
    }
    assert defines == expected
    assert defines["IX_DEPOSIT"] == hashlib.sha256(b"global:deposit").digest()[:8]


def test_c_error_numbers_match_the_definitions_and_the_exceptions() -> None:
    vault_c = _c_defines("vault.c", "E_")
    assert vault_c == {f"E_{_upper_snake(e.name)}": e.code for e in VAULT.errors}
    amm_c = _c_defines("amm.c", "AMM_")
    assert {k: v for k, v in amm_c.items() if 6000 <= v < 7000} == {
        f"AMM_{_upper_snake(e.name)}": e.code for e in AMM.errors
    }
    assert {c.__name__: code for code, c in errors.VAULT_ERRORS.items()} == {
        e.name: e.code for e in VAULT.errors
    }
    assert {c.__name__: code for code, c in errors.AMM_ERRORS.items()} == {
        f"Amm{e.name}": e.code for e in AMM.errors
    }


def test_vault_account_is_91_bytes_with_a_bot_and_round_trips() -> None:
    from solders.keypair import Keypair

    fields = VAULT.accounts[0].fields
    value = {
        "owner": Keypair().pubkey(),
        "total_deposited": 5,
        "bot_authority": Keypair().pubkey(),
        "is_active": True,
        "created_at": -3,
        "bump": 254,
    }
    encoded = encode_struct(fields, value)
    assert 8 + len(encoded) == 91
    assert decode_struct(fields, encoded)[0] == value
