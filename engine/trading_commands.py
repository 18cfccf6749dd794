"""``xorj ctl trades | jobs | trade``: what the executors did, and the trade drill.

Owns: the three control-socket commands (`trading_commands(trading, fault_injection)`, merged by
the node into its table) and their ``xorj ctl`` side (`CTL`, with table renderers):

- ``trades [--user U] [--status S] [--limit N]``: the newest trade attempts, newest first;
- ``jobs [--user U] [--limit N]``: the newest execution jobs (plans), with the followed trader;
- ``trade --user U --input SYM --output SYM --usd X``: a one-leg job through the user's executor,
  the same checks and the same exactly-once lifecycle as a planned trade. A drill for operators
  and the chaos harness, so it needs ``XORJ_FAULT_INJECTION=1``; it answers as soon as the job
  is durable, with the intent id its leg gets (the intent row follows once the route is quoted).

Failure it contains: bad arguments (unknown status, limit out of range, unknown user or mint, a
non-positive amount), a database that is down, a user without a running executor, a refused
drill -- each a `CommandError` naming the problem.

May import: the standard library, `actors`, `sql.errors`, `supervisors`, `engine.control_socket`,
`engine.ctl_spec`, `engine.trading`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from actors.executor import ManualTrade, TradeRefused, executor_name
from actors.rpc_client import RpcError
from actors.trade_lifecycle import TradeStatus
from engine.control_socket import CommandError, CommandSpec
from engine.ctl_spec import CtlCommand, CtlOption, render_generic
from engine.trading import Trading
from sql.errors import DatabaseError
from supervisors import ActorNotFound, ask
from supervisors.request import AskError

__all__ = ["CTL", "render_table", "trading_commands"]

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 1000
DRILL_TIMEOUT_S: Final = 30.0

_TRADES: Final = """
SELECT id, user_id, intent_id, attempt, from_token, to_token, amount_in, minimum_amount_out, amount_out,
       status, slippage, transaction_signature, failure_reason, created_at, updated_at
FROM trades WHERE ($1::varchar IS NULL OR user_id = $1) AND ($2::varchar IS NULL OR status = $2)
ORDER BY created_at DESC, id DESC LIMIT $3
"""
_JOBS: Final = """
SELECT id, user_id, status, trigger, target_trader, scoring_run_id, reason,
       jsonb_array_length(COALESCE(plan->'legs', '[]'::jsonb)) AS legs, created_at, finished_at
FROM execution_jobs WHERE ($1::varchar IS NULL OR user_id = $1) ORDER BY created_at DESC, id DESC LIMIT $2
"""


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _limit(args: Mapping[str, object]) -> int:
    limit = args.get("limit", DEFAULT_LIMIT)
    assert isinstance(limit, int)
    if not 1 <= limit <= MAX_LIMIT:
        raise CommandError(f"--limit must be between 1 and {MAX_LIMIT}, got {limit}")
    return limit


def trading_commands(trading: Trading, *, fault_injection: bool) -> dict[str, CommandSpec]:
    async def user_id(label: str, args: Mapping[str, object]) -> str | None:
        who = args.get("user")
        if who is None:
            return None
        assert isinstance(who, str)
        user = await trading.users.get(who.strip())
        if user is None:
            raise CommandError(f"{label}: unknown user {who!r} (give a user id or the owner's wallet)")
        return user.user_id

    async def trades(args: Mapping[str, object]) -> object:
        status = args.get("status")
        if status is not None:
            assert isinstance(status, str)
            if status.upper() not in TradeStatus.__members__:
                raise CommandError(
                    f"trades: unknown --status {status!r}; use one of {', '.join(TradeStatus)}")
            status = status.upper()
        try:
            who = await user_id("trades", args)
            rows = await trading.postgres.fetch(_TRADES, who, status, _limit(args), timeout=10.0)
        except DatabaseError as exc:
            raise CommandError(f"trades: database: {exc}") from None
        return {"trades": [{k: _plain(v) for k, v in dict(r).items()} for r in rows]}

    async def jobs(args: Mapping[str, object]) -> object:
        try:
            who = await user_id("jobs", args)
            rows = await trading.postgres.fetch(_JOBS, who, _limit(args), timeout=10.0)
        except DatabaseError as exc:
            raise CommandError(f"jobs: database: {exc}") from None
        return {"jobs": [{k: _plain(v) for k, v in dict(r).items()} for r in rows]}

    def mint(label: str, symbol_or_mint: object) -> str:
        desk = trading.desk
        assert desk is not None and isinstance(symbol_or_mint, str)
        by_symbol = {s.upper(): m for m, s in desk.market.symbols.items() if m in desk.market.decimals}
        found = by_symbol.get(symbol_or_mint.upper(), symbol_or_mint)
        if found not in desk.market.decimals:
            raise CommandError(f"trade: {label} {symbol_or_mint!r} is not a traded mint; use one of"
                               f" {', '.join(sorted(by_symbol))}")
        return found

    async def trade(args: Mapping[str, object]) -> object:
        if not fault_injection:
            raise CommandError("trade is a drill: it needs XORJ_FAULT_INJECTION=1")
        if trading.desk is None:
            raise CommandError(f"trade: trading is off ({trading.off_reason or 'starting'})")
        usd = args["usd"]
        assert isinstance(usd, float | int)
        if not (math.isfinite(usd) and usd > 0):
            raise CommandError(f"trade: --usd must be a positive number, got {usd}")
        input_mint, output_mint = mint("--input", args["input"]), mint("--output", args["output"])
        if input_mint == output_mint:
            raise CommandError("trade: --input and --output must differ")
        try:
            uid = await user_id("trade", args)
        except DatabaseError as exc:
            raise CommandError(f"trade: database: {exc}") from None
        assert uid is not None
        try:
            answer = await ask(trading.registry.ref(executor_name(uid)),
                               ManualTrade(input_mint, output_mint, float(usd)), timeout=DRILL_TIMEOUT_S)
        except ActorNotFound:
            raise CommandError(f"trade: {uid} has no running executor (is its bot enabled?)") from None
        except (TradeRefused, DatabaseError, RpcError, AskError) as exc:
            raise CommandError(f"trade: refused: {exc}") from None
        return {"user_id": uid, **answer}

    return {
        "trades": CommandSpec(trades, optional={"user": str, "status": str, "limit": int},
                              help="trades [--user U] [--status S] [--limit N]: the newest trade attempts"),
        "jobs": CommandSpec(jobs, optional={"user": str, "limit": int},
                            help="jobs [--user U] [--limit N]: the newest execution jobs"),
        "trade": CommandSpec(trade, required={"user": str, "input": str, "output": str, "usd": float},
                             timeout=DRILL_TIMEOUT_S + 5.0,
                             help="trade --user U --input SYM --output SYM --usd X: a drill"),
    }


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    return text if len(text) <= 24 else text[:10] + "..." + text[-8:]


def render_table(key: str, columns: tuple[str, ...]) -> Any:
    def render(result: object, args: Mapping[str, object]) -> str:
        if not isinstance(result, dict) or not isinstance(result.get(key), list):
            return render_generic(result, args)
        rows = [[c.upper() for c in columns]]
        rows += [[_cell(r.get(c)) for c in columns] for r in result[key] if isinstance(r, dict)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
        lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
        return "\n".join([f"{len(rows) - 1} {key}", *lines])
    return render


_USER: Final = CtlOption("--user", "user", "only this user (user id or owner wallet)", kind=str)
_LIMIT: Final = CtlOption("--limit", "limit", f"at most this many (default {DEFAULT_LIMIT})", kind=int)

CTL: Final[tuple[CtlCommand, ...]] = (
    CtlCommand("trades", "the newest trade attempts", (),
               render_table("trades", ("created_at", "user_id", "intent_id", "attempt", "status",
                                       "failure_reason", "amount_in", "amount_out", "transaction_signature")),
               (_USER, CtlOption("--status", "status", "only this status", kind=str,
                                 choices=tuple(s.value for s in TradeStatus)), _LIMIT)),
    CtlCommand("jobs", "the newest execution jobs (plans)", (),
               render_table("jobs", ("created_at", "user_id", "status", "trigger", "legs", "target_trader",
                                     "reason")),
               (_USER, _LIMIT)),
    CtlCommand("trade", "a trade drill through the user's executor (needs XORJ_FAULT_INJECTION=1)", (),
               lambda result, _args: json.dumps(result) if not isinstance(result, str) else result,
               (CtlOption("--user", "user", "the user (user id or owner wallet)", kind=str),
                CtlOption("--input", "input", "the mint to sell (symbol or mint)", kind=str),
                CtlOption("--output", "output", "the mint to buy (symbol or mint)", kind=str),
                CtlOption("--usd", "usd", "how much, in USD", kind=float))),
)
