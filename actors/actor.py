"""The actor base: one trio task handling one message at a time from its mailbox.

Subclass `Actor`, implement `handle`, and optionally `setup` (run before the actor reports itself
started, so the next sibling starts only once this one is ready). State lives on the instance; a
supervisor creates a fresh instance for every incarnation, so a crash never leaves half-updated
state behind. Actors do not catch broad exceptions to stay alive: a crash is an exception
escaping `run`, and the supervisor decides what happens next.
"""

from __future__ import annotations

from typing import Any

from supervisors.context import ChildContext


class Actor:
    async def setup(self, ctx: ChildContext) -> None:
        """Acquire what the actor needs before it is considered started."""

    async def handle(self, ctx: ChildContext, msg: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not handle {type(msg).__name__}")

    async def run(self, ctx: ChildContext) -> None:
        await self.setup(ctx)
        ctx.started()
        while (msg := await ctx.receive()) is not None:
            await self.handle(ctx, msg)
