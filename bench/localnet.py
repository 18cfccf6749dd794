"""Local chain benchmark: one real ``python -m localnet`` node with the seeded market, driven
through its JSON-RPC port.

Figures:
- ``genesis_s``: the market genesis (programs, pools, ~11,000 history transactions, demo users),
  as the node measured it; ``serving_s``: process start to manifest written (the issue's "serving
  in under 30 s").
- ``transfers_per_s``: SOL transfers signed with a recent blockhash, sent as fast as the node takes
  them (``WORKERS`` concurrent senders, preflight on), counted when every one has a status.
- ``bot_trades_per_s``: ``bot_trade`` from a demo vault through the AMM, signed by the bot key,
  sent and counted the same way.
- ``rpc_actor_call_us`` / ``raw_httpx_call_us``: one ``getSlot`` through ``RpcClientActor`` (under a
  real supervisor, asked by name) versus a raw httpx POST to the same node, sequential, same run.

May import: the standard library, trio, httpx, solders, actors, supervisors, contracts, bench.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import trio
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.rpc.requests import GetSlot
from solders.rpc.responses import GetSlotResp
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction

from actors import ask
from actors.rpc_client import RpcCall, RpcClient, RpcClientActor
from bench.report import Figure
from contracts.amm_client import AmmClient
from contracts.vault_client import VaultClient
from supervisors import ChildSpec, EventBus, Registry, Supervisor

ROOT = Path(__file__).resolve().parents[1]
START_DEADLINE_S = 120.0
CALL_DEADLINE_S = 10.0
LAND_DEADLINE_S = 60.0
TRANSFERS = 3_000
BOT_TRADES = 600
WORKERS = 8
CALLS = 500
SEED = 1


def figures() -> dict[str, Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        manifest_path = Path(tmp) / "manifest.json"
        started = time.monotonic()
        with (Path(tmp) / "node.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "localnet", "--rpc-port", "0", "--price-port", "0",
                 "--manifest", str(manifest_path), "--seed", str(SEED)],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        try:
            while not manifest_path.exists():
                if process.poll() is not None or time.monotonic() - started > START_DEADLINE_S:
                    raise RuntimeError(
                        f"localnet did not start: {(Path(tmp) / 'node.log').read_text()[-2000:]}"
                    )
                time.sleep(0.05)
            serving_s = time.monotonic() - started
            manifest: dict[str, Any] = json.loads(manifest_path.read_text())
            bot = Keypair.from_bytes(
                bytes(json.loads(Path(manifest["botAuthority"]["keypairFile"]).read_text()))
            )
            measured = trio.run(_measure, manifest, bot)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    return {
        "genesis_s": Figure(float(manifest["genesisSeconds"]), "s", better="lower", target=30.0),
        "serving_s": Figure(serving_s, "s", better="lower", target=30.0),
        "transfers_per_s": Figure(measured["transfers"], "tx/s", better="higher"),
        "bot_trades_per_s": Figure(measured["bot_trades"], "tx/s", better="higher"),
        "rpc_actor_call_us": Figure(measured["actor_us"], "us", better="lower"),
        "raw_httpx_call_us": Figure(measured["raw_us"], "us", better="lower"),
    }


async def _rpc(http: httpx.AsyncClient, url: str, method: str, params: list[Any] | None = None) -> Any:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
    with trio.fail_after(CALL_DEADLINE_S):
        answer = (await http.post(url, json=body)).json()
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def _signed(payer: Keypair, ixs: Sequence[Any], blockhash: Hash) -> str:
    tx = VersionedTransaction.from_legacy(Transaction([payer], Message(list(ixs), payer.pubkey()), blockhash))
    return base64.b64encode(bytes(tx)).decode()


async def _blockhash(http: httpx.AsyncClient, url: str) -> Hash:
    answer = await _rpc(http, url, "getLatestBlockhash", [{"commitment": "confirmed"}])
    return Hash.from_string(answer["value"]["blockhash"])


async def _landed(http: httpx.AsyncClient, url: str, signatures: list[str]) -> None:
    """Return once every signature has a status (polled in batches, under a deadline)."""
    pending = signatures
    with trio.fail_after(LAND_DEADLINE_S):
        while True:
            still: list[str] = []
            for chunk in range(0, len(pending), 256):
                part = pending[chunk : chunk + 256]
                statuses = (await _rpc(http, url, "getSignatureStatuses", [part]))["value"]
                still.extend(s for s, status in zip(part, statuses, strict=True) if status is None)
            pending = still
            if not pending:
                return
            await trio.sleep(0.01)


async def _send_all(http: httpx.AsyncClient, url: str, encoded: list[str]) -> float:
    """Send every transaction (``WORKERS`` at a time), wait until each has a status; tx/s."""
    signatures: list[str] = []
    queue = list(reversed(encoded))
    started = time.perf_counter()

    async def sender() -> None:
        while queue:
            signatures.append(await _rpc(http, url, "sendTransaction", [queue.pop(), {"encoding": "base64"}]))

    async with trio.open_nursery() as nursery:
        for _ in range(WORKERS):
            nursery.start_soon(sender)
    await _landed(http, url, signatures)
    return len(encoded) / (time.perf_counter() - started)


async def _transfers(http: httpx.AsyncClient, url: str) -> float:
    payer = Keypair()
    airdrop = await _rpc(http, url, "requestAirdrop", [str(payer.pubkey()), 1_000 * 10**9])
    await _landed(http, url, [airdrop])
    blockhash = await _blockhash(http, url)
    encoded = [
        _signed(payer, [transfer(TransferParams(
            from_pubkey=payer.pubkey(), to_pubkey=Keypair().pubkey(), lamports=1_000_000))], blockhash)
        for _ in range(TRANSFERS)
    ]  # fmt: skip
    return await _send_all(http, url, encoded)


async def _bot_trades(http: httpx.AsyncClient, url: str, manifest: dict[str, Any], bot: Keypair) -> float:
    vaults = VaultClient(Pubkey.from_string(manifest["programs"]["vault"]))
    amm = AmmClient(Pubkey.from_string(manifest["programs"]["amm"]))
    usdc, jup = (Pubkey.from_string(manifest["mints"][s]["mint"]) for s in ("USDC", "JUP"))
    owner = Pubkey.from_string(manifest["demoUsers"][0]["owner"])
    vault = vaults.vault(owner)
    source, destination = vaults.vault_token_account(owner, usdc), vaults.vault_token_account(owner, jup)
    route = amm.swap_accounts(vault, usdc, jup, source, destination)
    blockhash = await _blockhash(http, url)
    encoded = []
    for i in range(BOT_TRADES):
        amount = 10_000 + i  # 0.01 USDC and a distinct amount: a distinct transaction each
        ix = vaults.bot_trade(
            owner, bot.pubkey(), usdc, jup, amm.program_id, amount, 1, amm.swap_data(amount, 1), route
        )
        encoded.append(_signed(bot, [ix], blockhash))
    return await _send_all(http, url, encoded)


async def _call_latency(url: str, http: httpx.AsyncClient) -> tuple[float, float]:
    """Mean microseconds of a sequential getSlot: through the actor, then raw httpx."""

    def make_client() -> RpcClient:
        return RpcClient(url, rate_per_s=1e6, burst=10_000)

    supervisor = Supervisor([ChildSpec("rpc_client", lambda: RpcClientActor(make_client, max_in_flight=8))])
    registry = Registry()
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run_as_root, "root", registry, EventBus())
        rpc = registry.ref("rpc_client")
        for _ in range(20):  # warm the connection pool
            await ask(rpc, RpcCall(GetSlot(), GetSlotResp, timeout_s=5.0), timeout=6.0)
        started = time.perf_counter()
        for _ in range(CALLS):
            await ask(rpc, RpcCall(GetSlot(), GetSlotResp, timeout_s=5.0), timeout=6.0)
        actor_us = (time.perf_counter() - started) / CALLS * 1e6
        supervisor.request_stop()
    for _ in range(20):
        await _rpc(http, url, "getSlot")
    started = time.perf_counter()
    for _ in range(CALLS):
        await _rpc(http, url, "getSlot")
    raw_us = (time.perf_counter() - started) / CALLS * 1e6
    return actor_us, raw_us


async def _measure(manifest: dict[str, Any], bot: Keypair) -> dict[str, float]:
    url = manifest["rpcUrl"]
    async with httpx.AsyncClient(timeout=CALL_DEADLINE_S) as http:
        transfers = await _transfers(http, url)
        bot_trades = await _bot_trades(http, url, manifest, bot)
        actor_us, raw_us = await _call_latency(url, http)
    return {"transfers": transfers, "bot_trades": bot_trades, "actor_us": actor_us, "raw_us": raw_us}
