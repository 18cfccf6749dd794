"""Small builders the local-chain tests share: funded keypairs, signed transfers, confirmations."""

from __future__ import annotations

import asyncio

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Processed
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction

LAMPORTS_PER_SOL = 1_000_000_000


def signed(
    payer: Keypair, instructions: list[Instruction], blockhash: Hash, *extra: Keypair
) -> VersionedTransaction:
    legacy = Transaction([payer, *extra], Message(instructions, payer.pubkey()), blockhash)
    return VersionedTransaction.from_legacy(legacy)


def sol_transfer(payer: Keypair, to: Pubkey, lamports: int, blockhash: Hash) -> VersionedTransaction:
    return signed(
        payer,
        [transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))],
        blockhash,
    )


async def confirmed(client: AsyncClient, signature: Signature) -> None:
    """Poll the signature's status until it is confirmed (the caller's deadline bounds this)."""
    while True:
        status = (await client.get_signature_statuses([signature])).value[0]
        if (
            status is not None
            and status.confirmation_status is not None
            and int(status.confirmation_status) >= 1
        ):
            return
        await asyncio.sleep(0.02)


async def funded(client: AsyncClient, sol: int = 10) -> Keypair:
    keypair = Keypair()
    signature = (await client.request_airdrop(keypair.pubkey(), sol * LAMPORTS_PER_SOL)).value
    await confirmed(client, signature)
    return keypair


async def slot_reaches(client: AsyncClient, target: int) -> None:
    """Poll the processed slot until it is at least ``target`` (the caller's deadline bounds this)."""
    while True:
        if (await client.get_slot(Processed)).value >= target:
            return
        await asyncio.sleep(0.01)


async def blockhash(client: AsyncClient) -> Hash:
    return (await client.get_latest_blockhash(Confirmed)).value.blockhash
