"""The chaos harness's knobs: a dropped transaction never gets a status and its blockhash runs out;
a delayed one shows nothing until its slot; an error after landing hides a landing; drops replay
from the seed."""

from __future__ import annotations

import asyncio

import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.core import RPCException
from solders.keypair import Keypair
from solders.rpc.errors import InternalErrorMessage

from localnet.chain import Chain, ChainConfig, Faults
from tests.localnet.conftest import LocalnetNode
from tests.localnet.kit import LAMPORTS_PER_SOL, blockhash, confirmed, funded, sol_transfer


def test_a_dropped_transaction_is_answered_never_lands_and_its_blockhash_expires(
    no_faults: LocalnetNode,
) -> None:
    window = no_faults.manifest["blockhashWindow"]

    async def scenario(client: AsyncClient) -> None:
        alice = await funded(client, sol=1)
        recent = (await client.get_latest_blockhash("processed")).value
        tx = sol_transfer(alice, Keypair().pubkey(), LAMPORTS_PER_SOL // 10, recent.blockhash)
        no_faults.result("localnet_setFaults", [{"dropRate": 1.0}])
        signature = (await client.send_transaction(tx)).value
        assert signature == tx.signatures[0]
        assert (await client.get_signature_statuses([signature], True)).value == [None]

        no_faults.result("localnet_setFaults", [{"dropRate": 0.0}])
        no_faults.result("localnet_warpSlots", [window + 1])
        assert (await client.get_block_height("processed")).value > recent.last_valid_block_height
        assert no_faults.result("isBlockhashValid", [str(recent.blockhash)])["value"] is False
        assert (await client.get_signature_statuses([signature], True)).value == [None]
        assert (await client.get_transaction(signature, "json", "confirmed", 0)).value is None
        with pytest.raises(RPCException):
            await client.send_transaction(tx)  # the same bytes can never land now
        assert (await client.get_balance(alice.pubkey(), "processed")).value == LAMPORTS_PER_SOL

    no_faults.run(scenario)


def test_a_delayed_transaction_has_no_status_until_its_slot_comes(no_faults: LocalnetNode) -> None:
    delay = 15  # well inside the 30-slot blockhash window: a delay past it would (rightly) expire it

    async def scenario(client: AsyncClient) -> None:
        alice = await funded(client, sol=1)
        no_faults.result("localnet_setFaults", [{"landDelaySlots": delay}])
        assert no_faults.result("localnet_getFaults")["landDelaySlots"] == delay
        recent = (await client.get_latest_blockhash("processed")).value.blockhash
        tx = sol_transfer(alice, Keypair().pubkey(), LAMPORTS_PER_SOL // 10, recent)
        sent_at = (await client.get_slot("processed")).value
        signature = (await client.send_transaction(tx)).value
        assert (await client.get_signature_statuses([signature])).value == [None]
        while (status := (await client.get_signature_statuses([signature])).value[0]) is None:
            slot = (await client.get_slot("processed")).value
            assert slot <= sent_at + delay + 20, (slot, sent_at, no_faults.result("localnet_getFaults"))
            await asyncio.sleep(0.01)
        assert status.slot >= sent_at + delay and status.err is None

    no_faults.run(scenario)


def test_an_error_after_landing_answers_an_error_but_the_transaction_landed(no_faults: LocalnetNode) -> None:
    async def scenario(client: AsyncClient) -> None:
        alice = await funded(client, sol=1)
        tx = sol_transfer(alice, Keypair().pubkey(), LAMPORTS_PER_SOL // 10, await blockhash(client))
        no_faults.result("localnet_setFaults", [{"errorAfterLanding": True}])
        with pytest.raises(RPCException) as answered:
            await client.send_transaction(tx)
        assert isinstance(answered.value.args[0], InternalErrorMessage)
        await confirmed(client, tx.signatures[0])

    no_faults.run(scenario)


def test_fault_knobs_are_validated(no_faults: LocalnetNode) -> None:
    for knobs in ({"dropRate": 1.5}, {"landDelaySlots": -1}, {"errorAfterLanding": "yes"}, {"typo": 1}):
        assert no_faults.rpc("localnet_setFaults", [knobs])["error"]["code"] == -32602


def test_drop_decisions_replay_from_the_seed() -> None:
    def fates(seed: int) -> list[str]:
        chain = Chain(ChainConfig(seed=seed))
        alice = Keypair()
        chain.airdrop(alice.pubkey(), 10 * LAMPORTS_PER_SOL)
        chain.faults = Faults(drop_rate=0.5)
        found: list[str] = []
        for lamports in range(1, 41):
            bh, _ = chain.latest_blockhash()
            tx = sol_transfer(alice, alice.pubkey(), lamports, bh)
            found.append(chain.submit(tx, skip_preflight=True).fate)
        return found

    first = fates(11)
    assert first == fates(11)
    assert {"dropped", "landed"} == set(first)
