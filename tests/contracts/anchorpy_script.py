# mypy: ignore-errors
# (typed against the anchorpy venv's solana 0.36 / solders 0.26, not the project's)
"""Runs INSIDE the separate anchorpy 0.21 virtualenv (its own solana/solders pins), not in the
project's. It uses only the IDL JSON files, anchorpy, solders' LiteSVM and spl.token -- nothing of
the project's Python code -- to drive the real built programs:

  argv: vault.so amm.so idl_dir sample_args.json
  stdout: one JSON object {"checks": {...}, "ix_data": {"program.instruction": hex}}

The programs are loaded with `add_program` (this venv's older LiteSVM cannot run the upgradeable
loader's deploy; see Chain.deploy) and a ProgramData account naming the admin is written, then
anchorpy-built instructions initialize the config and a vault,
deposit, hit the cap (6008), grant and revoke the bot, create an AMM pool, run a bot_trade with the
swap as remaining accounts, and anchorpy's coders decode the VaultAccount and the TradeExecuted event.
"""

from __future__ import annotations

import base64
import json
import struct
import sys
from pathlib import Path
from typing import Any

from anchorpy import Context, Idl, Program, Provider, Wallet
from solana.rpc.async_api import AsyncClient
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import VersionedTransaction
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    InitializeMintParams,
    MintToParams,
    create_associated_token_account,
    get_associated_token_address,
    initialize_mint,
    mint_to,
)

LOADER = Pubkey.from_string("BPFLoaderUpgradeab1e11111111111111111111111")
SYSTEM = Pubkey.from_string("11111111111111111111111111111111")


def _call(x: Any) -> Any:
    return x() if callable(x) else x


class Chain:
    def __init__(self) -> None:
        self.svm = LiteSVM()
        self.admin = Keypair()
        self.svm.airdrop(self.admin.pubkey(), 10**12)

    def send(self, ixs: list[Instruction], signers: list[Keypair]) -> tuple[int | None, list[str]]:
        """(None, logs) on success, (custom error code or -1, logs) on failure."""
        msg = Message.new_with_blockhash(ixs, signers[0].pubkey(), self.svm.latest_blockhash())
        result = self.svm.send_transaction(VersionedTransaction(msg, signers))
        self.svm.expire_blockhash()
        if hasattr(result, "err"):
            err = _call(result.err)
            logs = list(_call(_call(result.meta).logs))
            inner = getattr(err, "err", None)
            return (int(inner.code) if hasattr(inner, "code") else -1), logs
        return None, list(_call(result.logs))

    def ok(self, ixs: list[Instruction], signers: list[Keypair]) -> list[str]:
        code, logs = self.send(ixs, signers)
        if code is not None:
            raise SystemExit(f"transaction failed with {code}: {logs}")
        return logs

    def deploy(self, elf: bytes) -> Pubkey:
        """`add_program`, plus the ProgramData account naming the admin as upgrade authority.

        The upgradeable loader's instructions are not supported by this venv's older LiteSVM (solders
        0.26: "Unsupported instruction"); the real deploy is tested in the project's venv. The vault
        only reads ProgramData (variant 3, slot, Some(upgrade authority)), so it is written directly."""
        from solders.account import Account

        program = Keypair().pubkey()
        self.svm.add_program(program, elf)
        programdata = Pubkey.find_program_address([bytes(program)], LOADER)[0]
        data = struct.pack("<IQB", 3, 0, 1) + bytes(self.admin.pubkey())
        self.svm.set_account(programdata, Account(10**9, data, LOADER, False, 0))
        return program

    def mint(self, authority: Keypair) -> Pubkey:
        mint = Keypair()
        self.ok(
            [
                create_account(
                    CreateAccountParams(
                        from_pubkey=self.admin.pubkey(),
                        to_pubkey=mint.pubkey(),
                        lamports=self.svm.minimum_balance_for_rent_exemption(82),
                        space=82,
                        owner=TOKEN_PROGRAM_ID,
                    )
                ),
                initialize_mint(
                    InitializeMintParams(
                        decimals=6,
                        program_id=TOKEN_PROGRAM_ID,
                        mint=mint.pubkey(),
                        mint_authority=authority.pubkey(),
                        freeze_authority=None,
                    )
                ),
            ],
            [self.admin, mint],
        )
        return mint.pubkey()

    def ata(self, wallet: Pubkey, mint: Pubkey) -> Pubkey:
        self.ok([create_associated_token_account(self.admin.pubkey(), wallet, mint)], [self.admin])
        return get_associated_token_address(wallet, mint)

    def fund(self, mint: Pubkey, authority: Keypair, dest: Pubkey, amount: int) -> None:
        self.ok(
            [
                mint_to(
                    MintToParams(
                        program_id=TOKEN_PROGRAM_ID,
                        mint=mint,
                        dest=dest,
                        mint_authority=authority.pubkey(),
                        amount=amount,
                    )
                )
            ],
            [self.admin, authority],
        )

    def data(self, address: Pubkey) -> bytes:
        return bytes(self.svm.get_account(address).data)

    def balance(self, address: Pubkey) -> int:
        return int.from_bytes(self.data(address)[64:72], "little")


def _arg(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("pk:"):
        return Pubkey.from_string(value[3:])
    if isinstance(value, str) and value.startswith("hex:"):
        return bytes.fromhex(value[4:])
    if isinstance(value, list):
        return [_arg(v) for v in value]
    return value


def main() -> None:
    vault_so, amm_so, idl_dir, samples_path = sys.argv[1:5]
    vault_idl = Idl.from_json(Path(idl_dir, "xorj_vault.json").read_text())
    amm_idl = Idl.from_json(Path(idl_dir, "xorj_amm.json").read_text())
    samples: dict[str, dict[str, dict[str, Any]]] = json.loads(Path(samples_path).read_text())

    # 1. Instruction data for the sample arguments, built by anchorpy's InstructionCoder.
    ix_data = {}
    for prog_name, idl in (("xorj_vault", vault_idl), ("xorj_amm", amm_idl)):
        coder = Program(
            idl, Pubkey.default(), Provider(AsyncClient("http://127.0.0.1:9"), Wallet(Keypair()))
        ).coder
        for ix_name, args in samples[prog_name].items():
            ix_data[f"{prog_name}.{ix_name}"] = coder.instruction.encode(
                ix_name, {k: _arg(v) for k, v in args.items()}
            ).hex()

    # 2. The real programs, driven by anchorpy-built instructions.
    chain = Chain()
    clock = chain.svm.get_clock()
    clock.unix_timestamp = 1_790_000_000
    chain.svm.set_clock(clock)
    provider = Provider(AsyncClient("http://127.0.0.1:9"), Wallet(chain.admin))
    vault = Program(vault_idl, chain.deploy(Path(vault_so).read_bytes()), provider)
    amm = Program(amm_idl, chain.deploy(Path(amm_so).read_bytes()), provider)
    mint_authority = Keypair()
    usdc = chain.mint(mint_authority)
    sol = chain.mint(mint_authority)
    checks: dict[str, Any] = {}

    config = Pubkey.find_program_address([b"config"], vault.program_id)[0]
    program_data = Pubkey.find_program_address([bytes(vault.program_id)], LOADER)[0]
    chain.ok(
        [
            vault.instruction["initialize_config"](
                usdc,
                [amm.program_id],
                ctx=Context(
                    accounts={
                        "config": config,
                        "admin": chain.admin.pubkey(),
                        "program_data": program_data,
                        "system_program": SYSTEM,
                    }
                ),
            )
        ],
        [chain.admin],
    )

    owner = Keypair()
    chain.svm.airdrop(owner.pubkey(), 10**10)
    vault_pda = Pubkey.find_program_address([b"vault", bytes(owner.pubkey())], vault.program_id)[0]
    chain.ok(
        [
            vault.instruction["initialize_vault"](
                ctx=Context(accounts={"vault": vault_pda, "owner": owner.pubkey(), "system_program": SYSTEM})
            )
        ],
        [owner],
    )
    state = vault.coder.accounts.decode(chain.data(vault_pda))
    checks["initialized"] = (
        state.owner == owner.pubkey()
        and state.total_deposited == 0
        and state.bot_authority is None
        and state.is_active is True
        and state.created_at == 1_790_000_000
    )

    user_usdc = chain.ata(owner.pubkey(), usdc)
    vault_usdc = chain.ata(vault_pda, usdc)
    chain.fund(usdc, mint_authority, user_usdc, 2_000_000_000)
    token_accounts = {
        "vault": vault_pda,
        "owner": owner.pubkey(),
        "user_token_account": user_usdc,
        "vault_token_account": vault_usdc,
        "mint": usdc,
        "token_program": TOKEN_PROGRAM_ID,
        "config": config,
    }
    chain.ok([vault.instruction["deposit"](600_000_000, ctx=Context(accounts=token_accounts))], [owner])
    code, _ = chain.send(
        [vault.instruction["deposit"](400_000_001, ctx=Context(accounts=token_accounts))], [owner]
    )
    checks["cap_error"] = code
    checks["deposited"] = vault.coder.accounts.decode(chain.data(vault_pda)).total_deposited

    bot = Keypair()
    chain.svm.airdrop(bot.pubkey(), 10**10)
    manage = {"vault": vault_pda, "owner": owner.pubkey()}
    chain.ok(
        [
            vault.instruction["grant_bot_authority"](
                ctx=Context(accounts={**manage, "bot_authority": bot.pubkey()})
            )
        ],
        [owner],
    )
    checks["granted"] = vault.coder.accounts.decode(chain.data(vault_pda)).bot_authority == bot.pubkey()
    chain.ok([vault.instruction["revoke_bot_authority"](ctx=Context(accounts=manage))], [owner])
    checks["revoked"] = vault.coder.accounts.decode(chain.data(vault_pda)).bot_authority is None
    chain.ok(
        [
            vault.instruction["grant_bot_authority"](
                ctx=Context(accounts={**manage, "bot_authority": bot.pubkey()})
            )
        ],
        [owner],
    )

    # An AMM pool through the AMM's IDL, then a bot trade with the swap as remaining accounts.
    mint_a, mint_b = sorted([usdc, sol], key=bytes)
    pool = Pubkey.find_program_address([b"pool", bytes(mint_a), bytes(mint_b)], amm.program_id)[0]
    pool_a, pool_b = chain.ata(pool, mint_a), chain.ata(pool, mint_b)
    chain.ok(
        [
            amm.instruction["initialize_pool"](
                30,
                ctx=Context(
                    accounts={
                        "pool": pool,
                        "payer": chain.admin.pubkey(),
                        "mint_a": mint_a,
                        "mint_b": mint_b,
                        "vault_a": pool_a,
                        "vault_b": pool_b,
                        "system_program": SYSTEM,
                    }
                ),
            )
        ],
        [chain.admin],
    )
    lp_a, lp_b = chain.ata(chain.admin.pubkey(), mint_a), chain.ata(chain.admin.pubkey(), mint_b)
    chain.fund(mint_a, mint_authority, lp_a, 10**11)
    chain.fund(mint_b, mint_authority, lp_b, 10**11)
    chain.ok(
        [
            amm.instruction["add_liquidity"](
                10**11,
                10**11,
                ctx=Context(
                    accounts={
                        "pool": pool,
                        "provider": chain.admin.pubkey(),
                        "provider_a": lp_a,
                        "provider_b": lp_b,
                        "vault_a": pool_a,
                        "vault_b": pool_b,
                        "token_program": TOKEN_PROGRAM_ID,
                    }
                ),
            )
        ],
        [chain.admin],
    )
    checks["pool_decoded"] = amm.coder.accounts.decode(chain.data(pool)).fee_bps == 30

    vault_sol = chain.ata(vault_pda, sol)
    pool_in = pool_a if usdc == mint_a else pool_b
    pool_out = pool_b if usdc == mint_a else pool_a
    route = [
        AccountMeta(pool, False, False),
        AccountMeta(vault_pda, False, False),
        AccountMeta(vault_usdc, False, True),
        AccountMeta(vault_sol, False, True),
        AccountMeta(pool_in, False, True),
        AccountMeta(pool_out, False, True),
        AccountMeta(TOKEN_PROGRAM_ID, False, False),
    ]
    route_data = amm.coder.instruction.encode("swap", {"amount_in": 100_000_000, "minimum_amount_out": 1})
    logs = chain.ok(
        [
            vault.instruction["bot_trade"](
                100_000_000,
                90_000_000,
                route_data,
                ctx=Context(
                    accounts={
                        "vault": vault_pda,
                        "bot_authority": bot.pubkey(),
                        "vault_input_token_account": vault_usdc,
                        "vault_output_token_account": vault_sol,
                        "input_mint": usdc,
                        "output_mint": sol,
                        "swap_program": amm.program_id,
                        "token_program": TOKEN_PROGRAM_ID,
                        "config": config,
                    },
                    remaining_accounts=route,
                ),
            )
        ],
        [bot],
    )
    events = [
        vault.coder.events.parse(base64.b64decode(line.split(": ", 1)[1]))
        for line in logs
        if line.startswith("Program data: ")
    ]
    event = events[0]
    checks["event_name"] = event.name
    checks["event_amount_out"] = event.data.amount_out
    checks["event_amount_in"] = event.data.amount_in
    checks["vault_output_balance"] = chain.balance(vault_sol)
    checks["event_vault_matches"] = event.data.vault == vault_pda and event.data.bot_authority == bot.pubkey()
    print(json.dumps({"checks": checks, "ix_data": ix_data}))


if __name__ == "__main__":
    main()
