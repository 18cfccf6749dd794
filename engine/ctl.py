"""``xorj ctl``: the operator's commands against a running engine, over the control socket.

Owns: the ``ctl`` sub-command of the ``xorj`` CLI, its sub-commands (one table, ``COMMANDS``;
a new command is one ``CtlCommand`` entry plus a server-side ``CommandSpec``) and how each
result is printed for a human (``--json`` prints the raw result for scripts).

Failure it contains: an unreachable or refusing engine, or a bad config. Each becomes one line
on stderr and exit status 1 (2 for usage and config errors), never a traceback.

May import: the standard library, attrs, engine.config, engine.control_client, engine.ctl_spec and
the ``CTL`` tables of the command modules (engine.*_commands).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from engine.alert_commands import CTL as ALERTS_CTL
from engine.config import ConfigError, load_config
from engine.control_client import ControlError, request
from engine.ctl_spec import CtlArgument, CtlCommand, CtlOption, render_generic, said
from engine.risk_commands import CTL as RISK_CTL
from engine.trading_commands import CTL as TRADING_CTL
from engine.user_commands import CTL as USERS_CTL

__all__ = ["COMMANDS", "CtlArgument", "CtlCommand", "CtlOption", "register", "render_rankings", "render_tree"]

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2

def _tree_rows(node: object, prefix: str, child_prefix: str, rows: list[tuple[str, list[str]]]) -> None:
    if not isinstance(node, dict):
        rows.append((f"{prefix}?", [f"(unreadable node {json.dumps(node)})"]))
        return
    kind = str(node.get("kind", "?"))
    strategy = node.get("strategy")
    columns = [
        kind,
        str(strategy) if kind == "supervisor" and strategy else "-",
        str(node.get("state", "?")),
        f"restarts={node.get('restarts', '?')}",
        f"mailbox={node.get('mailbox_depth', '?')}",
    ]
    rows.append((f"{prefix}{node.get('name', '?')}", columns))
    children = node.get("children") or []
    if not isinstance(children, list):
        children = []
    for i, child in enumerate(children):
        last = i == len(children) - 1
        _tree_rows(
            child,
            child_prefix + ("└── " if last else "├── "),
            child_prefix + ("    " if last else "│   "),
            rows,
        )


def render_tree(result: object, _args: Mapping[str, object] | None = None) -> str:
    """The supervision tree, one aligned line per node: name, kind, strategy, state, restarts,
    mailbox depth. Tolerates missing fields (shown as ``?``) so a newer engine still renders."""
    rows: list[tuple[str, list[str]]] = []
    _tree_rows(result, "", "", rows)
    widths = [max(len(r[0]) for r in rows)]
    for col in range(len(rows[0][1])):
        widths.append(max((len(r[1][col]) for r in rows if len(r[1]) > col), default=0))
    lines = []
    for label, columns in rows:
        cells = [label.ljust(widths[0])] + [c.ljust(widths[i + 1]) for i, c in enumerate(columns)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _cell(value: object, fmt: str = "{:.2f}") -> str:
    if value is None:
        return "-"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return fmt.format(value)
    return str(value)


def render_rankings(result: object, _args: Mapping[str, object]) -> str:
    """The latest COMPLETED ranking as an aligned table, under one line describing its run."""
    if not isinstance(result, dict):
        return render_generic(result, _args)
    run, rows = result.get("run"), result.get("rankings") or []
    if not isinstance(run, dict):
        return "no COMPLETED scoring run yet (run `xorj ctl score-now`)"
    head = (f"run {run.get('id')} ({run.get('algorithm')}, {run.get('window_days')}-day window) "
            f"finished {run.get('finished_at')}: {run.get('wallets_ok')}/{run.get('wallets_total')} "
            f"wallets ingested, {run.get('swaps_unvalued')} swaps unvalued")
    table = [["RANK", "WALLET", "SCORE", "ELIGIBLE", "ROI%", "WIN%", "DD%", "TRADES", "REASON"]]
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        table.append([
            _cell(row.get("rank"), "{}"), str(row.get("wallet", "?")), _cell(row.get("score")),
            "yes" if row.get("eligible") else "no", _cell(row.get("roi_pct")), _cell(row.get("win_rate_pct")),
            _cell(row.get("max_drawdown_pct")), _cell(row.get("trades"), "{}"),
            "" if row.get("eligible") else str(row.get("eligibility_reason", "")),
        ])
    widths = [max(len(r[c]) for r in table) for c in range(len(table[0]))]
    lines = ["  ".join(cell.ljust(widths[c]) for c, cell in enumerate(r)).rstrip() for r in table]
    return "\n".join([head, *lines])


def render_traders(result: object, args: Mapping[str, object]) -> str:
    if isinstance(result, dict) and "traders" in result and isinstance(result["traders"], list):
        lines = [f"{len(result['traders'])} tracked wallet(s)"]
        for t in result["traders"]:
            if isinstance(t, dict):
                error = t.get("last_ingest_error")
                lines.append(f"{t.get('wallet')}  source={t.get('source')}  "
                             f"last_ingested={t.get('last_ingested_at') or '-'}"
                             + (f"  error={error}" if error else ""))
        return "\n".join(lines)
    if isinstance(result, dict) and "wallet" in result:
        return f"{result['wallet']}: " + ("now tracked" if result.get("added") else "already tracked")
    return render_generic(result, args)


def render_score_now(result: object, args: Mapping[str, object]) -> str:
    if isinstance(result, dict) and "status" in result:
        line = (f"scoring run {result.get('run_id')}: {result['status']} -- "
                f"{result.get('wallets_ok')}/{result.get('wallets_total')} wallets ingested, "
                f"{result.get('swaps_ingested')} new swaps, {result.get('swaps_unvalued')} unvalued")
        return line + (f"\nerror: {result['error']}" if result.get("error") else "")
    return render_generic(result, args)


COMMANDS: Final[tuple[CtlCommand, ...]] = (
    CtlCommand("status", "show the node's state and its dependencies"),
    CtlCommand("tree", "show the supervision tree", render=render_tree),
    CtlCommand(
        "restart",
        "restart an actor through its supervisor",
        (CtlArgument("actor", "the actor's name, as shown by `xorj ctl tree`"),),
        said("restart of {actor} requested"),
    ),
    CtlCommand(
        "crash",
        "inject a crash into an actor (needs XORJ_FAULT_INJECTION=1 on the engine)",
        (CtlArgument("actor", "the actor's name, as shown by `xorj ctl tree`"),),
        said("crash injected into {actor}"),
    ),
    CtlCommand("shutdown", "stop the engine gracefully", render=said("shutdown requested")),
    CtlCommand("score-now", "run a scoring run now and wait for its outcome", render=render_score_now),
    CtlCommand(
        "rankings",
        "show the latest COMPLETED ranking: rank, wallet, score, eligibility, metrics",
        render=render_rankings,
        options=(CtlOption("--limit", "limit", "show the top N wallets (default 50)"),),
    ),
    CtlCommand(
        "traders",
        "track a trader wallet (traders add <wallet>) or list the tracked ones (traders list)",
        (CtlArgument("action", "add or list"),
         CtlArgument("wallet", "the wallet address (base58), for add", optional=True)),
        render_traders,
    ),
    *USERS_CTL, *RISK_CTL, *ALERTS_CTL, *TRADING_CTL,
)


def _socket_path(args: argparse.Namespace) -> Path:
    explicit: Path | None = args.socket
    if explicit is not None:
        return explicit
    config_path: Path | None = getattr(args, "config", None)
    return load_config(os.environ, Path(config_path) if config_path else None).xorj_control_socket


def _runner(command: CtlCommand) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        label = f"xorj ctl {command.name}"
        try:
            path = _socket_path(args)
        except ConfigError as e:
            print(f"{label}: {e}", file=sys.stderr)
            return EXIT_USAGE
        sent = {arg.name: getattr(args, arg.name) for arg in command.arguments}
        sent = {k: v for k, v in sent.items() if v is not None}
        for option in command.options:
            if getattr(args, option.name) is not None:
                sent[option.name] = getattr(args, option.name)
        try:
            result = request(path, command.name, sent, timeout=args.timeout)
        except ControlError as e:
            print(f"{label}: {e}", file=sys.stderr)
            return EXIT_ERROR
        if args.json:
            print(json.dumps(result, indent=2, sort_keys=False))
        else:
            print(command.render(result, sent))
        return EXIT_OK

    return run


_METAVARS: Final[dict[type, str]] = {int: "N", float: "X", str: "TEXT"}


def _positive_seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {raw!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {raw!r}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``ctl`` and its sub-commands to the ``xorj`` CLI; each sets ``handler(args) -> int``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--socket",
        type=Path,
        default=None,
        metavar="PATH",
        help="control socket (default: XORJ_CONTROL_SOCKET, else $XORJ_HOME/control.sock)",
    )
    common.add_argument("--json", action="store_true", help="print the raw JSON result")
    common.add_argument(
        "--timeout", type=_positive_seconds, default=10.0, metavar="SECONDS", help="answer deadline"
    )
    ctl = subparsers.add_parser("ctl", help="control a running engine over its control socket")
    commands = ctl.add_subparsers(dest="ctl_command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        parser = commands.add_parser(command.name, help=command.help, parents=[common])
        for arg in command.arguments:
            parser.add_argument(arg.name, help=arg.help, nargs="?" if arg.optional else None)
        for option in command.options:
            parser.add_argument(option.flag, dest=option.name, type=option.kind, default=None,
                                choices=option.choices, metavar=_METAVARS.get(option.kind, "VALUE"),
                                help=option.help)
        parser.set_defaults(handler=_runner(command))
