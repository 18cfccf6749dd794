"""`python -m bench <suite> --out FILE`: run one benchmark suite and write its JSON figures.

A suite is a module `bench.<suite>` with `def figures() -> dict[str, Figure]` (it may start trio or
processes itself). The JSON shape is DESIGN section 13's, so versions can be compared figure by figure.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from bench.report import write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("suite", help="suite name: a module under bench/ (runtime, contracts, ...)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON figures")
    args = parser.parse_args(argv)
    try:
        module = importlib.import_module(f"bench.{args.suite}")
    except ModuleNotFoundError:
        print(f"bench: no suite named {args.suite!r}", file=sys.stderr)
        return 2
    figures = module.figures()
    report = write_report(args.suite, figures, args.out)
    for name, fig in report["figures"].items():
        target = f" (target {fig['target']})" if fig.get("target") is not None else ""
        print(f"{name:28} {fig['value']:>14.6g} {fig['unit']}{target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
