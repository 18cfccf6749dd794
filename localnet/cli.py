"""``xorj localnet``: run the local Solana chain until SIGTERM or SIGINT.

Owns: the command-line surface of the node (flags -> ``NodeSettings``) and the signal handling
that turns SIGTERM/SIGINT into a clean exit 0. ``register`` plugs the command into ``xorj``'s
argparse; ``python -m localnet`` uses the same flags.

May import: the standard library, trio, localnet.chain, localnet.live_traders, localnet.node.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import signal
import sys
from pathlib import Path

import trio

from localnet.chain import ChainConfig
from localnet.live_traders import DEFAULT_EVERY_SLOTS
from localnet.node import NodeSettings, run_node

__all__ = ["add_arguments", "main", "register", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rpc-port", type=int, default=8899, help="JSON-RPC port (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--slot-ms", type=int, default=400, help="slot length in milliseconds")
    parser.add_argument("--blockhash-window", type=int, default=150, help="slots a blockhash stays valid")
    parser.add_argument("--confirm-slots", type=int, default=1, help="slot age at which a tx is confirmed")
    parser.add_argument("--finalize-slots", type=int, default=32, help="slot age at which a tx is finalized")
    parser.add_argument(
        "--ledger", type=Path, default=None, help="directory keeping the chain across restarts"
    )
    parser.add_argument("--admin", action="store_true", help="answer the localnet_* admin methods")
    parser.add_argument(
        "--seed", type=int, default=None,
        help="seed of the market genesis (keys, addresses, histories) and of the fault RNG; "
        "without it each start picks one (reported in the manifest)",
    )
    parser.add_argument("--price-port", type=int, default=8898, help="price/quote API port (0 picks one)")
    parser.add_argument(
        "--genesis", choices=("market", "mints"), default="market",
        help="market: programs, pools, trader histories, demo users; mints: the token mints only",
    )
    parser.add_argument(
        "--market-maker-slots", type=int, default=5,
        help="the market maker moves each pool every this many slots (0: never)",
    )
    parser.add_argument(
        "--live-traders", action=argparse.BooleanOptionalAction, default=True,
        help="with --genesis market: the reference traders and the others past the scorer's trade "
        "floor keep trading after genesis",
    )
    parser.add_argument(
        "--live-every-slots", type=int, default=DEFAULT_EVERY_SLOTS,
        help="one live trader moves its book every this many slots",
    )
    parser.add_argument("--manifest", type=Path, default=None, help="write the node's manifest JSON here")
    parser.add_argument("--log-level", default="INFO", help="logging level")


def settings_from_args(args: argparse.Namespace) -> NodeSettings:
    for name in ("slot_ms", "blockhash_window", "confirm_slots", "finalize_slots"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be at least 1")
    if args.market_maker_slots < 0:
        raise SystemExit("--market-maker-slots must be at least 0")
    if args.live_every_slots < 1:
        raise SystemExit("--live-every-slots must be at least 1")
    if args.finalize_slots < args.confirm_slots:
        raise SystemExit("--finalize-slots must be at least --confirm-slots")
    return NodeSettings(
        chain=ChainConfig(
            slot_ms=args.slot_ms,
            blockhash_window=args.blockhash_window,
            confirm_slots=args.confirm_slots,
            finalize_slots=args.finalize_slots,
            seed=secrets.randbelow(2**31) if args.seed is None else args.seed,
        ),
        host=args.host,
        rpc_port=args.rpc_port,
        price_port=args.price_port,
        genesis=args.genesis,
        market_maker_slots=args.market_maker_slots,
        live_traders=args.live_traders,
        live_every_slots=args.live_every_slots,
        admin=args.admin,
        ledger_dir=args.ledger,
        manifest=args.manifest,
    )


async def _serve_until_signalled(settings: NodeSettings) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            port: int = await nursery.start(run_node, settings)
            print(f"localnet listening on http://{settings.host}:{port}", flush=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    settings = settings_from_args(args)
    failures: list[BaseException] = []
    try:
        trio.run(_serve_until_signalled, settings)
    except* OSError as group:
        # the one expected start-up failure (the port is taken, the ledger is unwritable): say so
        # plainly instead of an exception-group traceback
        failures.extend(_leaves(group))
    for error in failures:
        print(f"xorj localnet: {error}", file=sys.stderr)
    return 1 if failures else 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("localnet", help="run the local Solana chain (JSON-RPC over LiteSVM)")
    add_arguments(parser)
    parser.set_defaults(handler=run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localnet", description="the local Solana chain")
    add_arguments(parser)
    return run(parser.parse_args(argv))
