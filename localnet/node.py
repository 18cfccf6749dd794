"""The local chain node: the chain, its slot clock, genesis, the JSON-RPC server and the manifest.

Owns: the lifecycle of one node -- open the ledger (if any) and replay it, run genesis (the seeded
market by default), start serving (JSON-RPC, and the price API, the market maker and the live
traders when there is a market), write the manifest, then advance one slot every ``slot_ms`` until
cancelled. The slot clock is a trio task on the same event loop as the RPC handlers, so chain calls
never overlap.

Failure it contains: a stalled event loop (a slow request, a suspended laptop). The clock never
fires a burst of catch-up slots; it re-anchors and carries on, as a validator that missed slots
would.

May import: the standard library, trio, attrs, solders, contracts.vault_client, localnet.*.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
from pathlib import Path

import attrs
import trio

from contracts.vault_client import VaultClient
from localnet.chain import Chain, ChainConfig
from localnet.genesis import GENESIS_STEPS, Genesis, apply_genesis, market_genesis
from localnet.ledger import Ledger, write_keypair_file
from localnet.live_traders import DEFAULT_EVERY_SLOTS, live_traders, run_live_traders
from localnet.market import Market, market_keys, read_genesis_note
from localnet.market_maker import run_market_maker
from localnet.price_api import PriceBook, build_price_app
from localnet.rpc_methods import build_method_table
from localnet.rpc_server import bind_port, serve_asgi, serve_rpc

__all__ = ["NodeSettings", "run_node", "slot_clock"]

logger = logging.getLogger(__name__)

MINT_AUTHORITY_FILE = "localnet-mint-authority.json"
BOT_FILE = "localnet-bot.json"


@attrs.frozen
class NodeSettings:
    chain: ChainConfig = attrs.field(factory=ChainConfig)
    host: str = "127.0.0.1"
    rpc_port: int = 8899
    price_port: int = 8898
    admin: bool = False
    ledger_dir: Path | None = None
    manifest: Path | None = None
    genesis: str = "market"  # "market" (the seeded market) | "mints" (mints only)
    market_maker_slots: int = 5  # the market maker moves the pools every this many slots (0: never)
    live_traders: bool = True  # some trader wallets keep trading after genesis (``localnet.live_traders``)
    live_every_slots: int = DEFAULT_EVERY_SLOTS  # one live trader's turn every this many slots


async def slot_clock(chain: Chain) -> None:
    period = chain.config.slot_ms / 1000
    deadline = trio.current_time()
    while True:
        deadline += period
        await trio.sleep_until(deadline)
        chain.advance_slot()
        if trio.current_time() - deadline > 10 * period:
            deadline = trio.current_time()  # stalled: re-anchor instead of bursting slots


def _market_json(
    market: Market, folder: Path, host: str, price_port: int, live_every_slots: int | None
) -> dict[str, object]:
    """The market's part of the manifest; keypairs go to files (0600) next to it, never inside."""
    bot_file = folder / BOT_FILE
    write_keypair_file(bot_file, market.bot)
    users = []
    for index, user in enumerate(market.demo_users):
        owner_file = folder / f"localnet-demo-user-{index}.json"
        write_keypair_file(owner_file, user.owner)
        users.append({
            "owner": str(user.owner.pubkey()),
            "keypairFile": str(owner_file),
            "vault": str(user.vault),
            "vaultUsdcAccount": str(user.vault_usdc_account),
            "deposit": user.deposit,
        })
    return {
        "priceUrl": f"http://{host}:{price_port}",
        "pricePort": price_port,
        "genesisTime": market.genesis_time,
        "historyStart": market.history_start,
        "genesisTransactions": market.transactions,
        "genesisSeconds": round(market.seconds, 3),
        "programs": {
            "vault": str(market.vault_program),
            "amm": str(market.amm_program),
            "upgradeAuthority": str(market.admin.pubkey()),
            "vaultConfig": str(VaultClient(market.vault_program).config()),
        },
        "pools": {
            pool.symbol: {
                "pool": str(pool.pool),
                "mint": str(pool.mint),
                "quoteMint": str(market.usdc.mint),
                "mintA": str(pool.mint_a),
                "mintB": str(pool.mint_b),
                "tokenAccount": str(pool.token_account),
                "usdcAccount": str(pool.usdc_account),
                "feeBps": pool.fee_bps,
            }
            for pool in market.pools
        },
        "marketMaker": str(market.market_maker.pubkey()),
        "botAuthority": {"pubkey": str(market.bot.pubkey()), "keypairFile": str(bot_file)},
        "demoUsers": users,
        "traders": [
            {"name": t.name, "pubkey": str(t.keypair.pubkey()), "reference": t.reference, "trips": t.trips}
            for t in market.traders
        ],
        # who keeps trading after genesis, and how often a turn comes (null: nobody does)
        "liveTraders": None if live_every_slots is None else {
            "everySlots": live_every_slots,
            "traders": [{"name": t.name, "pubkey": str(t.pubkey)} for t in live_traders(market)],
        },
    }


def _write_manifest(
    settings: NodeSettings, chain: Chain, genesis: Genesis, port: int, price_port: int | None
) -> None:
    assert settings.manifest is not None
    path = settings.manifest
    path.parent.mkdir(parents=True, exist_ok=True)
    authority_file = path.parent / MINT_AUTHORITY_FILE
    write_keypair_file(authority_file, chain.mint_authority)
    manifest: dict[str, object] = {
        "rpcUrl": f"http://{settings.host}:{port}",
        "rpcPort": port,
        "slotMs": chain.config.slot_ms,
        "blockhashWindow": chain.config.blockhash_window,
        "confirmSlots": chain.config.confirm_slots,
        "finalizeSlots": chain.config.finalize_slots,
        "seed": chain.config.seed,
        "genesis": settings.genesis,
        "admin": settings.admin,
        "ledger": None if settings.ledger_dir is None else str(settings.ledger_dir),
        "genesisHash": str(chain.genesis_hash),
        "faucet": str(chain.faucet.pubkey()),
        "mintAuthority": {"pubkey": str(chain.mint_authority.pubkey()), "keypairFile": str(authority_file)},
        "mints": {info.symbol: {"mint": str(info.mint), "decimals": info.decimals} for info in genesis.mints},
        "pid": os.getpid(),
    }
    if genesis.market is not None and price_port is not None:
        live = settings.live_every_slots if settings.live_traders else None
        manifest.update(_market_json(genesis.market, path.parent, settings.host, price_port, live))
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(json.dumps(manifest, indent=2) + "\n")
    staging.replace(path)  # readers never see half a manifest


def _chain_for(settings: NodeSettings, ledger: Ledger | None) -> Chain:
    """A seeded market's chain signs with keys derived from the seed (a ledger keeps the seed its
    genesis used, so a restart with another ``--seed`` still reopens the same chain)."""
    if settings.genesis != "market":
        return Chain(settings.chain, ledger=ledger)
    config = settings.chain
    note = None if settings.ledger_dir is None else read_genesis_note(settings.ledger_dir)
    if note is not None and note["seed"] != config.seed:
        logger.warning("the ledger's genesis used seed %s; keeping it", note["seed"])
        config = attrs.evolve(config, seed=note["seed"])
    keys = market_keys(config.seed)
    return Chain(config, ledger=ledger, faucet=keys.faucet, mint_authority=keys.mint_authority)


async def run_node(
    settings: NodeSettings, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run the node until cancelled; reports the bound RPC port once it answers."""
    ledger = None if settings.ledger_dir is None else Ledger(settings.ledger_dir)
    chain: Chain | None = None
    sockets: list[socket.socket] = []
    try:
        sockets.append(bind_port(settings.host, settings.rpc_port))
        if settings.genesis == "market":
            sockets.append(bind_port(settings.host, settings.price_port))
        chain = _chain_for(settings, ledger)
        replayed = chain.replay_ledger()
        steps = (
            (market_genesis(chain.config.seed, settings.ledger_dir),)
            if settings.genesis == "market"
            else GENESIS_STEPS
        )
        # genesis is seconds of synchronous work: in a worker thread the event loop stays alive
        # (signals are received; a SIGTERM takes effect once genesis returns, so the ledger is
        # never closed under it). Nothing else touches the chain until it returns.
        genesis = await trio.to_thread.run_sync(apply_genesis, chain, steps)
        methods = build_method_table(admin=settings.admin)
        async with trio.open_nursery() as nursery:
            port: int = await nursery.start(serve_rpc, chain, methods, settings.host, sockets[0])
            price_port: int | None = None
            if genesis.market is not None:
                book = PriceBook(chain, genesis.market)
                price_port = await nursery.start(
                    serve_asgi, build_price_app(book), sockets[1], "localnet.price.hypercorn"
                )
                if settings.market_maker_slots > 0:
                    nursery.start_soon(
                        functools.partial(
                            run_market_maker, chain, genesis.market, book,
                            every_slots=settings.market_maker_slots,
                        )
                    )
                if settings.live_traders:
                    nursery.start_soon(
                        functools.partial(
                            run_live_traders, chain, genesis.market, every_slots=settings.live_every_slots
                        )
                    )
            nursery.start_soon(slot_clock, chain)
            if settings.manifest is not None:
                _write_manifest(settings, chain, genesis, port, price_port)
            logger.info(
                "localnet listening",
                extra={"port": port, "pricePort": price_port, "slot": chain.slot, "replayed": replayed,
                       "admin": settings.admin},
            )
            task_status.started(port)
    finally:
        for sock in sockets:
            if sock.fileno() != -1:
                sock.close()  # a port bound but never served (genesis failed or was cancelled)
        if ledger is not None:
            if chain is not None:
                chain.checkpoint()
            ledger.close()
