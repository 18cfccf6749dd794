"""Supervisors with Erlang/OTP semantics; they contain every failure of the children they run.

A `Supervisor` runs its children -- actors or other supervisors -- each as one trio task in the
supervisor's nursery, and decides what a child's exit means:

- restart types (`Restart`): `permanent` children are restarted after any exit, `transient` ones
  only after a crash (or being killed), `temporary` ones never -- not even when a sibling's crash
  takes them down under `one_for_all` / `rest_for_one`; they are removed instead.
- strategies (`Strategy`): `one_for_one` restarts the child that exited; `one_for_all` stops every
  other child (in reverse start order) and restarts them all in start order; `rest_for_one` does
  the same for the children started after the one that exited.
- intensity: more than `max_restarts` restarts within `period` seconds and the supervisor stops
  all its children in reverse order and raises `SupervisorEscalated`, which its own supervisor
  sees as a crash (OTP's escalation).
- backoff: the first restart of a child after a quiet period is immediate; each further
  consecutive restart waits `backoff_delay(n)` (exponential with jitter); the count resets once
  the child has stayed up for `reset_after_s`.
- start and stop: children start in order, each after the previous one called `ctx.started()`;
  they stop in reverse order, each asked to stop (its `receive()` returns None, `ctx.stopping` is
  set) and cancelled if still running after its `shutdown_s` grace.

Children can be added, removed, restarted and crashed (fault injection) at run time with the
request messages below, sent to the supervisor's own mailbox; `DynamicSupervisor` is the
`one_for_one` supervisor that starts empty and is used that way (the per-user executors).

Every start, exit, crash, kill, restart and escalation is logged with structured fields, counted
in Prometheus and published on the `EventBus`.

Catching `Exception` around a child's `run` is this module's job: it is how a crash is turned
into a decision. Nothing is swallowed -- every crash is reported and acted upon. Cancellation and
BaseExceptions are never caught.
"""

from __future__ import annotations

import enum
import logging
import math
import random
import weakref
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Literal, Protocol

import attrs
import trio

from supervisors import metrics
from supervisors.backoff import backoff_delay
from supervisors.context import ChildContext
from supervisors.events import EventBus, EventKind, SupervisionEvent
from supervisors.intensity import RestartIntensity
from supervisors.registry import ActorNotFound, AnyMailbox, DuplicateName, Registry, new_mailbox
from supervisors.request import Request

log = logging.getLogger("xorj.supervisor")


class Strategy(enum.Enum):
    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


class Restart(enum.Enum):
    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


class Runnable(Protocol):
    async def run(self, ctx: ChildContext) -> None: ...


@attrs.frozen
class ChildSpec:
    name: str
    start: Callable[[], Runnable]  # called for every incarnation
    restart: Restart = Restart.PERMANENT
    shutdown_s: float = 5.0
    mailbox_capacity: int = 1024
    conflate: Callable[[Any], Hashable | None] | None = None
    # The `actor` label of this child's metrics; children of one kind that come in thousands (the
    # per-user executors) share one, to keep Prometheus' cardinality bounded.
    metrics_label: str | None = None

    @property
    def label(self) -> str:
        return self.metrics_label or self.name


@attrs.frozen
class BackoffPolicy:
    min_s: float = 0.05
    max_s: float = 5.0
    jitter: float = 0.25
    reset_after_s: float = 30.0


class SupervisorEscalated(Exception):
    def __init__(self, supervisor: str, restarts: int, period: float, last: str) -> None:
        super().__init__(
            f"supervisor {supervisor!r} exceeded its restart intensity "
            f"({restarts} restarts within {period:g}s); last: {last}"
        )
        self.supervisor = supervisor


class InjectedCrash(Exception):
    """Raised into a child by `CrashChild` (fault injection for the chaos harness)."""


# Requests a supervisor answers.
@attrs.frozen
class StartChild(Request[None]):
    spec: ChildSpec


@attrs.frozen
class TerminateChild(Request[None]):
    name: str


@attrs.frozen
class RestartChild(Request[None]):
    name: str


@attrs.frozen
class CrashChild(Request[None]):
    name: str


class ChildState(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


@attrs.frozen
class TreeNode:
    name: str
    kind: Literal["supervisor", "actor"]
    strategy: str | None
    state: str
    restarts: int
    mailbox_depth: int
    children: tuple[TreeNode, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "strategy": self.strategy,
            "state": self.state,
            "restarts": self.restarts,
            "mailbox_depth": self.mailbox_depth,
            "children": [c.as_dict() for c in self.children],
        }

    def find(self, name: str) -> TreeNode | None:
        if self.name == name:
            return self
        for child in self.children:
            found = child.find(name)
            if found is not None:
                return found
        return None


@attrs.define(eq=False)
class _Child:
    spec: ChildSpec
    mailbox: AnyMailbox
    state: ChildState = ChildState.STOPPED
    incarnation: int = 0
    restarts: int = 0
    consecutive: int = 0
    last_restart: float = -math.inf
    scope: trio.CancelScope | None = None
    exited: trio.Event = attrs.field(factory=trio.Event)
    ctx: ChildContext | None = None
    runnable: Runnable | None = None
    crash_requested: bool = False


@attrs.frozen
class _Exited:
    child: _Child
    incarnation: int
    how: EventKind
    reason: str


@attrs.frozen
class _Command:
    msg: object


_STOP = object()
_LIVE: weakref.WeakSet[Supervisor] = weakref.WeakSet()


def describe(exc: BaseException) -> str:
    """A one-line reason for an exception, looking through single-member exception groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


class Supervisor:
    def __init__(
        self,
        children: Sequence[ChildSpec] = (),
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        max_restarts: int = 3,
        period: float = 5.0,
        backoff: BackoffPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        names = [spec.name for spec in children]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate child names in {names}")
        self.strategy = strategy
        self.max_restarts = max_restarts
        self.period = period
        self.backoff = backoff or BackoffPolicy()
        self._specs = tuple(children)
        self._rng = rng or random.Random()
        self._intensity = RestartIntensity(max_restarts, period)
        self._children: dict[str, _Child] = {}  # in start order
        self.name = "?"
        self._ctx: ChildContext | None = None
        self._nursery: trio.Nursery | None = None
        self._inbox: trio.MemorySendChannel[object] | None = None

    # ------------------------------------------------------------------ running

    async def run(self, ctx: ChildContext) -> None:
        self._ctx, self.name = ctx, ctx.name
        send, receive = trio.open_memory_channel[object](math.inf)
        self._inbox = send
        escalation: SupervisorEscalated | None = None
        _LIVE.add(self)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for spec in self._specs:
                    await self._add(spec)
                nursery.start_soon(self._pump, ctx)
                ctx.started()
                async for item in receive:
                    if item is _STOP:
                        break
                    escalation = await self._dispatch(item)
                    if escalation is not None:
                        break
                await self._stop_all("supervisor stopping")
                nursery.cancel_scope.cancel()
        finally:
            send.close()
            _LIVE.discard(self)
            self._forget_children()
        if escalation is not None:
            raise escalation

    async def run_as_root(
        self,
        name: str,
        registry: Registry,
        events: EventBus,
        *,
        task_status: trio.TaskStatus[ChildContext] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run as the top of a tree. Returns after a graceful stop; raises if it escalates."""
        mailbox = registry.claim(name, None, lambda: new_mailbox(name, 1024, None))
        ctx = ChildContext(name, mailbox, registry, events, 1, lambda: task_status.started(ctx))
        try:
            await self.run(ctx)
        finally:
            registry.release(name)

    def request_stop(self) -> None:
        """Begin a graceful stop: children stop in reverse order, then `run` returns."""
        if self._ctx is not None:
            self._ctx.request_stop()

    async def _pump(self, ctx: ChildContext) -> None:
        assert self._inbox is not None
        while (msg := await ctx.receive()) is not None:
            self._inbox.send_nowait(_Command(msg))
        self._inbox.send_nowait(_STOP)

    def _forget_children(self) -> None:
        """Names of static children stay reserved (with their mail) for the next incarnation."""
        static = {spec.name for spec in self._specs}
        for child in self._children.values():
            if child.spec.name in static:
                self._ctx_registry.unbind(child.spec.name)
            else:
                self._ctx_registry.release(child.spec.name)
        self._children = {}

    @property
    def _ctx_registry(self) -> Registry:
        assert self._ctx is not None
        return self._ctx.registry

    # ------------------------------------------------------------------ children

    def _find(self, name: str) -> _Child:
        child = self._children.get(name)
        if child is None:
            raise ActorNotFound(name)
        return child

    async def _add(self, spec: ChildSpec) -> None:
        if spec.name in self._children:
            raise DuplicateName(spec.name)
        mailbox = self._ctx_registry.claim(
            spec.name,
            self.name,
            lambda: new_mailbox(spec.name, spec.mailbox_capacity, spec.conflate),
        )
        child = _Child(spec, mailbox)
        self._children[spec.name] = child
        await self._start(child, 0.0)

    async def _start(self, child: _Child, delay: float) -> None:
        assert self._nursery is not None
        child.incarnation += 1
        child.state = ChildState.STARTING
        child.exited = trio.Event()
        child.crash_requested = False
        await self._nursery.start(self._incarnation, child, child.incarnation, delay)
        if child.state is ChildState.STARTING:
            child.state = ChildState.RUNNING
        metrics.ACTOR_STARTS.labels(child.spec.label).inc()
        self._report(EventKind.STARTED, child, child.incarnation)

    async def _incarnation(
        self, child: _Child, incarnation: int, delay: float, task_status: trio.TaskStatus[None]
    ) -> None:
        exited = child.exited
        ctx: ChildContext | None = None
        started = False
        how, reason = EventKind.EXITED, "returned"

        def on_started() -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started()

        try:
            with trio.CancelScope() as scope:
                child.scope = scope
                try:
                    if delay > 0:
                        await trio.sleep(delay)
                    runnable = child.runnable = child.spec.start()
                    ctx = child.ctx = ChildContext(
                        child.spec.name,
                        child.mailbox,
                        self._ctx_registry,
                        self._ctx.events if self._ctx else EventBus(),
                        incarnation,
                        on_started,
                        child.spec.label,
                    )
                    await runnable.run(ctx)
                except Exception as exc:  # noqa: BLE001 -- a crash: reported and acted upon below
                    how, reason = EventKind.CRASHED, describe(exc)
            if scope.cancelled_caught:
                if child.crash_requested:
                    how, reason = EventKind.CRASHED, describe(InjectedCrash("crash requested by operator"))
                else:
                    how, reason = EventKind.KILLED, "cancelled after its shutdown grace"
        finally:
            if ctx is not None:
                ctx.release(reason if how is EventKind.CRASHED else None)
            exited.set()
        if not started:
            on_started()
        if self._inbox is not None:
            try:
                self._inbox.send_nowait(_Exited(child, incarnation, how, reason))
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                pass  # the supervisor itself is finishing; it no longer acts on exits

    async def _stop(self, child: _Child, reason: str) -> None:
        if child.state is ChildState.STOPPED:
            return
        child.state = ChildState.STOPPING
        if child.ctx is not None and child.ctx.incarnation == child.incarnation:
            child.ctx.request_stop()
        with trio.move_on_after(child.spec.shutdown_s):
            await child.exited.wait()
        if not child.exited.is_set():
            assert child.scope is not None
            child.scope.cancel()
            await child.exited.wait()
        child.state = ChildState.STOPPED
        metrics.ACTOR_EXITS.labels(child.spec.label, "stopped").inc()
        self._report(EventKind.STOPPED, child, child.incarnation, reason)

    async def _stop_all(self, reason: str) -> None:
        for child in reversed(self._children.values()):
            await self._stop(child, reason)

    async def _remove(self, child: _Child, reason: str) -> None:
        await self._stop(child, reason)
        del self._children[child.spec.name]
        self._ctx_registry.release(child.spec.name)
        self._report(EventKind.REMOVED, child, child.incarnation, reason)

    # ------------------------------------------------------------------ decisions

    async def _dispatch(self, item: object) -> SupervisorEscalated | None:
        if isinstance(item, _Exited):
            return await self._on_exit(item)
        assert isinstance(item, _Command)
        msg = item.msg
        if not isinstance(msg, Request):
            log.warning("supervisor ignored a message it does not know", extra={
                "supervisor": self.name, "message": type(msg).__name__})
            return None
        try:
            if isinstance(msg, StartChild):
                await self._add(msg.spec)
            elif isinstance(msg, TerminateChild):
                await self._remove(self._find(msg.name), "terminated on request")
            elif isinstance(msg, RestartChild):
                child = self._find(msg.name)
                await self._stop(child, "restart requested")
                await self._restart(child, 0.0, "restart requested")
            elif isinstance(msg, CrashChild):
                child = self._find(msg.name)
                if child.state is not ChildState.RUNNING or child.scope is None:
                    raise RuntimeError(f"{msg.name!r} is not running ({child.state.value})")
                child.crash_requested = True
                child.scope.cancel()
            else:
                raise TypeError(f"supervisor does not answer {type(msg).__name__}")
        except (ActorNotFound, DuplicateName, RuntimeError, TypeError) as exc:
            msg.reply.fail(exc)
        else:
            msg.reply.set(None)
        return None

    async def _on_exit(self, ev: _Exited) -> SupervisorEscalated | None:
        child = ev.child
        if (
            child.incarnation != ev.incarnation
            or self._children.get(child.spec.name) is not child
            or child.state in (ChildState.STOPPING, ChildState.STOPPED)
        ):
            return None  # an exit this supervisor caused, or of an earlier incarnation
        child.state = ChildState.STOPPED
        how = {EventKind.CRASHED: "crashed", EventKind.KILLED: "killed"}.get(ev.how, "exited")
        metrics.ACTOR_EXITS.labels(child.spec.label, how).inc()
        if ev.how is EventKind.CRASHED:
            metrics.ACTOR_CRASHES.labels(child.spec.label).inc()
        self._report(ev.how, child, ev.incarnation, ev.reason)

        restart = child.spec.restart
        if restart is Restart.TEMPORARY or (restart is Restart.TRANSIENT and ev.how is EventKind.EXITED):
            if restart is Restart.TEMPORARY:
                await self._remove(child, "temporary child ended")
            return None

        now = trio.current_time()
        if self._intensity.record(now):
            metrics.ESCALATIONS.labels(self.name).inc()
            escalation = SupervisorEscalated(self.name, self.max_restarts, self.period, ev.reason)
            log.error(
                "supervisor escalates",
                extra={"event": "escalated", "supervisor": self.name, "child": child.spec.name,
                       "reason": ev.reason},
            )
            self._publish(EventKind.ESCALATED, child.spec.name, child.incarnation, str(escalation))
            await self._stop_all("supervisor escalating")
            return escalation

        group = self._group(child)
        why = f"{self.strategy.value}: {child.spec.name} exited"
        for sibling in reversed(group):
            if sibling is child:
                continue
            if sibling.spec.restart is Restart.TEMPORARY:
                await self._remove(sibling, f"{why}; a temporary child is not restarted")
            else:
                await self._stop(sibling, why)
        delay = self._next_delay(child, now)
        for member in group:
            if self._children.get(member.spec.name) is member:
                await self._restart(member, delay if member is child else 0.0, ev.reason)
        return None

    def _group(self, child: _Child) -> list[_Child]:
        if self.strategy is Strategy.ONE_FOR_ONE:
            return [child]
        if self.strategy is Strategy.ONE_FOR_ALL:
            return list(self._children.values())
        ordered = list(self._children.values())
        return ordered[ordered.index(child) :]

    def _next_delay(self, child: _Child, now: float) -> float:
        policy = self.backoff
        if now - child.last_restart > policy.reset_after_s:
            child.consecutive = 0
        child.last_restart = now
        child.consecutive += 1
        if child.consecutive == 1:
            return 0.0
        return backoff_delay(
            child.consecutive - 2, min_s=policy.min_s, max_s=policy.max_s, jitter=policy.jitter,
            rng=self._rng,
        )

    async def _restart(self, child: _Child, delay: float, reason: str) -> None:
        child.restarts += 1
        metrics.ACTOR_RESTARTS.labels(child.spec.label).inc()
        self._report(EventKind.RESTARTING, child, child.incarnation + 1, reason, delay)
        await self._start(child, delay)

    # ------------------------------------------------------------------ observing

    def _report(
        self, kind: EventKind, child: _Child, incarnation: int, reason: str = "", delay: float = 0.0
    ) -> None:
        level = logging.WARNING if kind in (EventKind.CRASHED, EventKind.KILLED) else logging.INFO
        log.log(
            level,
            f"{child.spec.name} {kind.value}",
            extra={
                "event": kind.value,
                "supervisor": self.name,
                "child": child.spec.name,
                "incarnation": incarnation,
                "reason": reason,
                "delay_s": round(delay, 4),
            },
        )
        self._publish(kind, child.spec.name, incarnation, reason, delay)

    def _publish(
        self, kind: EventKind, child: str, incarnation: int, reason: str, delay: float = 0.0
    ) -> None:
        if self._ctx is not None:
            self._ctx.events.publish(
                SupervisionEvent(kind, self.name, child, incarnation, trio.current_time(), reason, delay)
            )

    def tree(self, *, state: str = "running", restarts: int = 0, depth: int = 0) -> TreeNode:
        """A consistent snapshot of this subtree (synchronous: nothing changes while it is taken)."""
        nodes = []
        for child in self._children.values():
            runnable = child.runnable
            if isinstance(runnable, Supervisor) and child.state is not ChildState.STOPPED:
                nodes.append(runnable.tree(
                    state=child.state.value, restarts=child.restarts, depth=len(child.mailbox)))
            else:
                kind: Literal["supervisor", "actor"] = (
                    "supervisor" if isinstance(runnable, Supervisor) else "actor")
                strategy = runnable.strategy.value if isinstance(runnable, Supervisor) else None
                nodes.append(TreeNode(child.spec.name, kind, strategy, child.state.value,
                                      child.restarts, len(child.mailbox)))
        return TreeNode(self.name, "supervisor", self.strategy.value, state, restarts, depth, tuple(nodes))

    @property
    def child_names(self) -> list[str]:
        return list(self._children)


class DynamicSupervisor(Supervisor):
    """A `one_for_one` supervisor that starts empty; children come and go with `StartChild` /
    `TerminateChild` (OTP's DynamicSupervisor)."""

    def __init__(
        self,
        *,
        max_restarts: int = 3,
        period: float = 5.0,
        backoff: BackoffPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__((), strategy=Strategy.ONE_FOR_ONE, max_restarts=max_restarts,
                         period=period, backoff=backoff, rng=rng)


def _supervisor_gauges() -> list[tuple[str, int, int]]:
    out = []
    for sup in list(_LIVE):
        try:
            used = sup._intensity.used(trio.current_time())
        except RuntimeError:  # scraped outside a trio run: no clock to read the window with
            used = 0
        out.append((sup.name, len(sup._children), used))
    return out


def _mailbox_depths() -> list[tuple[str, int]]:
    return [pair for registry in list(Registry.live_registries) for pair in registry.depths()]


metrics.COLLECTOR.supervisor_children = _supervisor_gauges
metrics.COLLECTOR.mailbox_depths = _mailbox_depths
