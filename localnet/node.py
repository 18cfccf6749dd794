"""The local chain node: the chain, its slot clock, genesis, the JSON-RPC server and the manifest.

Owns: the lifecycle of one node -- open the ledger (if any) and replay it, run genesis, start
serving, write the manifest, then advance one slot every ``slot_ms`` until cancelled. The slot
clock is a trio task on the same event loop as the RPC handlers, so chain calls never overlap.

Failure it contains: a stalled event loop (a slow request, a suspended laptop). The clock never
fires a burst of catch-up slots; it re-anchors and carries on, as a validator that missed slots
would.

May import: the standard library, trio, attrs, solders, localnet.*.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import attrs
import trio

from localnet.chain import Chain, ChainConfig
from localnet.genesis import Genesis, apply_genesis
from localnet.ledger import Ledger, write_keypair_file
from localnet.rpc_methods import build_method_table
from localnet.rpc_server import serve_rpc

__all__ = ["NodeSettings", "run_node", "slot_clock"]

logger = logging.getLogger(__name__)

MINT_AUTHORITY_FILE = "localnet-mint-authority.json"


@attrs.frozen
class NodeSettings:
    chain: ChainConfig = attrs.field(factory=ChainConfig)
    host: str = "127.0.0.1"
    rpc_port: int = 8899
    admin: bool = False
    ledger_dir: Path | None = None
    manifest: Path | None = None


async def slot_clock(chain: Chain) -> None:
    period = chain.config.slot_ms / 1000
    deadline = trio.current_time()
    while True:
        deadline += period
        await trio.sleep_until(deadline)
        chain.advance_slot()
        if trio.current_time() - deadline > 10 * period:
            deadline = trio.current_time()  # stalled: re-anchor instead of bursting slots


def _write_manifest(settings: NodeSettings, chain: Chain, genesis: Genesis, port: int) -> None:
    assert settings.manifest is not None
    path = settings.manifest
    path.parent.mkdir(parents=True, exist_ok=True)
    authority_file = path.parent / MINT_AUTHORITY_FILE
    write_keypair_file(authority_file, chain.mint_authority)
    manifest = {
        "rpcUrl": f"http://{settings.host}:{port}",
        "rpcPort": port,
        "slotMs": chain.config.slot_ms,
        "blockhashWindow": chain.config.blockhash_window,
        "confirmSlots": chain.config.confirm_slots,
        "finalizeSlots": chain.config.finalize_slots,
        "seed": chain.config.seed,
        "admin": settings.admin,
        "ledger": None if settings.ledger_dir is None else str(settings.ledger_dir),
        "genesisHash": str(chain.genesis_hash),
        "faucet": str(chain.faucet.pubkey()),
        "mintAuthority": {"pubkey": str(chain.mint_authority.pubkey()), "keypairFile": str(authority_file)},
        "mints": {info.symbol: {"mint": str(info.mint), "decimals": info.decimals} for info in genesis.mints},
        "pid": os.getpid(),
    }
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(json.dumps(manifest, indent=2) + "\n")
    staging.replace(path)  # readers never see half a manifest


async def run_node(
    settings: NodeSettings, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run the node until cancelled; reports the bound RPC port once it answers."""
    ledger = None if settings.ledger_dir is None else Ledger(settings.ledger_dir)
    chain: Chain | None = None
    try:
        chain = Chain(settings.chain, ledger=ledger)
        replayed = chain.replay_ledger()
        genesis = apply_genesis(chain)
        methods = build_method_table(admin=settings.admin)
        async with trio.open_nursery() as nursery:
            port: int = await nursery.start(serve_rpc, chain, methods, settings.host, settings.rpc_port)
            nursery.start_soon(slot_clock, chain)
            if settings.manifest is not None:
                _write_manifest(settings, chain, genesis, port)
            logger.info(
                "localnet listening",
                extra={"port": port, "slot": chain.slot, "replayed": replayed, "admin": settings.admin},
            )
            task_status.started(port)
    finally:
        if ledger is not None:
            if chain is not None:
                chain.checkpoint()
            ledger.close()
