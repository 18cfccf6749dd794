"""The `xorj` command line: `run`, `migrate`, `ctl ...`, `contracts build`.

The only module that turns errors into exit codes: a config error is one line on stderr and exit
code 2 (never a traceback); a node that dies of an escalation exits 1 with its reason.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from chaos import cli as chaos_cli
from contracts import cli as contracts_cli
from engine import ctl
from engine.config import Config, ConfigError, load_config
from engine.logs import configure_logging
from localnet import cli as localnet_cli

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
log = logging.getLogger("xorj.cli")


def _config(args: argparse.Namespace) -> Config:
    path = args.config or os.environ.get("XORJ_CONFIG")
    return load_config(os.environ, Path(path) if path else None)


def _run(args: argparse.Namespace) -> int:
    from engine.node import Node  # the node pulls in the gateways; `xorj ctl` must stay light

    config = _config(args)
    configure_logging(config.log_level, config.log_format)
    try:
        trio.run(Node(config).run)
    except BaseExceptionGroup as group:
        log.critical("engine stopped by an error", exc_info=group)
        return EXIT_FAILED
    return EXIT_OK


def _migrate(args: argparse.Namespace) -> int:
    from engine.node import _database_url
    from engine.postgres_gateway import PostgresGateway
    from sql.migrate import migrate

    config = _config(args)
    configure_logging(config.log_level, config.log_format)

    async def main() -> None:
        async with _database_url(config) as url, trio.open_nursery() as nursery:
            gateway = PostgresGateway(url, pool_min=1, pool_max=2)
            with trio.fail_after(60):
                await nursery.start(gateway.serve)
            applied = await migrate(gateway)
            print(f"applied {len(applied)} migration(s)" + "".join(
                f"\n  {m.version:04d} {m.name}" for m in applied))
            nursery.cancel_scope.cancel()

    trio.run(main)
    return EXIT_OK


def _score(args: argparse.Namespace) -> int:
    import json

    from actors.trust_score import score_v1, score_v2

    try:
        if args.algorithm == "v1":
            result = score_v1(args.roi_pct, args.max_drawdown_pct, args.trades)
        elif args.sharpe is None:
            raise ValueError("--algorithm v2 takes the real Sharpe ratio: give --sharpe")
        else:
            result = score_v2(args.sharpe, args.roi_pct, args.max_drawdown_pct)
    except ValueError as exc:
        print(f"xorj score: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    out = result.as_dict()
    out["inputs"] = {"roi_pct": args.roi_pct, "max_drawdown_pct": args.max_drawdown_pct,
                     "trades": args.trades, "win_rate_pct": args.win_rate_pct}
    print(json.dumps(out, indent=2))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xorj", description="XORJ copy-trading engine for Solana")
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="TOML config file (default: $XORJ_CONFIG); environment variables override it")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.add_parser("run", help="run the engine (embedded Postgres and Redis when no URL is set)") \
        .set_defaults(handler=_run)
    sub.add_parser("migrate", help="apply pending database migrations and exit") \
        .set_defaults(handler=_migrate)
    score = sub.add_parser("score", help="compute the XORJ Trust Score from summary figures")
    score.add_argument("--roi-pct", type=float, required=True)
    score.add_argument("--max-drawdown-pct", type=float, required=True)
    score.add_argument("--trades", type=int, required=True)
    score.add_argument("--win-rate-pct", type=float, default=None,
                       help="shown with the inputs; not part of the formula")
    score.add_argument("--algorithm", choices=["v1", "v2"], default="v1")
    score.add_argument("--sharpe", type=float, default=None, help="the real Sharpe ratio (v2)")
    score.set_defaults(handler=_score)
    ctl.register(sub)
    contracts_cli.register(sub)
    chaos_cli.register(sub)
    localnet_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    return code


if __name__ == "__main__":
    raise SystemExit(main())
