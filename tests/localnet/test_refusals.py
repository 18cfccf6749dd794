"""What a validator refuses, refused the same way: stale blockhashes, duplicates, bad signatures,
and a failing program's error and logs, in preflight and (with skipPreflight) on chain."""

from __future__ import annotations

import base64

import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Processed
from solana.rpc.core import RPCException
from solana.rpc.models import TxOpts
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.rpc.errors import SendTransactionPreflightFailureMessage
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_status import InstructionErrorCustom, TransactionErrorInstructionError
from spl.token.instructions import get_associated_token_address
from spl.token.instructions import transfer as token_transfer
from spl.token.models import TransferParams as TokenTransferParams

from tests.localnet.conftest import LocalnetNode
from tests.localnet.kit import (
    LAMPORTS_PER_SOL,
    blockhash,
    confirmed,
    funded,
    signed,
    slot_reaches,
    sol_transfer,
)

TOKEN_PROGRAM_ID = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")


def _preflight_failure(error: RPCException) -> SendTransactionPreflightFailureMessage:
    failure = error.args[0]
    assert isinstance(failure, SendTransactionPreflightFailureMessage), failure
    return failure


def test_a_blockhash_older_than_the_window_is_refused_and_never_lands(no_faults: LocalnetNode) -> None:
    window = no_faults.manifest["blockhashWindow"]

    async def scenario(client: AsyncClient) -> None:
        alice = await funded(client, sol=1)
        stale = (await client.get_latest_blockhash("processed")).value
        no_faults.result("localnet_warpSlots", [window + 1])
        assert no_faults.result("isBlockhashValid", [str(stale.blockhash)])["value"] is False
        assert (await client.get_block_height("processed")).value > stale.last_valid_block_height

        tx = sol_transfer(alice, Keypair().pubkey(), LAMPORTS_PER_SOL // 10, stale.blockhash)
        with pytest.raises(RPCException) as refused:
            await client.send_transaction(tx)
        failure = _preflight_failure(refused.value)
        assert failure.message == "Transaction simulation failed: Blockhash not found"
        assert failure.data.err is not None and "BlockhashNotFound" in str(failure.data.err)

        # skipPreflight: the RPC answers with the signature, as a real one does, and it never lands
        skipped = (await client.send_transaction(tx, opts=TxOpts(skip_preflight=True))).value
        assert skipped == tx.signatures[0]
        await slot_reaches(client, (await client.get_slot(Processed)).value + 3)
        assert (await client.get_signature_statuses([skipped], True)).value == [None]

    no_faults.run(scenario)


def test_a_signature_already_processed_is_refused(no_faults: LocalnetNode) -> None:
    async def scenario(client: AsyncClient) -> None:
        alice = await funded(client, sol=1)
        tx = sol_transfer(alice, Keypair().pubkey(), LAMPORTS_PER_SOL // 10, await blockhash(client))
        signature = (await client.send_transaction(tx)).value
        await confirmed(client, signature)
        with pytest.raises(RPCException) as refused:
            await client.send_transaction(tx)
        failure = _preflight_failure(refused.value)
        assert failure.message == "Transaction simulation failed: This transaction has already been processed"
        # with skipPreflight the duplicate is answered and dropped: still exactly one landing
        again = (await client.send_transaction(tx, opts=TxOpts(skip_preflight=True))).value
        assert again == signature
        history = (await client.get_signatures_for_address(alice.pubkey(), commitment=Confirmed)).value
        assert [entry.signature for entry in history].count(signature) == 1

    no_faults.run(scenario)


def test_a_tampered_signature_is_a_signature_verification_failure(no_faults: LocalnetNode) -> None:
    async def scenario(client: AsyncClient) -> None:
        alice = await funded(client, sol=1)
        tx = sol_transfer(alice, Keypair().pubkey(), LAMPORTS_PER_SOL // 10, await blockhash(client))
        forged = VersionedTransaction.populate(tx.message, [Keypair().sign_message(b"not this message")])
        answer = no_faults.rpc(
            "sendTransaction", [base64.b64encode(bytes(forged)).decode(), {"encoding": "base64"}]
        )
        assert answer["error"]["code"] == -32003
        assert answer["error"]["message"] == "Transaction signature verification failure"

    no_faults.run(scenario)


def test_a_token_transfer_beyond_the_balance_fails_like_a_validator_reports_it(
    no_faults: LocalnetNode,
) -> None:
    usdc = Pubkey.from_string(no_faults.manifest["mints"]["USDC"]["mint"])

    async def scenario(client: AsyncClient) -> None:
        alice = await funded(client, sol=1)
        bob = Keypair()
        no_faults.result("localnet_mint", [str(alice.pubkey()), str(usdc), 1_000_000])
        no_faults.result("localnet_mint", [str(bob.pubkey()), str(usdc), 1])
        source = get_associated_token_address(alice.pubkey(), usdc)
        dest = get_associated_token_address(bob.pubkey(), usdc)
        too_much = token_transfer(
            TokenTransferParams(
                program_id=TOKEN_PROGRAM_ID, source=source, dest=dest, owner=alice.pubkey(), amount=2_000_000
            )
        )
        tx = signed(alice, [too_much], await blockhash(client))

        with pytest.raises(RPCException) as refused:
            await client.send_transaction(tx)
        failure = _preflight_failure(refused.value)
        assert (
            failure.message
            == "Transaction simulation failed: Error processing Instruction 0: custom program error: 0x1"
        )
        assert failure.data.err == TransactionErrorInstructionError(0, InstructionErrorCustom(1))
        assert failure.data.logs is not None and "Program log: Error: insufficient funds" in failure.data.logs
        assert failure.data.units_consumed is not None and failure.data.units_consumed > 0

        # skipPreflight: it lands, failed, with the fee paid and the error in meta
        signature: Signature = (await client.send_transaction(tx, opts=TxOpts(skip_preflight=True))).value
        await confirmed(client, signature)
        status = (await client.get_signature_statuses([signature])).value[0]
        assert status is not None and status.err == TransactionErrorInstructionError(
            0, InstructionErrorCustom(1)
        )
        got = (await client.get_transaction(signature, "json", Confirmed, 0)).value
        assert got is not None and got.transaction.meta is not None
        meta = got.transaction.meta
        assert meta.err == TransactionErrorInstructionError(0, InstructionErrorCustom(1))
        assert meta.fee == 5000 and meta.post_balances[0] == meta.pre_balances[0] - 5000
        assert meta.log_messages is not None and any(
            "insufficient funds" in line for line in meta.log_messages
        )
        assert (await client.get_token_account_balance(source, Confirmed)).value.amount == "1000000"
        history = (
            await client.get_signatures_for_address(alice.pubkey(), limit=1, commitment=Confirmed)
        ).value
        assert history[0].signature == signature and history[0].err is not None

    no_faults.run(scenario)
