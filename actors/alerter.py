"""The alerter actor: every `Alert` deduplicated, logged, counted, stored, and fanned out.

What it owns (issue 6):

- **dedup**: the first alert of a key (`Alert.key`) opens a window of `dedup_window_s` on the
  settings' clock, read when the alerter handles the alert; repeats inside it are *suppressed* --
  counted (`xorj_alerts_suppressed_total`, and ``details.suppressed`` on the stored row), not
  raised again. The first alert after the window opens a new one. The stored row's ``dedup_key``
  is the key plus the number of the window bucket its first alert fell in, and the insert is
  ``ON CONFLICT (dedup_key) DO NOTHING``: a retried write, or a restarted alerter that forgot its
  windows, stores the alert once. (A window of length W that opens at least W after the previous
  one always falls in a later bucket.)
- **the `alerts` table**: a background flusher writes what is pending in one statement per batch
  (``INSERT ... SELECT FROM unnest(...)``: one trio-asyncio hop for many alerts), with the rows'
  suppressed counts, in one transaction;
- **logging and metrics**: each raised alert is one structured log line at the level of its
  severity and one `xorj_alerts_total{severity,kind}`;
- **the webhook**: when `webhook_url` is set, raised alerts are POSTed as the Alertmanager v2
  ``POST /api/v2/alerts`` body by a background task fed through a bounded channel, each POST under
  a deadline, retried with `backoff_delay` after a 5xx, a 429 or a transport error;
- **Redis fan-out**: when `publish` is given, each raised alert is published as JSON on
  ``xorj:alerts`` by another background task. `publish` must signal failure with `PublishFailed`
  or an `OSError`; the node wraps the Redis gateway to translate its errors (this module may not
  import `engine`). Redis is fan-out only, never the source of truth.

The mailbox loop only touches memory: it never waits on the database, the webhook or Redis, so
raising an alert never stalls behind an outage.

Which failure it contains, and how:
- a database outage (`DatabaseUnavailable`, `DatabaseTimeout`): alerts wait in a bounded buffer
  (`buffer_capacity`) and the write is retried with backoff until it succeeds; nothing is lost
  while the buffer has room, and an alert arriving at a full buffer is dropped, logged and
  counted (`xorj_alerter_drops_total{stage="buffer_full"}`);
- a database that refuses a batch for another reason (`DatabaseQueryError`, `IntegrityError`):
  the rows are retried one by one so one bad row cannot hold back the others; a refused row is
  logged and counted (``stage="db_rejected"``), never retried forever;
- a dead, slow or failing webhook: the POST queue is bounded; when full, the new alert is not
  queued (``stage="webhook_queue_full"``, one log line per run of drops); a POST that still fails
  after its retries is logged and counted (``stage="webhook_failed"``);
- Redis down: the publish failure is logged once per outage and counted (``stage="publish_failed"``).
Anything else (a bug) escapes `run` and the supervisor decides. Pending alerts live in the
incarnation: on a graceful stop one last write is tried under `stop_flush_s`.

`alerts_from_supervision` turns supervision events into alerts: WARNING ``actor_restarts`` when
one child restarts `restarts_threshold` times within `window_s`, CRITICAL ``supervisor_escalated``
when a supervisor gives up.

May import: the standard library, attrs, trio, httpx, prometheus_client, `supervisors`, `sql`,
`actors`. Never imports `engine`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from itertools import islice
from typing import Any, Final

import attrs
import httpx
import trio
from prometheus_client import Counter, Gauge

from actors.actor import Actor
from actors.alerts import Alert, AlertSink, Severity
from actors.database import Database
from actors.fanout import Publish, PublishFailed
from actors.rpc_client import redact_url, scrub
from sql.errors import DatabaseError, DatabaseUnavailable
from sql.statements import Statement
from supervisors.backoff import backoff_delay
from supervisors.context import ChildContext
from supervisors.events import EventBus, EventKind

__all__ = [
    "ALERTS_CHANNEL",
    "Alerter",
    "AlerterSettings",
    "Publish",
    "PublishFailed",
    "alertmanager_body",
    "alerts_from_supervision",
    "db_dedup_key",
]

log = logging.getLogger("xorj.alerter")

ALERTS_CHANNEL: Final = "xorj:alerts"
KIND_MAX: Final = 64  # the `alerts` columns' widths (0001)
SUBJECT_MAX: Final = 256
DEDUP_KEY_MAX: Final = 256

ALERTS = Counter("xorj_alerts_total", "Alerts raised (after deduplication)", ["severity", "kind"])
SUPPRESSED = Counter("xorj_alerts_suppressed_total", "Repeats of an alert inside its dedup window", ["kind"])
DROPS = Counter(
    "xorj_alerter_drops_total",
    "Alerts the alerter could not deliver somewhere, by stage "
    "(buffer_full, db_rejected, webhook_queue_full, webhook_failed, publish_queue_full, publish_failed)",
    ["stage"])
WEBHOOK_POSTS = Counter("xorj_alert_webhook_posts_total", "Webhook POSTs by outcome", ["outcome"])
PENDING = Gauge("xorj_alerter_pending_alerts", "Alerts waiting to be written to the database")

_LEVELS: Final = {Severity.INFO: logging.INFO, Severity.WARNING: logging.WARNING,
                  Severity.CRITICAL: logging.CRITICAL}

# ---------------------------------------------------------------------------------------- settings


@attrs.frozen
class AlerterSettings:
    dedup_window_s: float = 300.0
    # May carry a token (path, query or userinfo): never logged, never in repr.
    webhook_url: str | None = attrs.field(default=None, repr=False)
    webhook_timeout_s: float = 5.0
    webhook_retries: int = 3  # retries after the first attempt
    webhook_backoff_min_s: float = 0.5
    webhook_backoff_max_s: float = 30.0
    webhook_queue: int = 256  # alerts waiting to be POSTed
    webhook_batch_max: int = 64  # alerts per POST (the Alertmanager body is a list)
    generator_url: str | None = None  # Alertmanager's generatorURL: e.g. the node's /health
    buffer_capacity: int = 10_000  # alerts waiting for the database
    batch_max: int = 500  # alerts per INSERT
    db_timeout_s: float = 5.0
    db_backoff_min_s: float = 0.1
    db_backoff_max_s: float = 10.0
    publish_timeout_s: float = 1.0
    publish_queue: int = 256
    stop_flush_s: float = 2.0  # the last write on a graceful stop; below the child's shutdown grace
    clock: Callable[[], float] = time.time  # wall-clock seconds: windows, created_at, startsAt

    def __attrs_post_init__(self) -> None:
        if not self.dedup_window_s > 0 or not self.webhook_timeout_s > 0 or not self.db_timeout_s > 0:
            raise ValueError("dedup_window_s, webhook_timeout_s and db_timeout_s must be > 0")
        if self.webhook_retries < 0:
            raise ValueError("webhook_retries must be >= 0")
        if min(self.webhook_queue, self.webhook_batch_max, self.buffer_capacity, self.batch_max,
               self.publish_queue) < 1:
            raise ValueError("queue, buffer and batch sizes must be >= 1")


# ---------------------------------------------------------------------------------------- records


@attrs.define(eq=False)
class _Window:
    """One raised alert and its dedup window; the row it becomes in `alerts`."""

    alert: Alert
    opened_at: float  # clock seconds
    db_key: str
    suppressed: int = 0
    stored_suppressed: int = -1  # what the database holds; -1: the row is not written yet

    @property
    def written(self) -> bool:
        return self.stored_suppressed >= 0


def db_dedup_key(key: str, opened_at: float, window_s: float) -> str:
    """The stored ``dedup_key``: the alert's key and the window bucket its first alert fell in.
    Keys too long for the column are replaced by their SHA-256 (the bucket stays readable)."""
    bucket = f"@{math.floor(opened_at / window_s)}"
    if len(key) + len(bucket) > DEDUP_KEY_MAX:
        key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key + bucket


def _rfc3339(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _details_json(alert: Alert, suppressed: int = 0) -> str:
    details = dict(alert.details)
    if suppressed:
        details["suppressed"] = suppressed
    return json.dumps(details, default=str, sort_keys=True)


def alertmanager_body(alerts: Sequence[tuple[Alert, float]], generator_url: str | None = None) -> bytes:
    """The Alertmanager v2 ``POST /api/v2/alerts`` body for (alert, raised-at) pairs.

    Labels identify an alert to Alertmanager (which groups and deduplicates on them): alertname is
    the kind; severity is lower-case, as Alertmanager routing rules conventionally match it.
    Annotation values must be strings, so the details are a JSON string. No ``endsAt``: the alert
    resolves after Alertmanager's ``resolve_timeout``.
    """
    out = []
    for alert, at in alerts:
        entry: dict[str, object] = {
            "labels": {"alertname": alert.kind, "severity": alert.severity.value.lower(),
                       "subject": alert.subject, "service": "xorj"},
            "annotations": {"summary": f"{alert.severity.value} {alert.kind}: {alert.subject}",
                            "details": _details_json(alert)},
            "startsAt": _rfc3339(at),
        }
        if generator_url:
            entry["generatorURL"] = generator_url
        out.append(entry)
    return json.dumps(out).encode()


def _publish_payload(window: _Window) -> bytes:
    a = window.alert
    return json.dumps({"severity": a.severity.value, "kind": a.kind, "subject": a.subject,
                       "details": dict(a.details), "dedup_key": window.db_key,
                       "at": _rfc3339(window.opened_at)}, default=str).encode()


# ---------------------------------------------------------------------------------------- SQL

_INSERT: Final = """
INSERT INTO alerts (severity, kind, subject, details, dedup_key, created_at)
SELECT u.severity, u.kind, u.subject, u.details::jsonb, u.dedup_key, u.created_at
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
     AS u(severity, kind, subject, details, dedup_key, created_at)
ON CONFLICT (dedup_key) DO NOTHING
"""

# GREATEST: a retried write, or an older incarnation's count, never lowers what is stored.
_UPDATE_SUPPRESSED: Final = """
UPDATE alerts SET details = alerts.details || jsonb_build_object(
    'suppressed', GREATEST(u.n, COALESCE((alerts.details->>'suppressed')::int, 0)))
FROM unnest($1::text[], $2::int[]) AS u(dedup_key, n)
WHERE alerts.dedup_key = u.dedup_key
"""


def _insert(rows: Sequence[tuple[_Window, int]]) -> Statement:
    return (_INSERT, [
        [w.alert.severity.value for w, _ in rows],
        [w.alert.kind[:KIND_MAX] for w, _ in rows],
        [w.alert.subject[:SUBJECT_MAX] for w, _ in rows],
        [_details_json(w.alert, n) for w, n in rows],
        [w.db_key for w, _ in rows],
        [dt.datetime.fromtimestamp(w.opened_at, dt.UTC) for w, _ in rows],
    ])


def _update(rows: Sequence[tuple[_Window, int]]) -> Statement:
    return (_UPDATE_SUPPRESSED, [[w.db_key for w, _ in rows], [n for _, n in rows]])


# ---------------------------------------------------------------------------------------- actor


class Alerter(Actor):
    """See the module docstring. Tell it `Alert`s (through `actors.alerts.alerter_sink(ref)`)."""

    def __init__(self, db: Database, settings: AlerterSettings, *, publish: Publish | None = None) -> None:
        self._db = db
        self._settings = settings
        self._publish = publish
        self._windows: dict[str, _Window] = {}  # Alert.key -> its current window
        self._unwritten: deque[_Window] = deque()  # rows to insert, oldest first
        self._dirty: dict[str, _Window] = {}  # written rows whose suppressed count grew
        self._wake = trio.Event()
        self._pruned_at = 0.0
        self._webhook: trio.MemorySendChannel[tuple[Alert, float]] | None = None
        self._fanout: trio.MemorySendChannel[_Window] | None = None
        self._webhook_dropping = 0
        self._fanout_dropping = 0
        self._publish_failing = False

    async def run(self, ctx: ChildContext) -> None:
        s = self._settings
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._flush_forever)
            if s.webhook_url is not None:
                send, receive = trio.open_memory_channel[tuple[Alert, float]](s.webhook_queue)
                self._webhook = send
                nursery.start_soon(self._post_forever, s.webhook_url, receive)
            if self._publish is not None:
                fan_send, fan_receive = trio.open_memory_channel[_Window](s.publish_queue)
                self._fanout = fan_send
                nursery.start_soon(self._publish_forever, self._publish, fan_receive)
            ctx.started()
            while (msg := await ctx.receive()) is not None:
                await self.handle(ctx, msg)
            nursery.cancel_scope.cancel()
        if self._unwritten or self._dirty:
            with trio.move_on_after(s.stop_flush_s):
                try:
                    await self._flush_once()
                except DatabaseUnavailable as exc:
                    log.warning("last write before stopping failed", extra={
                        "event": "alerts_stop_flush_failed", "error": str(exc)})
            if self._unwritten:
                log.error("alerter stopped with alerts not written to the database", extra={
                    "event": "alerts_unwritten_at_stop", "alerts": len(self._unwritten)})

    async def handle(self, ctx: ChildContext, msg: Any) -> None:
        if isinstance(msg, Alert):
            self.receive_alert(msg)
        else:
            await super().handle(ctx, msg)

    def receive_alert(self, alert: Alert) -> None:
        """Dedup, log, count, and hand the alert to the flusher, the webhook and the fan-out.
        Synchronous: the mailbox loop never waits on a dependency."""
        s = self._settings
        now = s.clock()
        window = self._windows.get(alert.key)
        if window is not None and now - window.opened_at < s.dedup_window_s:
            window.suppressed += 1
            SUPPRESSED.labels(alert.kind).inc()
            if window.written:
                self._dirty[window.db_key] = window
                self._wake.set()
            log.debug("alert suppressed (same key inside its dedup window)", extra={
                "event": "alert_suppressed", "kind": alert.kind, "subject": alert.subject,
                "dedup_key": window.db_key, "suppressed": window.suppressed})
            return
        window = _Window(alert, now, db_dedup_key(alert.key, now, s.dedup_window_s))
        ALERTS.labels(alert.severity.value, alert.kind).inc()
        log.log(_LEVELS[alert.severity], "alert %s: %s", alert.kind, alert.subject, extra={
            "event": "alert", "severity": alert.severity.value, "kind": alert.kind,
            "subject": alert.subject, "details": dict(alert.details), "dedup_key": window.db_key})
        if len(self._unwritten) >= s.buffer_capacity:
            # Not remembered as a window either: the next occurrence gets another chance.
            DROPS.labels("buffer_full").inc()
            log.error("alert not stored: the database buffer is full", extra={
                "event": "alert_dropped", "stage": "buffer_full", "kind": alert.kind,
                "subject": alert.subject, "buffered": len(self._unwritten)})
        else:
            self._windows[alert.key] = window
            self._unwritten.append(window)
            PENDING.set(len(self._unwritten))
            self._wake.set()
        self._send_webhook(alert, now)
        self._send_fanout(window)
        self._prune(now)

    def _prune(self, now: float) -> None:
        """Forget closed windows (keys that never recur would otherwise stay forever)."""
        if now - self._pruned_at < self._settings.dedup_window_s:
            return
        self._pruned_at = now
        # A closed window needs no entry: the flusher holds its row until written, `_dirty` its count.
        self._windows = {
            k: w for k, w in self._windows.items() if now - w.opened_at < self._settings.dedup_window_s}

    # -- the database ---------------------------------------------------------------------------

    async def _flush_forever(self) -> None:
        s = self._settings
        attempt = 0
        while True:
            while not (self._unwritten or self._dirty):
                self._wake = trio.Event()
                await self._wake.wait()
            try:
                await self._flush_once()
            except DatabaseUnavailable as exc:
                delay = backoff_delay(
                    attempt, min_s=s.db_backoff_min_s, max_s=s.db_backoff_max_s, jitter=0.25)
                if attempt == 0:
                    log.warning("alerts wait for the database", extra={
                        "event": "alerts_waiting_for_database", "error": str(exc),
                        "pending": len(self._unwritten)})
                attempt += 1
                await trio.sleep(delay)
                continue
            if attempt:
                log.info("alerts written again after a database outage", extra={
                    "event": "alerts_database_recovered", "attempts": attempt + 1})
            attempt = 0

    async def _flush_once(self) -> None:
        """Write one batch of pending rows and suppressed counts. Raises `DatabaseUnavailable`
        (nothing is taken off the buffer); rows the database refuses are dropped and logged."""
        s = self._settings
        inserts = [(w, w.suppressed) for w in islice(self._unwritten, s.batch_max)]
        updates = [(w, w.suppressed) for w in islice(self._dirty.values(), s.batch_max)]
        statements = ([_insert(inserts)] if inserts else []) + ([_update(updates)] if updates else [])
        try:
            await self._db.transaction(statements, timeout=s.db_timeout_s)
        except DatabaseUnavailable:
            raise
        except DatabaseError as exc:
            log.warning("the database refused a batch of alerts; writing them one by one", extra={
                "event": "alerts_batch_refused", "error": str(exc), "alerts": len(inserts)})
            await self._write_one_by_one(inserts, updates)
        else:
            self._stored(inserts, updates)

    async def _write_one_by_one(
        self, inserts: list[tuple[_Window, int]], updates: list[tuple[_Window, int]]
    ) -> None:
        s = self._settings
        for row, statement in [*((r, _insert([r])) for r in inserts), *((r, _update([r])) for r in updates)]:
            try:
                await self._db.transaction([statement], timeout=s.db_timeout_s)
            except DatabaseUnavailable:
                raise
            except DatabaseError as exc:
                window = row[0]
                DROPS.labels("db_rejected").inc()
                log.error("the database refused an alert", extra={
                    "event": "alert_dropped", "stage": "db_rejected", "kind": window.alert.kind,
                    "subject": window.alert.subject, "dedup_key": window.db_key, "error": str(exc)})
            self._stored([row] if row in inserts else [], [row] if row in updates else [])

    def _stored(self, inserts: Sequence[tuple[_Window, int]], updates: Sequence[tuple[_Window, int]]) -> None:
        """Bookkeeping after rows were written (or refused for good): they leave the buffer."""
        for window, n in [*inserts, *updates]:
            if window in self._unwritten:
                self._unwritten.remove(window)  # usually the leftmost: O(1) in practice
            window.stored_suppressed = n
            if window.suppressed > n:
                self._dirty[window.db_key] = window
            else:
                self._dirty.pop(window.db_key, None)
        PENDING.set(len(self._unwritten))

    # -- the webhook ----------------------------------------------------------------------------

    def _send_webhook(self, alert: Alert, at: float) -> None:
        if self._webhook is None:
            return
        try:
            self._webhook.send_nowait((alert, at))
        except trio.WouldBlock:
            DROPS.labels("webhook_queue_full").inc()
            if self._webhook_dropping == 0:
                log.warning("webhook queue full: alerts are not being POSTed", extra={
                    "event": "alert_webhook_queue_full", "capacity": self._settings.webhook_queue})
            self._webhook_dropping += 1
            return
        if self._webhook_dropping:
            log.warning("webhook queue accepts alerts again", extra={
                "event": "alert_webhook_queue_recovered", "dropped": self._webhook_dropping})
            self._webhook_dropping = 0

    async def _post_forever(self, url: str, receive: trio.MemoryReceiveChannel[tuple[Alert, float]]) -> None:
        s = self._settings
        async with httpx.AsyncClient(timeout=httpx.Timeout(s.webhook_timeout_s)) as http:
            async for first in receive:
                batch = [first]
                while len(batch) < s.webhook_batch_max:
                    try:
                        batch.append(receive.receive_nowait())
                    except trio.WouldBlock:
                        break
                await self._post(http, url, batch)

    async def _post(self, http: httpx.AsyncClient, url: str, batch: list[tuple[Alert, float]]) -> None:
        s = self._settings
        body = alertmanager_body(batch, s.generator_url)
        why = ""
        for attempt in range(s.webhook_retries + 1):
            if attempt:
                WEBHOOK_POSTS.labels("retry").inc()
                await trio.sleep(backoff_delay(
                    attempt - 1, min_s=s.webhook_backoff_min_s, max_s=s.webhook_backoff_max_s, jitter=0.25))
            status: int | None = None
            with trio.move_on_after(s.webhook_timeout_s) as deadline:
                try:
                    status = (await http.post(
                        url, content=body, headers={"content-type": "application/json"})).status_code
                except httpx.HTTPError as exc:
                    why = scrub(f"{type(exc).__name__}: {exc}")
                    continue
            if deadline.cancelled_caught or status is None:
                why = f"no answer within {s.webhook_timeout_s:g}s"
                continue
            if 200 <= status < 300:
                WEBHOOK_POSTS.labels("ok").inc()
                return
            why = f"HTTP {status}"
            if 400 <= status < 500 and status not in (408, 429):
                WEBHOOK_POSTS.labels("rejected").inc()
                break  # the receiver refuses this body: sending it again cannot help
        else:
            WEBHOOK_POSTS.labels("failed").inc()
        DROPS.labels("webhook_failed").inc(len(batch))
        log.error("alert webhook failed; these alerts were not delivered to it", extra={
            "event": "alert_webhook_failed", "webhook": redact_url(url), "error": why,
            "alerts": len(batch), "kinds": sorted({a.kind for a, _ in batch})})

    # -- the Redis fan-out ----------------------------------------------------------------------

    def _send_fanout(self, window: _Window) -> None:
        if self._fanout is None:
            return
        try:
            self._fanout.send_nowait(window)
        except trio.WouldBlock:
            DROPS.labels("publish_queue_full").inc()
            if self._fanout_dropping == 0:
                log.warning("alert fan-out queue full: alerts are not being published", extra={
                    "event": "alert_publish_queue_full", "capacity": self._settings.publish_queue})
            self._fanout_dropping += 1
            return
        self._fanout_dropping = 0

    async def _publish_forever(self, publish: Publish, receive: trio.MemoryReceiveChannel[_Window]) -> None:
        s = self._settings
        async for window in receive:
            error: str | None = None
            with trio.move_on_after(s.publish_timeout_s) as deadline:
                try:
                    await publish(ALERTS_CHANNEL, _publish_payload(window))
                except (PublishFailed, OSError) as exc:
                    error = f"{type(exc).__name__}: {exc}"
            if deadline.cancelled_caught:
                error = f"no answer within {s.publish_timeout_s:g}s"
            if error is not None:
                DROPS.labels("publish_failed").inc()
                if not self._publish_failing:
                    log.warning("alerts are not being published (fan-out only; the database has them)",
                                extra={"event": "alert_publish_failed", "channel": ALERTS_CHANNEL,
                                       "error": error})
                self._publish_failing = True
            elif self._publish_failing:
                log.info("alerts are published again", extra={
                    "event": "alert_publish_recovered", "channel": ALERTS_CHANNEL})
                self._publish_failing = False


# ---------------------------------------------------------------------------------------- supervision


async def alerts_from_supervision(
    events: EventBus,
    sink: AlertSink,
    *,
    restarts_threshold: int = 3,
    window_s: float = 60.0,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Raise alerts from supervision events, forever: WARNING ``actor_restarts`` (subject: the
    child) each time one child has been restarted `restarts_threshold` times within `window_s`,
    CRITICAL ``supervisor_escalated`` (subject: the supervisor) when a supervisor exceeds its
    intensity. Runs in the node's nursery next to the tree; it only reads the bus, and the bus
    drops (and counts) events for it rather than ever stalling a supervisor. Reports started once
    subscribed (``await nursery.start(alerts_from_supervision, ...)`` misses no event after it)."""
    if restarts_threshold < 1 or not window_s > 0:
        raise ValueError("restarts_threshold must be >= 1 and window_s > 0")
    restarts: dict[tuple[str, str], deque[float]] = {}
    with events.subscribe() as receive:
        task_status.started()
        async for event in receive:
            who = (event.supervisor, event.child)
            if event.kind is EventKind.RESTARTING:
                seen = restarts.setdefault(who, deque())
                seen.append(event.at)
                while seen and seen[0] <= event.at - window_s:
                    seen.popleft()
                if len(seen) >= restarts_threshold:
                    sink(Alert(Severity.WARNING, "actor_restarts", event.child, {
                        "supervisor": event.supervisor, "restarts": len(seen), "window_s": window_s,
                        "incarnation": event.incarnation, "last_reason": event.reason}))
                    seen.clear()  # the next alert needs another `restarts_threshold` restarts
            elif event.kind is EventKind.ESCALATED:
                sink(Alert(Severity.CRITICAL, "supervisor_escalated", event.supervisor, {
                    "child": event.child, "reason": event.reason}))
            elif event.kind is EventKind.REMOVED:
                restarts.pop(who, None)  # dynamic children come and go: keep the map bounded
