"""History and statuses as a validator reports them: newest first, paged, commitment by slot age."""

from __future__ import annotations

import asyncio
import json

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Processed
from solders.keypair import Keypair
from solders.rpc.responses import IsBlockhashValidResp
from solders.signature import Signature
from solders.transaction_status import TransactionConfirmationStatus

from tests.localnet.conftest import LocalnetNode
from tests.localnet.kit import LAMPORTS_PER_SOL, blockhash, confirmed, funded, slot_reaches, sol_transfer


def test_signatures_for_address_are_newest_first_and_page_with_before_until_limit(
    no_faults: LocalnetNode,
) -> None:
    async def scenario(client: AsyncClient) -> None:
        alice = await funded(client, sol=2)
        bob = Keypair()
        sent: list[Signature] = []
        for _ in range(5):
            tx = sol_transfer(alice, bob.pubkey(), LAMPORTS_PER_SOL // 100, await blockhash(client))
            signature = (await client.send_transaction(tx)).value
            await confirmed(client, signature)
            sent.append(signature)
        newest_first = list(reversed(sent))

        everything = (await client.get_signatures_for_address(bob.pubkey(), commitment=Confirmed)).value
        assert [entry.signature for entry in everything] == newest_first
        assert all(entry.err is None and entry.block_time is not None for entry in everything)
        assert [entry.slot for entry in everything] == sorted(
            (entry.slot for entry in everything), reverse=True
        )

        first_page = (
            await client.get_signatures_for_address(bob.pubkey(), limit=2, commitment=Confirmed)
        ).value
        assert [entry.signature for entry in first_page] == newest_first[:2]
        second_page = (
            await client.get_signatures_for_address(
                bob.pubkey(), before=first_page[-1].signature, limit=2, commitment=Confirmed
            )
        ).value
        assert [entry.signature for entry in second_page] == newest_first[2:4]
        down_to = (
            await client.get_signatures_for_address(bob.pubkey(), until=newest_first[3], commitment=Confirmed)
        ).value
        assert [entry.signature for entry in down_to] == newest_first[:3]

        # alice's history holds her airdrop as well, and the airdrop is the oldest entry
        alices = (await client.get_signatures_for_address(alice.pubkey(), commitment=Confirmed)).value
        assert [entry.signature for entry in alices[:5]] == newest_first
        assert len(alices) == 6

    no_faults.run(scenario)


def test_a_status_moves_processed_confirmed_finalized_with_slot_age(no_faults: LocalnetNode) -> None:
    async def scenario(client: AsyncClient) -> None:
        alice = await funded(client, sol=1)
        tx = sol_transfer(alice, Keypair().pubkey(), LAMPORTS_PER_SOL // 10, await blockhash(client))
        signature = (await client.send_transaction(tx)).value
        seen: list[TransactionConfirmationStatus] = []
        while TransactionConfirmationStatus.Finalized not in seen:
            status = (await client.get_signature_statuses([signature])).value[0]
            assert status is not None  # landed at once: no delay fault
            if status.confirmation_status is not None and status.confirmation_status not in seen:
                seen.append(status.confirmation_status)
                if status.confirmation_status == TransactionConfirmationStatus.Finalized:
                    assert status.confirmations is None
                else:
                    assert status.confirmations is not None
            await asyncio.sleep(0.01)
        order = [int(s) for s in seen]
        assert order == sorted(order) and order[-1] == int(TransactionConfirmationStatus.Finalized)

        # finalized history is visible with the default (finalized) commitment too
        finalized = (await client.get_signatures_for_address(alice.pubkey())).value
        assert signature in [entry.signature for entry in finalized]
        unknown = (await client.get_signature_statuses([Keypair().sign_message(b"x")], True)).value
        assert unknown == [None]

    no_faults.run(scenario)


def test_slots_block_height_and_blockhashes_advance_on_the_clock(no_faults: LocalnetNode) -> None:
    async def scenario(client: AsyncClient) -> None:
        first_slot = (await client.get_slot(Processed)).value
        first = (await client.get_latest_blockhash(Processed)).value
        await slot_reaches(client, first_slot + 3)
        later = (await client.get_latest_blockhash(Processed)).value
        assert later.blockhash != first.blockhash
        assert later.last_valid_block_height > first.last_valid_block_height
        assert (await client.get_block_height(Processed)).value > first_slot
        valid = no_faults.rpc("isBlockhashValid", [str(first.blockhash), {"commitment": "processed"}])
        assert IsBlockhashValidResp.from_json(json.dumps(valid)).value is True
        processed = (await client.get_slot(Processed)).value
        assert processed >= (await client.get_slot(Confirmed)).value

    no_faults.run(scenario)
