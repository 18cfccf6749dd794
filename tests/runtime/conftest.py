"""Small actors and a harness for running supervision trees in tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from actors import Actor, ChildContext, Request
from supervisors import EventBus, EventKind, Registry, SupervisionEvent, Supervisor


@attrs.frozen
class Boom:
    """Makes a `Worker` raise."""


@attrs.frozen
class Quit:
    """Makes a `Worker` return normally."""


@attrs.frozen
class Note:
    text: str


@attrs.frozen
class Ping(Request[str]):
    text: str = ""


@attrs.frozen
class Hang(Request[None]):
    """Makes a `Worker` block until cancelled."""


class Journal:
    """What happened, in order, across every actor of a test."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.changed = trio.Event()

    def add(self, line: str) -> None:
        self.lines.append(line)
        self.changed.set()
        self.changed = trio.Event()

    async def wait_for(self, line: str, *, count: int = 1, timeout: float = 5.0) -> None:
        with trio.fail_after(timeout):
            while self.lines.count(line) < count:
                await self.changed.wait()


class Worker(Actor):
    def __init__(self, name: str, journal: Journal) -> None:
        self.name = name
        self.journal = journal

    async def setup(self, ctx: ChildContext) -> None:
        self.journal.add(f"start {self.name}")

    async def handle(self, ctx: ChildContext, msg: Any) -> None:
        if isinstance(msg, Boom):
            raise RuntimeError(f"{self.name} was told to crash")
        if isinstance(msg, Quit):
            self.journal.add(f"quit {self.name}")
            raise _Return
        if isinstance(msg, Note):
            self.journal.add(f"{self.name} got {msg.text}")
        elif isinstance(msg, Ping):
            msg.reply.set(f"pong {msg.text}")
        elif isinstance(msg, Hang):
            await trio.sleep_forever()

    async def run(self, ctx: ChildContext) -> None:
        try:
            await super().run(ctx)
        except _Return:
            return
        finally:
            self.journal.add(f"stop {self.name}")


class _Return(Exception):
    pass


def worker(name: str, journal: Journal) -> Callable[[], Worker]:
    return lambda: Worker(name, journal)


@attrs.define
class Tree:
    root: Supervisor
    registry: Registry
    events: EventBus


@asynccontextmanager
async def running(sup: Supervisor, events: EventBus | None = None) -> AsyncIterator[Tree]:
    registry = Registry()
    bus = events or EventBus()
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run_as_root, "root", registry, bus)
        yield Tree(sup, registry, bus)
        sup.request_stop()


async def next_event(
    receive: trio.MemoryReceiveChannel[SupervisionEvent],
    kind: EventKind,
    child: str | None = None,
    *,
    timeout: float = 5.0,
) -> SupervisionEvent:
    with trio.fail_after(timeout):
        async for event in receive:
            if event.kind is kind and (child is None or event.child == child):
                return event
    raise AssertionError("event stream ended")
