"""The `xorj chaos` command: `xorj chaos proxy [--host H] [--port P] [--config FILE] [--seed N]`.

Owns: the argparse wiring for the chaos commands (`engine/cli.py` calls `register()`), and the
proxy command's lifecycle: serve toxiproxy's API until SIGTERM or SIGINT, then exit 0.

Failure it contains: an API port already in use or an unreadable config path is reported on
stderr with exit status 1, not a traceback.

May import: the standard library, trio, chaos.proxy_api.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from functools import partial
from pathlib import Path

import trio

from chaos.proxy_api import serve

__all__ = ["main", "register"]


async def _run_proxy(host: str, port: int, config: Path | None, seed: int | None) -> int:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            try:
                bound = await nursery.start(partial(serve, host, port, config=config, seed=seed))
            except OSError as exc:
                print(f"chaos proxy: cannot serve on {host}:{port}: {exc}", file=sys.stderr)
                return 1
            print(f"xorj chaos proxy: toxiproxy API on http://{host}:{bound}", flush=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break
    return 0


def _proxy(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = Path(args.config) if args.config else None
    if config is not None and not config.is_file():
        print(f"chaos proxy: config file {config} not found", file=sys.stderr)
        return 1
    code: int = trio.run(_run_proxy, args.host, args.port, config, args.seed)
    return code


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    chaos = subparsers.add_parser("chaos", help="fault injection: the toxiproxy-compatible fault proxy")
    sub = chaos.add_subparsers(dest="chaos_command", required=True)
    proxy = sub.add_parser("proxy", help="serve toxiproxy 2.12's HTTP API and its proxies")
    # toxiproxy-server's single-dash spellings are accepted too, so its command lines work as is.
    proxy.add_argument("--host", "-host", default="127.0.0.1", help="API address (default: 127.0.0.1)")
    proxy.add_argument("--port", "-port", type=int, default=8474,
                       help="API port (default: 8474; 0 picks one)")
    proxy.add_argument("--config", "-config", default=None, metavar="FILE",
                       help="JSON array of proxies to create at start (toxiproxy's -config)")
    proxy.add_argument("--seed", "-seed", type=int, default=None,
                       help="seed for the toxicity random numbers")
    proxy.set_defaults(handler=_proxy)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos")
    subparsers = parser.add_subparsers(dest="command", required=True)
    register(subparsers)
    # `python -m chaos proxy ...` is `xorj chaos proxy ...`.
    args = parser.parse_args(["chaos", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.handler(args)
    return code
