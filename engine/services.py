"""`ServiceActor`: runs a long-lived `serve(task_status=...)` loop as a supervised child.

The gateways, the HTTP server and the control socket are servers rather than message handlers;
this actor gives each of them the actor lifecycle: started when its server says so (or at once,
for a gateway whose dependency may be down -- an outage must not hold up the rest of the tree;
callers get the gateway's typed "unavailable" error meanwhile), stopped when its supervisor asks,
restarted when its serve loop raises.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from actors import Actor, ChildContext

Serve = Callable[..., Awaitable[None]]


class ServiceActor(Actor):
    def __init__(
        self,
        serve: Serve,
        *,
        wait_until_serving: bool,
        on_serving: Callable[[Any], Awaitable[None]] | None = None,
    ) -> None:
        self._serve = serve
        self._wait = wait_until_serving
        self._on_serving = on_serving

    async def run(self, ctx: ChildContext) -> None:
        async with trio.open_nursery() as nursery:
            if self._wait:
                value = await nursery.start(self._serve)
                ctx.started()
                if self._on_serving is not None:
                    await self._on_serving(value)
            else:
                ctx.started()
                nursery.start_soon(self._serve_then_notify)
            await ctx.stopping.wait()
            nursery.cancel_scope.cancel()

    async def _serve_then_notify(self) -> None:
        async with trio.open_nursery() as nursery:
            value = await nursery.start(self._serve)
            if self._on_serving is not None:
                await self._on_serving(value)


class AfterEvent(Actor):
    """Starts at once but runs `inner` only after `event` is set (e.g. the schema is migrated).

    Reporting started before the wait keeps the supervisor's ordered start moving: a child that
    waits on a dependency must not hold up its siblings, the control socket among them.
    """

    def __init__(self, event: trio.Event, inner: Actor) -> None:
        self._event = event
        self._inner = inner

    async def run(self, ctx: ChildContext) -> None:
        ctx.started()
        await self._event.wait()
        await self._inner.run(ctx)
