"""What the scorer tests share: a real embedded PostgreSQL (the infra fixtures, migrated), a real
`python -m localnet` subprocess, the RPC client actor and the scorer under a real `Supervisor`,
and swap-shaped transactions built on the plain local chain.

A swap on the plain chain (no AMM needed): one transaction with two SPL `transferChecked`, the
trader sending one token to a dealer and the dealer sending another back, both signing. For the
trader's own token balance deltas it is exactly a swap -- one mint out, one mint in -- which is
all the scorer reads.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio
from solders.commitment_config import CommitmentLevel
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.rpc.requests import RequestAirdrop
from solders.rpc.responses import RequestAirdropResp
from solders.signature import Signature
from solders.transaction import Transaction
from solders.transaction_status import TransactionConfirmationStatus
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
    transfer_checked,
)
from spl.token.models import TransferCheckedParams

from actors import Actor, ChildContext
from actors.ingestion import IngestSettings
from actors.rpc_client import RetryPolicy, RpcClient, RpcClientActor
from actors.scorer import RankingsSubscribers, Scorer, ScorerSettings
from actors.trust_score import Algorithm
from engine.postgres_gateway import PostgresGateway
from supervisors import ChildSpec, Supervisor
from tests.infra.conftest import db_url, gateway, pg_server, schema, xorj_home  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
TOKEN_PROGRAM = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
FAST_CHAIN = ("--slot-ms", "20", "--blockhash-window", "150", "--finalize-slots", "2", "--confirm-slots", "1",
              "--genesis", "mints", "--admin", "--seed", "7")


@attrs.define
class Localnet:
    url: str
    manifest: dict[str, Any]
    process: trio.Process
    http: httpx.AsyncClient

    def mint(self, symbol: str) -> Pubkey:
        return Pubkey.from_string(self.manifest["mints"][symbol]["mint"])

    def decimals(self, symbol: str) -> int:
        return int(self.manifest["mints"][symbol]["decimals"])

    async def admin(self, method: str, params: list[Any]) -> Any:
        with trio.fail_after(10):
            answer = (await self.http.post(self.url, json={
                "jsonrpc": "2.0", "id": 1, "method": method, "params": params})).json()
        assert "error" not in answer, answer
        return answer["result"]

    async def stop(self) -> None:
        """Take the chain away (SIGTERM, then wait): an RPC outage for everything that follows."""
        self.process.terminate()
        with trio.fail_after(15):
            await self.process.wait()


@asynccontextmanager
async def localnet(workdir: Path, *flags: str, startup_s: float = 30.0) -> AsyncIterator[Localnet]:
    workdir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 -- before anything runs
    manifest = workdir / "manifest.json"
    with (workdir / "node.log").open("wb") as log:
        cmd = [sys.executable, "-m", "localnet", "--rpc-port", "0", "--manifest", str(manifest), *flags]
        async with trio.open_nursery() as nursery, httpx.AsyncClient() as http:
            process: trio.Process = await nursery.start(partial(
                trio.run_process, cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False))
            with trio.fail_after(startup_s):
                while not manifest.exists():  # written by another process
                    assert process.returncode is None, (workdir / "node.log").read_text()[-2000:]
                    await trio.sleep(0.05)
            data = json.loads(manifest.read_text())
            yield Localnet(str(data["rpcUrl"]), data, process, http)
            nursery.cancel_scope.cancel()


async def finalized(rpc: RpcClient, signature: Signature, *, timeout: float = 20.0) -> None:
    with trio.fail_after(timeout):
        while True:
            status = (await rpc.get_signature_statuses([signature])).value[0]
            if status is not None and status.confirmation_status == TransactionConfirmationStatus.Finalized:
                assert status.err is None, status.err
                return
            await trio.sleep(0.02)


@attrs.define
class Market:
    """Traders and a dealer on the plain local chain; `swap` lands one swap and waits for it."""

    chain: Localnet
    rpc: RpcClient
    dealer: Keypair = attrs.field(factory=Keypair)

    async def funded_trader(self, usdc: int = 10_000) -> Keypair:
        trader = Keypair()
        for who in (trader, self.dealer):
            airdrop = await self.rpc.call(RequestAirdrop(who.pubkey(), 10**9), RequestAirdropResp)
            await finalized(self.rpc, airdrop.value)
        await self.chain.admin("localnet_mint", [str(trader.pubkey()), str(self.chain.mint("USDC")),
                                                 usdc * 10 ** self.chain.decimals("USDC")])
        for symbol in ("USDC", "JUP", "BONK"):
            if symbol in self.chain.manifest["mints"]:
                await self.chain.admin("localnet_mint", [str(self.dealer.pubkey()),
                                                         str(self.chain.mint(symbol)), 10**15])
        return trader

    async def swap(self, trader: Keypair, sell: str, sell_ui: float, buy: str, buy_ui: float) -> Signature:
        """`trader` gives `sell_ui` of `sell` and receives `buy_ui` of `buy` (both signing)."""
        me, dealer = trader.pubkey(), self.dealer.pubkey()
        sell_mint, buy_mint = self.chain.mint(sell), self.chain.mint(buy)
        sd, bd = self.chain.decimals(sell), self.chain.decimals(buy)
        ixs = [
            create_idempotent_associated_token_account(me, dealer, sell_mint),
            create_idempotent_associated_token_account(me, me, buy_mint),
            transfer_checked(TransferCheckedParams(
                program_id=TOKEN_PROGRAM, source=get_associated_token_address(me, sell_mint),
                mint=sell_mint, dest=get_associated_token_address(dealer, sell_mint), owner=me,
                amount=round(sell_ui * 10**sd), decimals=sd)),
            transfer_checked(TransferCheckedParams(
                program_id=TOKEN_PROGRAM, source=get_associated_token_address(dealer, buy_mint),
                mint=buy_mint, dest=get_associated_token_address(me, buy_mint), owner=dealer,
                amount=round(buy_ui * 10**bd), decimals=bd)),
        ]
        blockhash = (await self.rpc.get_latest_blockhash(CommitmentLevel.Confirmed)).value.blockhash
        tx = Transaction([trader, self.dealer], Message(ixs, me), blockhash)
        signature = await self.rpc.send_transaction(bytes(tx))
        await finalized(self.rpc, signature)
        return signature


def fast_client(url: str) -> RpcClient:
    return RpcClient(url, rate_per_s=5000.0, burst=500, default_timeout_s=5.0,
                     retry=RetryPolicy(retries=1, min_s=0.01, max_s=0.05))


class Inbox(Actor):
    """A subscriber: forwards every message it gets to a memory channel the test reads."""

    def __init__(self, send: trio.MemorySendChannel[object]) -> None:
        self._send = send

    async def handle(self, ctx: ChildContext, msg: Any) -> None:
        self._send.send_nowait(msg)


def scorer_tree(
    db: PostgresGateway, make_client: Callable[[], RpcClient], settings: ScorerSettings,
    subscribers: RankingsSubscribers | None = None, *extra: ChildSpec,
) -> Supervisor:
    return Supervisor([
        ChildSpec("rpc_client", lambda: RpcClientActor(make_client, max_in_flight=32, probe_interval_s=0.5)),
        *extra,
        ChildSpec("scorer", lambda: Scorer(db, settings, subscribers), shutdown_s=2.0),
    ])


def settings_for(
    wallets: list[str], stablecoins: frozenset[str], source: str = "config", **overrides: Any
) -> ScorerSettings:
    base: dict[str, Any] = {
        "algorithm": Algorithm.V1, "window_days": 3650, "interval_s": None, "stablecoins": stablecoins,
        "wallets": tuple((w, source) for w in wallets), "concurrency": 4,
        "ingest": IngestSettings(page_limit=1000, tx_batch=50, rpc_timeout_s=5.0, db_timeout_s=10.0),
        "db_timeout_s": 20.0,
    }
    base.update(overrides)
    return ScorerSettings(**base)

# The seeded market (``--genesis market``): programs, pools and 30 traders with real swap history
# (genesis's alone: no live traders adding trades while the test scores them).
MARKET_CHAIN = ("--slot-ms", "100", "--blockhash-window", "150", "--finalize-slots", "4",
                "--confirm-slots", "1", "--genesis", "market", "--price-port", "0", "--seed", "11",
                "--no-live-traders")
