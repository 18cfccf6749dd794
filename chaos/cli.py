"""The `xorj chaos` commands: `xorj chaos proxy [--host H] [--port P] [--config FILE] [--seed N]`
and `xorj chaos run [--suite seed|full] [--scenario NAME] [--seed N] [--toxiproxy-url URL]
[--report FILE] [--workdir DIR] [--keep-workdir]`.

Owns: the argparse wiring for the chaos commands (`engine/cli.py` calls `register()`), the proxy
command's lifecycle (serve toxiproxy's API until SIGTERM or SIGINT, then exit 0) and the run
command's (bring the topology up, run the suite, print the table, write the report; exit 0 only
if every critical scenario passed, 1 if one failed, 2 if the run could not be made).

Failure it contains: an API port already in use, an unreadable config path, an unknown scenario
or a topology that cannot come up is reported on stderr with a non-zero exit status, not a
traceback.

May import: the standard library, trio, chaos.proxy_api; chaos.runner and chaos.report inside
the run command only (the proxy command does not load the engine).
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
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


def _run(args: argparse.Namespace) -> int:
    from chaos.report import write_report
    from chaos.runner import RunOptions, run_suite
    from chaos.scenarios import suite
    from chaos.topology import TopologyError

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        suite(args.suite, tuple(args.scenario or ()))
    except KeyError as exc:
        print(f"chaos run: {exc.args[0]}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    # Not under /tmp/pytest-of-*: the embedded PostgreSQL's unprivileged user must reach it.
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="xorj-chaos-"))
    options = RunOptions(suite=args.suite, scenarios=tuple(args.scenario or ()), seed=seed,
                         toxiproxy_url=args.toxiproxy_url or os.environ.get("TOXIPROXY_URL") or None,
                         workdir=workdir)
    print(f"xorj chaos run: suite {args.suite}, seed {seed}, work dir {workdir}", flush=True)
    try:
        report = trio.run(run_suite, options)
    except TopologyError as exc:
        print(f"chaos run: the topology did not come up: {exc}", file=sys.stderr)
        return 2
    print(report.table())
    if args.report:
        write_report(report, Path(args.report))
        print(f"report written to {args.report}")
    if report.passed and not args.keep_workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    elif not report.passed:
        print(f"logs kept in {workdir} (engine.log, chain.log); replay with --seed {seed}")
    return 0 if report.passed else 1


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    chaos = subparsers.add_parser(
        "chaos", help="fault injection: the toxiproxy-compatible fault proxy and the chaos suite")
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

    run = sub.add_parser("run", help="run the chaos suite against the engine on embedded parts")
    run.add_argument("--suite", choices=("seed", "full"), default="seed",
                     help="seed: the thirteen checks (minutes); full: every scenario (default: seed)")
    run.add_argument("--scenario", action="append", metavar="NAME",
                     help="run only this scenario (repeatable)")
    run.add_argument("--seed", type=int, default=None,
                     help="the run's seed (default: a random one, reported)")
    run.add_argument("--toxiproxy-url", default=None, metavar="URL",
                     help="a running toxiproxy server (default: $TOXIPROXY_URL, else our fault proxy)")
    run.add_argument("--report", default=None, metavar="FILE", help="write the JSON report here")
    run.add_argument("--workdir", default=None, metavar="DIR",
                     help="where the servers, chain and engine keep their files (default: a new temp dir)")
    run.add_argument("--keep-workdir", action="store_true", help="keep the work dir after a passing run")
    run.set_defaults(handler=_run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos")
    subparsers = parser.add_subparsers(dest="command", required=True)
    register(subparsers)
    # `python -m chaos proxy ...` is `xorj chaos proxy ...`.
    args = parser.parse_args(["chaos", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.handler(args)
    return code
