"""The IDL JSON is usable by standard tooling: anchorpy 0.21, in its own virtualenv (it pins older
solana/solders), loads both IDLs, encodes every instruction exactly as our client does, and -- using
only the IDL -- drives the real programs in LiteSVM: initialize, deposit, hit the cap (6008), grant
and revoke the bot, a bot trade through the AMM, and decodes the VaultAccount and TradeExecuted.

Needs PyPI access the first time (to create the virtualenv); CI has it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from solders.pubkey import Pubkey

from contracts.coder import encode_instruction_data
from contracts.definitions import AMM, VAULT, ProgramDef
from contracts.idl import IDL_DIR

HERE = Path(__file__).resolve().parent
VENV = Path(os.environ.get("XORJ_ANCHORPY_VENV", Path.home() / ".cache" / "xorj" / "anchorpy-venv"))

PK1 = Pubkey.from_string("9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin")
PK2 = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
SAMPLES: dict[str, dict[str, dict[str, Any]]] = {
    "xorj_vault": {
        "initialize_config": {"usdc_mint": PK1, "swap_programs": [PK1, PK2]},
        "set_swap_programs": {"swap_programs": [PK2]},
        "initialize_vault": {},
        "deposit": {"amount": 1_000_000_000},
        "withdraw": {"amount": 2**64 - 1},
        "grant_bot_authority": {},
        "revoke_bot_authority": {},
        "bot_trade": {"amount_in": 123, "minimum_amount_out": 456, "route_data": bytes(range(40))},
        "deactivate_vault": {},
    },
    "xorj_amm": {
        "initialize_pool": {"fee_bps": 30},
        "add_liquidity": {"amount_a": 7, "amount_b": 2**40},
        "swap": {"amount_in": 10**9, "minimum_amount_out": 1},
    },
}


def _json_arg(value: Any) -> Any:
    if isinstance(value, Pubkey):
        return f"pk:{value}"
    if isinstance(value, bytes):
        return f"hex:{value.hex()}"
    if isinstance(value, list):
        return [_json_arg(v) for v in value]
    return value


def _anchorpy_python() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = subprocess.run([str(python), "-c", "import anchorpy"], capture_output=True, check=False)
    if probe.returncode != 0:
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "anchorpy==0.21.*"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert install.returncode == 0, f"could not install anchorpy 0.21 into {VENV}:\n{install.stderr}"
    return python


@pytest.mark.anchorpy
def test_anchorpy_drives_the_real_programs_using_only_the_idl(
    programs: dict[str, Path], tmp_path: Path
) -> None:
    samples = tmp_path / "samples.json"
    samples.write_text(
        json.dumps(
            {
                p: {ix: {k: _json_arg(v) for k, v in args.items()} for ix, args in ixs.items()}
                for p, ixs in SAMPLES.items()
            }
        )
    )
    result = subprocess.run(
        [
            str(_anchorpy_python()),
            str(HERE / "anchorpy_script.py"),
            str(programs["vault"]),
            str(programs["amm"]),
            str(IDL_DIR),
            str(samples),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(result.stdout.strip().splitlines()[-1])

    programs_by_name: dict[str, ProgramDef] = {"xorj_vault": VAULT, "xorj_amm": AMM}
    for prog_name, ixs in SAMPLES.items():
        for ix_name, args in ixs.items():
            ours = encode_instruction_data(programs_by_name[prog_name].instruction(ix_name), args)
            assert report["ix_data"][f"{prog_name}.{ix_name}"] == ours.hex(), ix_name
    assert {f"{p}.{ix.name}" for p, d in programs_by_name.items() for ix in d.instructions} == set(
        report["ix_data"]
    )

    checks = report["checks"]
    assert checks["initialized"] and checks["granted"] and checks["revoked"] and checks["pool_decoded"]
    assert checks["cap_error"] == 6008 and checks["deposited"] == 600_000_000
    assert checks["event_name"] == "TradeExecuted" and checks["event_vault_matches"]
    assert checks["event_amount_in"] == 100_000_000
    assert checks["event_amount_out"] == checks["vault_output_balance"] > 90_000_000
