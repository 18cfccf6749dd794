"""SOL moves on the local chain exactly as a validator reports it, read back with solana-py."""

from __future__ import annotations

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.rpc.responses import GetTransactionResp
from solders.transaction_status import EncodedConfirmedTransactionWithStatusMeta

from tests.localnet.conftest import LocalnetNode
from tests.localnet.kit import LAMPORTS_PER_SOL, blockhash, confirmed, funded, sol_transfer


def test_an_airdrop_then_a_signed_transfer_lands_and_reads_back_with_balances(
    no_faults: LocalnetNode,
) -> None:
    async def scenario(client: AsyncClient) -> None:
        alice = await funded(client, sol=5)
        bob = Keypair()
        assert (await client.get_balance(alice.pubkey(), Confirmed)).value == 5 * LAMPORTS_PER_SOL

        tx = sol_transfer(alice, bob.pubkey(), LAMPORTS_PER_SOL, await blockhash(client))
        signature = (await client.send_transaction(tx)).value
        assert signature == tx.signatures[0]
        await confirmed(client, signature)

        got = (await client.get_transaction(signature, "json", Confirmed, 0)).value
        assert isinstance(got, EncodedConfirmedTransactionWithStatusMeta)
        meta = got.transaction.meta
        assert meta is not None and meta.err is None
        assert meta.fee == 5000
        assert meta.pre_balances[:2] == [5 * LAMPORTS_PER_SOL, 0]
        assert meta.post_balances[:2] == [4 * LAMPORTS_PER_SOL - 5000, LAMPORTS_PER_SOL]
        assert meta.compute_units_consumed is not None and meta.compute_units_consumed > 0
        assert any("success" in line for line in meta.log_messages or [])
        assert got.block_time is not None and got.block_time > 1_600_000_000
        assert got.slot > 0

        parsed = (await client.get_transaction(signature, "jsonParsed", Confirmed, 0)).value
        assert parsed is not None
        instruction = parsed.transaction.transaction.message.instructions[0]  # type: ignore[union-attr]
        assert instruction.program == "system"  # type: ignore[union-attr]
        assert instruction.parsed["type"] == "transfer"  # type: ignore[union-attr]
        assert instruction.parsed["info"]["lamports"] == LAMPORTS_PER_SOL  # type: ignore[union-attr]

        assert (await client.get_balance(bob.pubkey(), Confirmed)).value == LAMPORTS_PER_SOL
        accounts = (
            await client.get_multiple_accounts([alice.pubkey(), bob.pubkey(), Keypair().pubkey()])
        ).value
        assert accounts[0] is not None and accounts[0].lamports == 4 * LAMPORTS_PER_SOL - 5000
        assert accounts[2] is None

    no_faults.run(scenario)


def test_get_transaction_answers_parse_with_solders_in_every_encoding(no_faults: LocalnetNode) -> None:
    async def scenario(client: AsyncClient) -> str:
        alice = await funded(client, sol=2)
        tx = sol_transfer(alice, Keypair().pubkey(), LAMPORTS_PER_SOL, await blockhash(client))
        signature = (await client.send_transaction(tx)).value
        await confirmed(client, signature)
        return str(signature)

    signature = no_faults.run(scenario)
    for encoding in ("json", "jsonParsed", "base64", "base58"):
        raw = no_faults.rpc(
            "getTransaction",
            [
                signature,
                {"encoding": encoding, "commitment": "confirmed", "maxSupportedTransactionVersion": 0},
            ],
        )
        import json

        parsed = GetTransactionResp.from_json(json.dumps(raw))
        assert isinstance(parsed, GetTransactionResp), (encoding, raw)
        assert parsed.value is not None
