"""``--ledger DIR``: the chain survives a restart (SIGTERM -> exit 0 -> same chain); without it a
restart is a new chain; a torn last ledger line is cut, not fatal."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Processed
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from spl.token.instructions import get_associated_token_address

from localnet.ledger import Ledger, LedgerMint, LedgerTransaction
from tests.localnet.conftest import FAST_CHAIN, start_node, stop_node
from tests.localnet.kit import LAMPORTS_PER_SOL, blockhash, confirmed, funded, sol_transfer


def test_a_ledger_chain_survives_a_restart(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    flags = ("--admin", "--ledger", str(ledger), *FAST_CHAIN)
    alice, bob = Keypair(), Keypair()

    first = start_node(tmp_path / "first", *flags)
    usdc = Pubkey.from_string(first.manifest["mints"]["USDC"]["mint"])

    async def before(client: AsyncClient) -> tuple[Signature, int, VersionedTransaction]:
        signature = (await client.request_airdrop(alice.pubkey(), 3 * LAMPORTS_PER_SOL)).value
        await confirmed(client, signature)
        tx = sol_transfer(alice, bob.pubkey(), LAMPORTS_PER_SOL, await blockhash(client))
        moved = (await client.send_transaction(tx)).value
        await confirmed(client, moved)
        minted = first.result("localnet_mint", [str(alice.pubkey()), str(usdc), 42_000_000])
        await confirmed(client, Signature.from_string(minted))
        # signed and stored before the restart, sent after it (DESIGN section 6 recovery)
        recent = (await client.get_latest_blockhash(Processed)).value.blockhash
        unsent = sol_transfer(alice, bob.pubkey(), 1000, recent)
        return moved, (await client.get_slot(Processed)).value, unsent

    try:
        moved, slot_before, unsent = first.run(before)
        transaction_before = first.rpc("getTransaction", [str(moved), {"commitment": "confirmed"}])["result"]
    finally:
        assert stop_node(first) == 0
    assert stat.S_IMODE((ledger / "keys" / "faucet.json").stat().st_mode) == 0o600

    second = start_node(tmp_path / "second", *flags)
    try:
        assert second.manifest["mints"] == first.manifest["mints"]
        assert second.manifest["genesisHash"] == first.manifest["genesisHash"]

        async def after(client: AsyncClient) -> None:
            assert (await client.get_slot(Processed)).value > slot_before
            alice_lamports = (await client.get_balance(alice.pubkey(), Processed)).value
            assert alice_lamports == 2 * LAMPORTS_PER_SOL - 5000
            assert (await client.get_balance(bob.pubkey(), Processed)).value == LAMPORTS_PER_SOL
            ata = get_associated_token_address(alice.pubkey(), usdc)
            assert (await client.get_token_account_balance(ata, Processed)).value.amount == "42000000"

            await confirmed(client, (await client.send_transaction(unsent)).value)
            assert (await client.get_balance(bob.pubkey(), Processed)).value == LAMPORTS_PER_SOL + 1000
            history = (await client.get_signatures_for_address(bob.pubkey(), commitment=Confirmed)).value
            assert [entry.signature for entry in history] == [unsent.signatures[0], moved]

            # the restarted chain keeps working: a fresh transfer lands
            carol = await funded(client, sol=1)
            tx = sol_transfer(carol, bob.pubkey(), LAMPORTS_PER_SOL // 2, await blockhash(client))
            await confirmed(client, (await client.send_transaction(tx)).value)

        second.run(after)
        again = second.rpc("getTransaction", [str(moved), {"commitment": "confirmed"}])["result"]
        assert again == transaction_before
    finally:
        assert stop_node(second) == 0


def test_without_a_ledger_a_restart_is_a_new_chain(tmp_path: Path) -> None:
    first = start_node(tmp_path / "first", *FAST_CHAIN)
    try:
        genesis = first.manifest["genesisHash"]
    finally:
        assert stop_node(first) == 0
    second = start_node(tmp_path / "second", *FAST_CHAIN)
    try:
        assert second.manifest["genesisHash"] != genesis
        assert second.manifest["mints"]["USDC"] != first.manifest["mints"]["USDC"]
    finally:
        assert stop_node(second) == 0


def test_a_torn_last_ledger_line_is_cut_and_earlier_entries_kept(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.append(LedgerMint("USDC", str(Keypair().pubkey()), 6))
    ledger.append(LedgerTransaction(5, 1_700_000_000, b"\x01\x02"))
    ledger.close()
    with (tmp_path / "ledger.jsonl").open("a") as out:
        out.write('{"kind":"tx","slot":6,"unixTi')  # the process died mid-append
    reopened = Ledger(tmp_path)
    assert [type(entry) for entry in reopened.entries()] == [LedgerMint, LedgerTransaction]
    reopened.append(LedgerTransaction(7, 1_700_000_001, b"\x03"))
    reopened.close()
    lines = (tmp_path / "ledger.jsonl").read_text().splitlines()
    assert [json.loads(line)["kind"] for line in lines] == ["mint", "tx", "tx"]
