"""The alerter's control-socket command (`alerts`), its ``xorj ctl`` entry, and its wiring.

Owns: `alert_commands(db)` (the `CommandSpec` the node merges into its command table), `CTL` (the
``xorj ctl alerts`` entry `engine.ctl` puts into its table, with its renderer), `parse_since`,
`alerter_settings(config)` (the one place the alerter's `Config` settings become its
`AlerterSettings`) and `redis_publisher(gateway)`, which adapts the Redis gateway to the alerter's
`publish` contract: the gateway's `RedisUnavailable` (its timeout included) becomes
`PublishFailed`, since `actors` may not import `engine` to catch it; and `gateway_alerts`, which
turns a gateway's outage and recovery (`engine.asyncio_gateway.AsyncioGateway.watch`) into
``dependency_down`` / ``dependency_up`` alerts, so an outage is raised even when no executor is
there to notice it.

Failure it contains: a bad argument (a ``since`` that is neither an ISO-8601 timestamp nor a
duration, a limit out of range) or a database that is down. Each becomes a `CommandError` -- one
line to the operator -- never a traceback.

May import: the standard library, `actors`, `sql.errors`, `engine.control_socket`, `engine.ctl_spec`,
`engine.config`, `engine.redis_gateway`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from typing import Final

from actors.alerter import AlerterSettings, Publish, PublishFailed
from actors.alerts import Alert, AlertSink, Severity
from actors.database import Database
from engine.config import Config
from engine.control_socket import CommandError, CommandSpec
from engine.ctl_spec import CtlCommand, CtlOption, render_generic
from engine.redis_gateway import RedisGateway, RedisUnavailable
from sql.errors import DatabaseError

__all__ = ["CTL", "alert_commands", "alerter_settings", "parse_since", "redis_publisher", "render_alerts"]

DB_TIMEOUT_S: Final = 10.0
PUBLISH_TIMEOUT_S: Final = 1.0
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000

_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400}

_RECENT: Final = """
SELECT id, severity, kind, subject, details, created_at FROM alerts
WHERE $1::timestamptz IS NULL OR created_at >= $1
ORDER BY created_at DESC, id DESC LIMIT $2
"""


def parse_since(raw: str, now: dt.datetime) -> dt.datetime:
    """``since`` as an aware UTC datetime: an ISO-8601 timestamp (no offset means UTC) or a
    duration before ``now`` (``90s``, ``10m``, ``2h``, ``1d``). `ValueError` says what is wrong."""
    text = raw.strip()
    match = _DURATION.fullmatch(text.lower())
    if match is not None:
        seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
        try:
            return now - dt.timedelta(seconds=seconds)
        except OverflowError:
            raise ValueError(f"duration {raw!r} reaches back too far") from None
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{raw!r} is neither an ISO-8601 timestamp (2026-11-22T08:00:00Z) "
            "nor a duration (90s, 10m, 2h, 1d)") from None
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


def _json_row(row: Mapping[str, object]) -> dict[str, object]:
    return {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in row.items()}


def alert_commands(
    db: Database, *, now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
) -> dict[str, CommandSpec]:
    async def alerts(args: Mapping[str, object]) -> object:
        limit = args.get("limit", DEFAULT_LIMIT)
        assert isinstance(limit, int)
        if not 1 <= limit <= MAX_LIMIT:
            raise CommandError(f"alerts: limit must be 1-{MAX_LIMIT}, got {limit}")
        since = args.get("since")
        cutoff: dt.datetime | None = None
        if since is not None:
            assert isinstance(since, str)
            try:
                cutoff = parse_since(since, now())
            except ValueError as exc:
                raise CommandError(f"alerts: since: {exc}") from None
        try:
            rows = await db.fetch(_RECENT, cutoff, limit, timeout=DB_TIMEOUT_S)
        except DatabaseError as exc:
            raise CommandError(f"alerts: database: {exc}") from None
        return {"alerts": [_json_row(r) for r in rows]}

    return {
        "alerts": CommandSpec(alerts, optional={"since": str, "limit": int},
                              help="the latest alerts, newest first (since: ISO-8601 or 10m, 2h, 1d)"),
    }


def render_alerts(result: object, args: Mapping[str, object]) -> str:
    """One aligned line per alert: time, severity, kind, subject, details (compact JSON)."""
    if not isinstance(result, dict) or not isinstance(result.get("alerts"), list):
        return render_generic(result, args)
    rows = [r for r in result["alerts"] if isinstance(r, dict)]
    if not rows:
        return "no alerts" + (f" since {args['since']}" if args.get("since") else "")
    table = [[str(r.get("created_at", "?")), str(r.get("severity", "?")), str(r.get("kind", "?")),
              str(r.get("subject", "?")), json.dumps(r.get("details", {}), separators=(",", ":"))]
             for r in rows]
    widths = [max(len(line[c]) for line in table) for c in range(4)]
    return "\n".join(
        "  ".join([*(cell.ljust(widths[c]) for c, cell in enumerate(line[:4])), line[4]]).rstrip()
        for line in table)


CTL: Final[tuple[CtlCommand, ...]] = (
    CtlCommand(
        "alerts",
        "show the latest alerts, newest first",
        render=render_alerts,
        options=(
            CtlOption("--since", "since",
                      "only alerts since an ISO-8601 time or a duration ago (10m, 2h, 1d)", kind=str),
            CtlOption("--limit", "limit", f"show at most N alerts (1-{MAX_LIMIT}, default {DEFAULT_LIMIT})"),
        ),
    ),
)


def alerter_settings(config: Config) -> AlerterSettings:
    return AlerterSettings(dedup_window_s=config.alert_dedup_seconds, webhook_url=config.alert_webhook_url)


def redis_publisher(redis: RedisGateway, *, timeout: float = PUBLISH_TIMEOUT_S) -> Publish:
    """The alerter's `publish`: the gateway's publish under a deadline, its outage as `PublishFailed`."""

    async def publish(channel: str, message: bytes) -> object:
        try:
            return await redis.publish(channel, message, timeout=timeout)
        except RedisUnavailable as exc:
            raise PublishFailed(str(exc)) from exc

    return publish


def gateway_alerts(
    alerts: AlertSink, subject: str, what: str, severity: Severity,
) -> Callable[[bool, str | None], None]:
    """A gateway's `watch`: its outage a ``dependency_down`` of ``severity``, its recovery an INFO
    ``dependency_up`` (subject ``subject``, ``details.what`` as the executors name it)."""

    def watch(up: bool, error: str | None) -> None:
        if up:
            alerts(Alert(Severity.INFO, "dependency_up", subject, {"what": what}))
        else:
            alerts(Alert(severity, "dependency_down", subject, {"what": what, "error": error}))

    return watch
