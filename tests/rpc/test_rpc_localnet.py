"""`RpcClient` against the project's local chain (`python -m localnet`, JSON-RPC over LiteSVM).

Unlike the stand-in servers of the other modules, this node executes what it is sent: airdrops,
signed transfers, preflight simulation, duplicate detection and blockhash expiry are the chain's
own. The node runs as a real subprocess on an ephemeral port; a node that cannot start fails the
test with its log.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import pytest
import trio
from solders.commitment_config import CommitmentLevel
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.rpc.config import RpcTransactionConfig
from solders.rpc.requests import RequestAirdrop
from solders.rpc.responses import GetTransactionResp, RequestAirdropResp
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction
from solders.transaction_status import TransactionConfirmationStatus, UiTransactionEncoding

from actors.rpc_client import AlreadyProcessed, BlockhashNotFound, RpcClient

ROOT = Path(__file__).resolve().parents[2]
FAST_CHAIN = ("--slot-ms", "40", "--blockhash-window", "30", "--finalize-slots", "4", "--confirm-slots", "1",
              "--genesis", "mints", "--price-port", "0", "--seed", "7")


@asynccontextmanager
async def localnet(workdir: Path) -> AsyncIterator[str]:
    manifest = workdir / "manifest.json"
    log = (workdir / "node.log").open("wb")
    cmd = [sys.executable, "-m", "localnet", "--rpc-port", "0", "--manifest", str(manifest), *FAST_CHAIN]
    started = False
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(partial(
            trio.run_process, cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False))
        with trio.move_on_after(20.0):
            while not manifest.exists() and process.returncode is None:  # noqa: ASYNC110
                await trio.sleep(0.05)  # the node writes its manifest once it answers
        if manifest.exists():
            started = True
            yield str(json.loads(manifest.read_text())["rpcUrl"])
        nursery.cancel_scope.cancel()
    log.close()
    if not started:  # failed outside the nursery, so pytest sees the log and not an exception group
        pytest.fail(f"localnet did not start: {(workdir / 'node.log').read_text()[-500:]}")


async def confirmed(rpc: RpcClient, signature: Signature, *, timeout: float = 10.0) -> None:
    """Poll the signature's status under a deadline, as the executors confirm trades."""
    wanted = (TransactionConfirmationStatus.Confirmed, TransactionConfirmationStatus.Finalized)
    with trio.fail_after(timeout):
        while True:
            status = (await rpc.get_signature_statuses([signature])).value[0]
            if status is not None and status.confirmation_status in wanted:
                assert status.err is None
                return
            await trio.sleep(0.05)


def transfer_tx(payer: Keypair, to: Pubkey, blockhash: Hash) -> Transaction:
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=10**7))
    return Transaction([payer], Message([ix], payer.pubkey()), blockhash)


async def test_a_transfer_on_the_local_chain_lands_once_and_its_refusals_are_typed(tmp_path: Path) -> None:
    async with localnet(tmp_path) as url, RpcClient(url) as rpc:
        assert (await rpc.get_health()).value == "ok"
        payer, to = Keypair(), Keypair().pubkey()
        airdrop = await rpc.call(RequestAirdrop(payer.pubkey(), 10**9), RequestAirdropResp)
        await confirmed(rpc, airdrop.value)
        assert await rpc.get_balance(payer.pubkey(), CommitmentLevel.Confirmed) == 10**9

        latest = await rpc.get_latest_blockhash(CommitmentLevel.Confirmed)
        tx = transfer_tx(payer, to, latest.value.blockhash)
        assert await rpc.send_transaction(bytes(tx)) == tx.signatures[0]
        with pytest.raises(AlreadyProcessed):  # the same signed bytes cannot execute twice
            await rpc.send_transaction(bytes(tx))
        stale = transfer_tx(payer, to, Hash.new_unique())
        with pytest.raises(BlockhashNotFound):
            await rpc.send_transaction(bytes(stale))

        await confirmed(rpc, tx.signatures[0])
        config = RpcTransactionConfig(encoding=UiTransactionEncoding.Base64,
                                      commitment=CommitmentLevel.Confirmed,
                                      max_supported_transaction_version=0)
        landed, never = await rpc.get_transactions([tx.signatures[0], stale.signatures[0]], config)
        assert isinstance(landed, GetTransactionResp) and landed.value is not None
        meta = landed.value.transaction.meta
        assert meta is not None and meta.err is None
        assert isinstance(never, GetTransactionResp) and never.value is None
        assert await rpc.get_balance(to, CommitmentLevel.Confirmed) == 10**7
        assert rpc.health().state == "up"
