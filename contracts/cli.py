"""The `xorj contracts` command: `xorj contracts build [--out DIR] [--force]`.

Owns: the argparse wiring for the contracts commands; `engine/cli.py` calls `register()`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from contracts.build import DEFAULT_OUT, BuildError, build_all
from contracts.idl import write_all
from contracts.sbf_linker import LinkError


def _build(args: argparse.Namespace) -> int:
    try:
        built = build_all(Path(args.out), force=bool(args.force))
    except (BuildError, LinkError) as exc:
        print(f"contracts build: {exc}", file=sys.stderr)
        return 1
    for name, path in built.items():
        print(f"{name:6} {path} ({path.stat().st_size} bytes)")
    return 0


def _idl(args: argparse.Namespace) -> int:
    for path in write_all():
        print(path)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    contracts = subparsers.add_parser("contracts", help="the on-chain programs")
    sub = contracts.add_subparsers(dest="contracts_command", required=True)
    build = sub.add_parser("build", help="compile the C programs and link them with the SBF linker")
    build.add_argument("--out", default=str(DEFAULT_OUT), help="output directory (default: contracts/build)")
    build.add_argument("--force", action="store_true", help="rebuild even when up to date")
    build.set_defaults(handler=_build)
    idl = sub.add_parser("idl", help="regenerate contracts/idl/*.json from contracts/definitions.py")
    idl.set_defaults(handler=_idl)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contracts")
    subparsers = parser.add_subparsers(dest="command", required=True)
    register(subparsers)
    # `python -m contracts build ...` is `xorj contracts build ...`.
    args = parser.parse_args(["contracts", *(sys.argv[1:] if argv is None else argv)])
    handler = args.handler
    code: int = handler(args)
    return code
