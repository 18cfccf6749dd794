"""Request/reply between actors: a request carries its own one-shot reply slot.

`ask` delivers a `Request[T]` and waits for the answer under a deadline. The caller gets a typed
error instead of hanging: `AskTimeout` when the deadline passes, `ActorDied` when the actor crashed
while the request was in its hands, `ActorStopped` when the actor was removed before answering.
A request that was still queued when the actor crashed stays queued for the next incarnation.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import attrs
import trio

T = TypeVar("T")


class AskError(Exception):
    """Base of the typed errors `ask` raises."""


class AskTimeout(AskError):
    def __init__(self, actor: str, request: str, timeout: float) -> None:
        super().__init__(f"{actor!r} did not answer {request} within {timeout:g}s")
        self.actor = actor
        self.timeout = timeout


class ActorDied(AskError):
    def __init__(self, actor: str, request: str, cause: str) -> None:
        super().__init__(f"{actor!r} crashed while handling {request}: {cause}")
        self.actor = actor
        self.cause = cause


class ActorStopped(AskError):
    def __init__(self, actor: str, request: str = "the request") -> None:
        super().__init__(f"{actor!r} was stopped before it answered {request}")
        self.actor = actor


class Reply(Generic[T]):
    """A one-shot slot: the first `set` or `fail` wins, later ones are ignored."""

    __slots__ = ("_done", "_error", "_value")

    def __init__(self) -> None:
        self._done = trio.Event()
        self._value: T | None = None
        self._error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def set(self, value: T) -> None:
        if not self._done.is_set():
            self._value = value
            self._done.set()

    def fail(self, error: BaseException) -> None:
        if not self._done.is_set():
            self._error = error
            self._done.set()

    async def wait(self) -> T:
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


@attrs.frozen
class Request(Generic[T]):
    """Base of request messages: subclass as `@attrs.frozen class GetX(Request[Answer]): ...`."""

    reply: Reply[T] = attrs.field(factory=Reply, kw_only=True, eq=False, repr=False)
