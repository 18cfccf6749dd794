"""The scorer's control-socket commands (`score-now`, `rankings`, `traders` add | list) and its
settings from the engine's config.

Owns: the handlers and their `CommandSpec`s, built by `scorer_commands(scorer_ref, db)` (the node
merges the dict into its command table), and `scorer_settings(config, manifest)`, the one place the
scorer's `Config` settings (and, in embedded mode, the local chain's manifest) become its
`ScorerSettings`. It lives in `engine` because `actors` never imports
`engine`; it imports the scorer's messages and queries from `actors.scorer`.

Failure it contains: a bad argument (an invalid wallet, a bad action, a non-positive limit), a scorer
that does not answer in time, a database that is down. Each becomes a `CommandError` -- one line to
the operator -- never a traceback.

May import: the standard library, `actors`, `sql.errors`, `engine.control_socket`, `engine.config`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from actors.database import Database, Row
from actors.ingestion import InvalidWallet, parse_wallet, track_wallets
from actors.scorer import ScoreNow, ScorerSettings, latest_ranking, wallets_from_manifest
from actors.trust_score import Algorithm
from engine.config import Config
from engine.control_socket import CommandError, CommandSpec
from sql.errors import DatabaseError
from supervisors.registry import ActorRef, ask
from supervisors.request import AskError

__all__ = ["scorer_commands", "scorer_settings"]

DB_TIMEOUT_S: Final = 10.0
SCORE_NOW_TIMEOUT_S: Final = 300.0
DEFAULT_LIMIT: Final = 50


def _json(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value


def _rows(rows: list[Row]) -> list[object]:
    return [_json(r) for r in rows]


def scorer_settings(config: Config, manifest: Mapping[str, Any] | None = None) -> ScorerSettings:
    """The scorer's settings: tracked wallets and stablecoins from the config, plus (embedded mode)
    the local chain's trader wallets and its USDC/USDT mints from its manifest."""
    wallets = [(w, "config") for w in config.tracked_wallets]
    stablecoins = set(config.stablecoin_mints)
    if manifest is not None:
        traders, stable = wallets_from_manifest(manifest)
        wallets += [(w, "manifest") for w in traders]
        stablecoins |= stable
    return ScorerSettings(
        algorithm=Algorithm(config.xorj_score_algorithm), window_days=config.scoring_window_days,
        interval_s=config.scoring_interval_seconds, stablecoins=frozenset(stablecoins),
        wallets=tuple(wallets))


def scorer_commands(scorer_ref: ActorRef, db: Database) -> dict[str, CommandSpec]:
    async def score_now(args: Mapping[str, object]) -> object:
        timeout = args.get("timeout", SCORE_NOW_TIMEOUT_S)
        assert isinstance(timeout, int | float)
        if not timeout > 0:
            raise CommandError(f"score-now: timeout must be > 0, got {timeout}")
        try:
            outcome = await ask(scorer_ref, ScoreNow(), timeout=float(timeout))
        except AskError as exc:
            raise CommandError(f"score-now: {exc}") from None
        return outcome.as_dict()

    async def rankings(args: Mapping[str, object]) -> object:
        limit = args.get("limit", DEFAULT_LIMIT)
        assert isinstance(limit, int)
        if not 1 <= limit <= 10_000:
            raise CommandError(f"rankings: limit must be 1-10000, got {limit}")
        try:
            run, rows = await latest_ranking(db, limit=limit, timeout=DB_TIMEOUT_S)
        except DatabaseError as exc:
            raise CommandError(f"rankings: database: {exc}") from None
        return {"run": None if run is None else _json(run), "rankings": _rows(rows)}

    async def traders(args: Mapping[str, object]) -> object:
        action, wallet = args["action"], args.get("wallet")
        try:
            if action == "add":
                if not isinstance(wallet, str):
                    raise CommandError("traders add: missing the wallet address")
                try:
                    parsed = parse_wallet(wallet)
                except InvalidWallet as exc:
                    raise CommandError(f"traders add: {exc}") from None
                added = await track_wallets(db, [parsed], "ctl", timeout=DB_TIMEOUT_S)
                return {"wallet": parsed, "added": bool(added)}
            if action == "list":
                rows = await db.fetch(
                    """SELECT wallet, source, added_at, newest_signature, newest_slot, last_ingested_at,
                              last_ingest_error FROM tracked_wallets ORDER BY added_at, wallet""",
                    timeout=DB_TIMEOUT_S)
                return {"traders": _rows(rows)}
        except DatabaseError as exc:
            raise CommandError(f"traders {action}: database: {exc}") from None
        raise CommandError(f"traders: unknown action {action!r}; use add <wallet> or list")

    return {
        "score-now": CommandSpec(score_now, optional={"timeout": float}, timeout=SCORE_NOW_TIMEOUT_S + 5,
                                 help="run a scoring run now and wait for its outcome"),
        "rankings": CommandSpec(rankings, optional={"limit": int},
                                help="the latest COMPLETED ranking with every metric"),
        "traders": CommandSpec(traders, required={"action": str}, optional={"wallet": str},
                               help="traders add <wallet> | traders list"),
    }
