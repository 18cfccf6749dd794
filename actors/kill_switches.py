"""The kill switches: the global one and one per user, as every executor reads them.

Owns:
- `KillSwitches`, the in-process view. Executors read it synchronously before every intent
  (`stopped(user_id)`, `global_engaged()`, `user_engaged(user_id)`, `reason(scope)`) and may
  register `on_change` listeners to wake up. It is the only writer of the gauge
  ``xorj_kill_switch_engaged{scope}`` (``scope`` is ``global`` -- 1 or 0 -- or ``user`` -- how many
  user switches are engaged; never a user id: cardinality).
- `KillSwitchStore`, the rows of `kill_switches` (sql/migrations/0004_executors.sql). Postgres is
  the authority; its trigger appends every change to `kill_switch_events`.
- `KillSwitchMirror`, the Redis fan-out of the GLOBAL switch: key `xorj:kill_switch:global` holds
  ``{"engaged", "reason", "at"}`` (JSON; ``at`` is the row's `updated_at`) and every change is
  published on channel `xorj:kill_switch`. It is never the authority.

How a change travels: `KillSwitches.set()` writes Postgres first (a failure raises and changes
nothing), then updates the view and calls the listeners -- so an engage stops new intents on this
node before `set()` returns -- then raises the alert (``kill_switch``: CRITICAL engaged, INFO
released; only the node that made the change alerts), then mirrors a global change to Redis.
Every other node applies a global ENGAGE it sees on the channel, or on its poll of the key, at once
(marked unconfirmed), and its next Postgres refresh confirms or refutes it. A release is never taken
from Redis: only Postgres can let trading resume. `watch()` runs the refresh (every ``refresh_s``)
and the mirror's subscription and poll until cancelled.

Failure it contains:
- Redis down or slow: the mirror's calls fail within ``timeout_s`` with one of the exception types
  the mirror was given as ``unavailable`` (default `MirrorUnavailable`; the node passes the Redis
  gateway's `RedisError`); that is logged once per outage and never fails `set()` or the watch --
  other nodes just learn of the change at their next Postgres refresh.
- A garbage or stale mirror payload: ignored (logged); a payload is applied at most once, and only
  if it is newer than what the view knows, so a stale key cannot flap a switch.
- Postgres down: `set()` raises the `sql.errors.DatabaseError` (nothing changed, nothing mirrored);
  a failed refresh keeps the last known view and is retried at the next period.

May import: the standard library, attrs, trio, prometheus_client, `supervisors`, `sql`,
`actors.alerts`, `actors.database`. Never imports `engine`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import AsyncIterable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Final, Protocol

import attrs
import trio
from prometheus_client import Gauge

from actors.alerts import Alert, AlertSink, Severity, null_sink
from actors.database import Database, Row
from sql.errors import DatabaseError
from supervisors.backoff import backoff_delay

__all__ = [
    "GLOBAL",
    "KILL_SWITCH_ENGAGED",
    "MAX_REASON_CHARS",
    "MIRROR_CHANNEL",
    "MIRROR_KEY",
    "InvalidKillSwitch",
    "KillSwitchMirror",
    "KillSwitchStore",
    "KillSwitches",
    "MirrorMessage",
    "MirrorTransport",
    "MirrorUnavailable",
    "SwitchListener",
    "SwitchState",
    "check_reason",
    "check_scope",
    "user_scope",
]

log = logging.getLogger("xorj.kill_switches")

GLOBAL: Final = "global"
MIRROR_KEY: Final = "xorj:kill_switch:global"
MIRROR_CHANNEL: Final = "xorj:kill_switch"
MAX_REASON_CHARS: Final = 500
_MAX_SCOPE_CHARS: Final = 80  # kill_switches.scope is varchar(80)
_USER_PREFIX: Final = "user:"
_RELEASED: Final = "released"  # the reason of a release when there was never an engage to keep

KILL_SWITCH_ENGAGED: Final = Gauge(
    "xorj_kill_switch_engaged",
    "Kill switches engaged as this node sees them: scope=global is 1 or 0, scope=user counts users",
    ["scope"],
)


class InvalidKillSwitch(ValueError):
    """A scope or reason the kill switches refuse (the message says which and why)."""


class MirrorUnavailable(Exception):
    """The default "Redis cannot be reached now" of a `MirrorTransport` (see `KillSwitchMirror`)."""


def user_scope(user_id: str) -> str:
    return f"{_USER_PREFIX}{user_id}"


def check_scope(scope: str) -> str:
    """``scope`` if it is ``global`` or ``user:<id>`` and fits the column; `InvalidKillSwitch` otherwise."""
    if scope == GLOBAL or (scope.startswith(_USER_PREFIX) and scope[len(_USER_PREFIX):].strip()):
        if len(scope) > _MAX_SCOPE_CHARS:
            raise InvalidKillSwitch(f"scope {scope[:40]!r}... is longer than {_MAX_SCOPE_CHARS} characters")
        return scope
    raise InvalidKillSwitch(f"scope must be 'global' or 'user:<user id>', got {scope!r}")


def check_reason(reason: str | None, *, engaged: bool) -> str | None:
    """The stripped reason: required (non-empty) to engage, optional to release, at most 500 chars."""
    text = None if reason is None else reason.strip()
    if not text:
        if engaged:
            raise InvalidKillSwitch("a reason is required to engage a kill switch")
        return None
    if len(text) > MAX_REASON_CHARS:
        raise InvalidKillSwitch(f"reason is {len(text)} characters; at most {MAX_REASON_CHARS}")
    return text


@attrs.frozen
class SwitchState:
    """One switch. ``updated_at`` is the row's (the database clock). ``confirmed`` is false while the
    state came from the Redis mirror and Postgres has not confirmed it yet."""

    engaged: bool
    reason: str
    updated_at: dt.datetime
    confirmed: bool = True

    def as_dict(self) -> dict[str, object]:
        return {"engaged": self.engaged, "reason": self.reason,
                "updated_at": self.updated_at.isoformat(), "confirmed": self.confirmed}


# Called synchronously on every change of the view: (scope, new state or None when the row is gone).
# It must not block or raise (set a trio.Event, tell_nowait an actor).
SwitchListener = Callable[[str, "SwitchState | None"], None]


# ------------------------------------------------------------------------------------- the store


def _state(row: Row) -> SwitchState:
    return SwitchState(engaged=bool(row["engaged"]), reason=str(row["reason"]), updated_at=row["updated_at"])


class KillSwitchStore:
    """The `kill_switches` rows; each call under ``timeout_s``; errors are `sql.errors.DatabaseError`."""

    def __init__(self, db: Database, timeout_s: float = 5.0) -> None:
        self._db = db
        self._timeout_s = timeout_s

    async def load(self) -> dict[str, SwitchState]:
        rows = await self._db.fetch(
            "SELECT scope, engaged, reason, updated_at FROM kill_switches", timeout=self._timeout_s)
        return {str(r["scope"]): _state(r) for r in rows}

    async def set(self, scope: str, engaged: bool, reason: str | None) -> SwitchState:
        """UPSERT the switch; the row's trigger records the change in `kill_switch_events`.

        A release without a reason keeps the last reason (the row's, as the migration says)."""
        check_scope(scope)
        text = check_reason(reason, engaged=engaged)
        row = await self._db.fetchrow(
            """INSERT INTO kill_switches (scope, engaged, reason)
               VALUES ($1, $2, COALESCE($3::text, $4::text))
               ON CONFLICT (scope) DO UPDATE
                   SET engaged = EXCLUDED.engaged, reason = COALESCE($3::text, kill_switches.reason)
               RETURNING scope, engaged, reason, updated_at""",
            scope, engaged, text, _RELEASED, timeout=self._timeout_s)
        assert row is not None  # INSERT ... RETURNING always returns the row
        return _state(row)

    async def events(self, scope: str | None = None, *, limit: int = 100) -> list[Row]:
        """The audit trail, oldest first (all scopes, or one)."""
        return await self._db.fetch(
            """SELECT * FROM (SELECT id, scope, engaged, reason, created_at FROM kill_switch_events
                              WHERE $1::text IS NULL OR scope = $1 ORDER BY id DESC LIMIT $2) e
               ORDER BY id""",
            scope, limit, timeout=self._timeout_s)


# ------------------------------------------------------------------------------------ the mirror


class MirrorMessage(Protocol):
    @property
    def data(self) -> bytes: ...


class MirrorTransport(Protocol):
    """What the mirror needs from Redis; `engine.redis_gateway.RedisGateway` satisfies it as is.

    Each call ends by its ``timeout``. "Redis cannot be reached" must be one of the exception types
    given to `KillSwitchMirror` as ``unavailable``; anything else is a bug and propagates."""

    async def get(self, key: str, *, timeout: float) -> bytes | None: ...

    async def set(self, key: str, value: bytes, *, timeout: float) -> object: ...

    async def publish(self, channel: str, message: bytes, *, timeout: float) -> object: ...

    def subscribe(
        self, channel: str, *, timeout: float
    ) -> AbstractAsyncContextManager[AsyncIterable[MirrorMessage]]: ...


class KillSwitchMirror:
    """The Redis copy of the global switch, for fan-out only.

    ``unavailable`` are the exception types that mean "Redis cannot be reached now" (default
    ``(MirrorUnavailable,)``; the node passes ``(RedisError,)`` with the Redis gateway). They are
    logged -- once when the mirror starts failing, once when it recovers -- and never raised."""

    def __init__(
        self,
        transport: MirrorTransport,
        *,
        unavailable: tuple[type[Exception], ...] = (MirrorUnavailable,),
        timeout_s: float = 2.0,
        key: str = MIRROR_KEY,
        channel: str = MIRROR_CHANNEL,
    ) -> None:
        self._transport = transport
        self.unavailable = unavailable
        self.timeout_s = timeout_s
        self.key = key
        self.channel = channel
        self._failing = False

    @staticmethod
    def encode(state: SwitchState) -> bytes:
        return json.dumps({"engaged": state.engaged, "reason": state.reason,
                           "at": state.updated_at.isoformat()}).encode()

    async def publish(self, state: SwitchState) -> bool:
        """Write the key and publish the change; False (logged) when Redis is unavailable."""
        payload = self.encode(state)
        try:
            await self._transport.set(self.key, payload, timeout=self.timeout_s)
            await self._transport.publish(self.channel, payload, timeout=self.timeout_s)
        except self.unavailable as exc:
            self.failed("publish", exc)
            return False
        self.recovered()
        return True

    async def read(self) -> bytes | None:
        """The key's payload; None when absent or when Redis is unavailable (logged)."""
        try:
            data = await self._transport.get(self.key, timeout=self.timeout_s)
        except self.unavailable as exc:
            self.failed("read", exc)
            return None
        self.recovered()
        return data

    def subscribe(self) -> AbstractAsyncContextManager[AsyncIterable[MirrorMessage]]:
        """The channel's messages; entering may raise one of ``unavailable``."""
        return self._transport.subscribe(self.channel, timeout=self.timeout_s)

    def failed(self, what: str, exc: Exception) -> None:
        if not self._failing:
            self._failing = True
            log.warning("kill switch mirror unavailable; Postgres refresh stays the truth",
                        extra={"op": what, "error": f"{type(exc).__name__}: {exc}"})

    def recovered(self) -> None:
        if self._failing:
            self._failing = False
            log.info("kill switch mirror available again")


def _parse_mirror(data: bytes) -> SwitchState | None:
    try:
        doc = json.loads(data)
        engaged, reason, at = doc["engaged"], doc["reason"], dt.datetime.fromisoformat(doc["at"])
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("kill switch mirror payload ignored: not {engaged, reason, at}",
                    extra={"error": f"{type(exc).__name__}: {exc}",
                           "payload": data[:200].decode(errors="replace")})
        return None
    if not isinstance(engaged, bool) or not isinstance(reason, str) or at.tzinfo is None:
        log.warning("kill switch mirror payload ignored: wrong types",
                    extra={"payload": data[:200].decode(errors="replace")})
        return None
    return SwitchState(engaged=engaged, reason=reason or "(no reason)", updated_at=at, confirmed=False)


# -------------------------------------------------------------------------------------- the view


class KillSwitches:
    """The kill switches as this node sees them. One per node; reads are synchronous.

    ``clock`` (monotonic seconds) only orders view changes against refreshes in flight."""

    def __init__(
        self,
        *,
        alerts: AlertSink = null_sink,
        mirror: KillSwitchMirror | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._alerts = alerts
        self.mirror = mirror
        self._clock = clock
        self._states: dict[str, SwitchState] = {}
        self._applied_at: dict[str, float] = {}  # scope -> clock() when the view last changed it
        self._mirror_seen: dt.datetime | None = None  # the newest mirror payload already handled
        self._listeners: list[SwitchListener] = []
        self._loaded = False
        self._publish_gauge()

    # -- reads (synchronous: every executor, before every intent) ----------------------------

    def global_engaged(self) -> bool:
        state = self._states.get(GLOBAL)
        return state is not None and state.engaged

    def user_engaged(self, user_id: str) -> bool:
        """The user's own switch only (see `stopped` for "may this user trade")."""
        state = self._states.get(user_scope(user_id))
        return state is not None and state.engaged

    def stopped(self, user_id: str) -> bool:
        """True when no new intent may be made for this user: the global or the user's switch."""
        return self.global_engaged() or self.user_engaged(user_id)

    def reason(self, scope: str) -> str | None:
        """Why ``scope`` is engaged; None when it is not engaged."""
        state = self._states.get(scope)
        return state.reason if state is not None and state.engaged else None

    def state(self, scope: str) -> SwitchState | None:
        return self._states.get(scope)

    def snapshot(self) -> dict[str, dict[str, object]]:
        return {scope: state.as_dict() for scope, state in sorted(self._states.items())}

    @property
    def loaded(self) -> bool:
        """True once the view has been loaded from Postgres at least once."""
        return self._loaded

    def on_change(self, listener: SwitchListener) -> Callable[[], None]:
        """Call ``listener(scope, state)`` on every change; returns the function that removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    # -- writes -------------------------------------------------------------------------------

    async def set(self, store: KillSwitchStore, scope: str, engaged: bool, reason: str | None) -> SwitchState:
        """Engage or release ``scope``: Postgres, then this view and its listeners, then the alert,
        then (global only) the Redis mirror. Raises `InvalidKillSwitch` or `DatabaseError` with
        nothing changed; a mirror failure is only logged."""
        check_scope(scope)
        check_reason(reason, engaged=engaged)
        state = await store.set(scope, engaged, reason)
        self._apply(scope, state)
        self._alerts(Alert(
            severity=Severity.CRITICAL if state.engaged else Severity.INFO, kind="kill_switch", subject=scope,
            details={"engaged": state.engaged, "reason": state.reason,
                     "updated_at": state.updated_at.isoformat()}))
        log.warning("kill switch %s", "engaged" if state.engaged else "released",
                    extra={"scope": scope, "reason": state.reason})
        if scope == GLOBAL and self.mirror is not None:
            await self.mirror.publish(state)
        return state

    async def refresh(self, store: KillSwitchStore) -> None:
        """Make the view what Postgres says (the truth). A change the view made while the load was
        in flight is kept unless the database already has that change or a newer one."""
        started = self._clock()
        rows = await store.load()
        for scope in sorted(set(rows) | set(self._states)):
            db_state, current = rows.get(scope), self._states.get(scope)
            if current is not None and self._applied_at.get(scope, -1.0) >= started and (
                    db_state is None or db_state.updated_at < current.updated_at):
                continue
            if db_state == current:
                continue
            if current is not None and not current.confirmed and (db_state is None or not db_state.engaged):
                log.warning("kill switch engage seen on the Redis mirror was not confirmed by Postgres",
                            extra={"scope": scope, "mirror_at": current.updated_at.isoformat()})
            elif current is not None and (db_state is None or db_state.engaged != current.engaged):
                log.warning("kill switch changed elsewhere",
                            extra={"scope": scope, "engaged": db_state is not None and db_state.engaged})
            self._apply(scope, db_state)
        self._loaded = True

    def apply_mirror(self, data: bytes) -> bool:
        """Apply a mirror payload (a publish, or the key's value). Only a global engage newer than
        what the view knows is applied, unconfirmed; True if the view changed."""
        seen = _parse_mirror(data)
        if seen is None:
            return False
        if self._mirror_seen is not None and seen.updated_at <= self._mirror_seen:
            return False
        self._mirror_seen = seen.updated_at
        current = self._states.get(GLOBAL)
        if not seen.engaged:
            return False  # a release is only ever taken from Postgres
        if current is not None and (current.engaged or current.updated_at >= seen.updated_at):
            return False
        log.warning("global kill switch engaged (seen on the Redis mirror; Postgres confirms next refresh)",
                    extra={"reason": seen.reason, "at": seen.updated_at.isoformat()})
        self._apply(GLOBAL, seen)
        return True

    def _apply(self, scope: str, state: SwitchState | None) -> None:
        current = self._states.get(scope)
        if (state is not None and current is not None and current.confirmed
                and state.updated_at < current.updated_at):
            return  # an older answer overtaken by a newer one (two writers racing)
        if state is None:
            self._states.pop(scope, None)
        else:
            self._states[scope] = state
        self._applied_at[scope] = self._clock()
        self._publish_gauge()
        was = None if current is None else (current.engaged, current.reason)
        if was != (None if state is None else (state.engaged, state.reason)):
            for listener in list(self._listeners):
                listener(scope, state)

    def _publish_gauge(self) -> None:
        KILL_SWITCH_ENGAGED.labels(GLOBAL).set(1 if self.global_engaged() else 0)
        KILL_SWITCH_ENGAGED.labels("user").set(
            sum(1 for s, st in self._states.items() if s.startswith(_USER_PREFIX) and st.engaged))

    # -- keeping it current -------------------------------------------------------------------

    async def watch(
        self,
        store: KillSwitchStore,
        *,
        refresh_s: float = 5.0,
        poll_s: float = 1.0,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Load the view (retrying until Postgres answers), report started, then refresh every
        ``refresh_s`` and follow the mirror (subscription, and a poll of the key every ``poll_s``
        for what the subscription missed) until cancelled. Use ``await nursery.start(...)``."""
        attempt = 0
        while True:
            try:
                await self.refresh(store)
                break
            except DatabaseError as exc:
                delay = backoff_delay(attempt, min_s=0.1, max_s=refresh_s, jitter=0.2)
                log.warning("kill switches not loaded yet; retrying",
                            extra={"error": str(exc), "retry_in_s": round(delay, 3)})
                attempt += 1
                await trio.sleep(delay)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._refresh_every, store, refresh_s)
            if self.mirror is not None:
                nursery.start_soon(self._follow, self.mirror, refresh_s)
                nursery.start_soon(self._poll, self.mirror, poll_s)
            task_status.started()

    async def _refresh_every(self, store: KillSwitchStore, period_s: float) -> None:
        while True:
            await trio.sleep(period_s)
            try:
                await self.refresh(store)
            except DatabaseError as exc:
                log.warning("kill switch refresh failed; keeping the last known view",
                            extra={"error": str(exc)})

    async def _follow(self, mirror: KillSwitchMirror, max_backoff_s: float) -> None:
        attempt = 0
        while True:
            try:
                async with mirror.subscribe() as messages:
                    mirror.recovered()
                    attempt = 0
                    async for message in messages:
                        self.apply_mirror(message.data)
            except mirror.unavailable as exc:
                mirror.failed("subscribe", exc)
            # The stream ended (the gateway stopped) or could not start: try again later.
            await trio.sleep(backoff_delay(attempt, min_s=0.1, max_s=max_backoff_s, jitter=0.2))
            attempt += 1

    async def _poll(self, mirror: KillSwitchMirror, period_s: float) -> None:
        while True:
            data = await mirror.read()
            if data is not None:
                self.apply_mirror(data)
            await trio.sleep(period_s)

