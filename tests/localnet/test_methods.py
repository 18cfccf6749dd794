"""The rest of the method table, read with solana-py: simulation, fees, rent, accounts, node info,
versioned transactions and both sendTransaction encodings."""

from __future__ import annotations

import base64
import json
import stat
import time
from pathlib import Path

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Processed
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from solders.transaction_status import TransactionErrorInsufficientFundsForRent
from spl.token.instructions import get_associated_token_address

from localnet.base58 import b58encode
from tests.localnet.conftest import LocalnetNode
from tests.localnet.kit import LAMPORTS_PER_SOL, blockhash, confirmed, funded, signed, sol_transfer


def test_simulate_reports_logs_units_and_errors_without_landing(no_faults: LocalnetNode) -> None:
    async def scenario(client: AsyncClient) -> None:
        alice = await funded(client, sol=1)
        ok = sol_transfer(alice, Keypair().pubkey(), LAMPORTS_PER_SOL // 10, await blockhash(client))
        simulated = (await client.simulate_transaction(ok, sig_verify=True)).value
        assert simulated.err is None and simulated.units_consumed == 150
        assert simulated.logs == [
            "Program 11111111111111111111111111111111 invoke [1]",
            "Program 11111111111111111111111111111111 success",
        ]
        assert (await client.get_signature_statuses([ok.signatures[0]], True)).value == [None]

        dust = sol_transfer(alice, Keypair().pubkey(), 1, await blockhash(client))  # below rent exemption
        failing = (await client.simulate_transaction(dust)).value
        assert failing.err == TransactionErrorInsufficientFundsForRent(1)
        assert (await client.get_balance(alice.pubkey(), Processed)).value == LAMPORTS_PER_SOL

    no_faults.run(scenario)


def test_fee_for_message_includes_the_priority_fee_and_matches_what_is_charged(
    no_faults: LocalnetNode,
) -> None:
    async def scenario(client: AsyncClient) -> None:
        alice = await funded(client, sol=1)
        pay = transfer(
            TransferParams(from_pubkey=alice.pubkey(), to_pubkey=Keypair().pubkey(), lamports=10**7)
        )
        tx = signed(
            alice,
            [set_compute_unit_limit(20_000), set_compute_unit_price(500_000), pay],
            await blockhash(client),
        )
        quoted = (await client.get_fee_for_message(tx.message)).value
        assert quoted == 5000 + 20_000 * 500_000 // 1_000_000
        signature = (await client.send_transaction(tx)).value
        await confirmed(client, signature)
        got = (await client.get_transaction(signature, "json", Confirmed, 0)).value
        assert got is not None and got.transaction.meta is not None and got.transaction.meta.fee == quoted

    no_faults.run(scenario)


def test_versioned_transactions_need_max_supported_transaction_version(no_faults: LocalnetNode) -> None:
    async def scenario(client: AsyncClient) -> str:
        alice = await funded(client, sol=1)
        pay = transfer(
            TransferParams(from_pubkey=alice.pubkey(), to_pubkey=Keypair().pubkey(), lamports=10**7)
        )
        message = MessageV0.try_compile(alice.pubkey(), [pay], [], await blockhash(client))
        tx = VersionedTransaction(message, [alice])
        signature = (await client.send_transaction(tx)).value
        await confirmed(client, signature)
        got = (await client.get_transaction(signature, "jsonParsed", Confirmed, 0)).value
        assert got is not None and got.transaction.version == 0
        return str(signature)

    signature = no_faults.run(scenario)
    refused = no_faults.rpc("getTransaction", [signature, {"commitment": "confirmed"}])
    assert refused["error"]["code"] == -32015


def test_send_transaction_takes_base58_by_default_and_base64(no_faults: LocalnetNode) -> None:
    async def scenario(client: AsyncClient) -> Keypair:
        return await funded(client, sol=1)

    alice = no_faults.run(scenario)
    bh = no_faults.result("getLatestBlockhash", [{"commitment": "processed"}])["value"]["blockhash"]
    from solders.hash import Hash

    first = sol_transfer(alice, Keypair().pubkey(), 10**7, Hash.from_string(bh))
    second = sol_transfer(alice, Keypair().pubkey(), 2 * 10**7, Hash.from_string(bh))
    assert no_faults.result("sendTransaction", [b58encode(bytes(first))]) == str(first.signatures[0])
    sent = no_faults.result(
        "sendTransaction", [base64.b64encode(bytes(second)).decode(), {"encoding": "base64"}]
    )
    assert sent == str(second.signatures[0])


def test_accounts_node_info_and_rent_parse_with_solana_py(no_faults: LocalnetNode) -> None:
    usdc = Pubkey.from_string(no_faults.manifest["mints"]["USDC"]["mint"])

    async def scenario(client: AsyncClient) -> None:
        alice = await funded(client, sol=1)
        no_faults.result("localnet_mint", [str(alice.pubkey()), str(usdc), 1_500_000])
        ata = get_associated_token_address(alice.pubkey(), usdc)
        raw = (await client.get_account_info(ata)).value
        assert (
            raw is not None
            and len(raw.data) == 165
            and raw.owner == Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
        )
        parsed = (await client.get_account_info_json_parsed(ata)).value
        assert parsed is not None
        assert parsed.data.parsed["info"]["tokenAmount"]["uiAmountString"] == "1.5"  # type: ignore[union-attr]
        assert (await client.get_account_info(Keypair().pubkey())).value is None
        assert (await client.get_minimum_balance_for_rent_exemption(165)).value == 2_039_280
        assert (await client.get_version()).value.solana_core
        assert (await client.get_genesis_hash()).value
        epoch = (await client.get_epoch_info(Processed)).value
        assert epoch.absolute_slot >= 1 and epoch.transaction_count is not None
        raw_b64 = no_faults.result("getAccountInfo", [str(ata), {"encoding": "base64"}])["value"]["data"]
        assert len(base64.b64decode(raw_b64[0])) == 165 and raw_b64[1] == "base64"

    no_faults.run(scenario)


def test_set_clock_moves_block_time_and_it_keeps_running(no_faults: LocalnetNode) -> None:
    future = 2_000_000_000
    assert no_faults.result("localnet_setClock", [future]) == future

    async def scenario(client: AsyncClient) -> None:
        alice = await funded(client, sol=1)
        history = (await client.get_signatures_for_address(alice.pubkey(), commitment=Confirmed)).value
        assert history[0].block_time is not None and history[0].block_time >= future

    try:
        no_faults.run(scenario)
    finally:
        no_faults.result("localnet_setClock", [int(time.time())])


def test_the_mint_authority_keypair_is_written_owner_only_next_to_the_manifest(
    admin_node: LocalnetNode,
) -> None:
    authority = admin_node.manifest["mintAuthority"]
    path = Path(authority["keypairFile"])
    assert path.parent == admin_node.workdir
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert str(Keypair.from_bytes(bytes(json.loads(path.read_text()))).pubkey()) == authority["pubkey"]


def test_an_airdrop_below_rent_exemption_to_a_new_account_is_an_error(no_faults: LocalnetNode) -> None:
    answer = no_faults.rpc("requestAirdrop", [str(Keypair().pubkey()), 1])
    assert answer["error"]["code"] == -32603
    assert "insufficient funds for rent" in answer["error"]["message"]
