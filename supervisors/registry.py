"""The registry of names: who is addressable, through which mailbox, under which supervisor.

Addresses are names. A name's mailbox is created the first time a supervisor starts a child with
that name and is kept across restarts (of the child, and of its supervisor), so an `ActorRef`
stays valid and nothing queued is lost. A name is released -- its mailbox closed and the requests
still queued in it failed with `ActorStopped` -- only when its child is removed for good.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import attrs
import trio

from supervisors.mailbox import ConflatingMailbox, Mailbox, MailboxClosed, _BaseMailbox
from supervisors.request import ActorStopped, AskTimeout, Request

AnyMailbox = _BaseMailbox[Any]
T = TypeVar("T")


class ActorNotFound(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no actor named {name!r}")
        self.name = name


class DuplicateName(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"an actor named {name!r} is already running")
        self.name = name


@attrs.define
class _Entry:
    mailbox: AnyMailbox
    owner: str | None  # the supervisor that runs this child; None for the root
    live: bool = False  # a supervisor currently runs a child under this name


class Registry:
    live_registries: weakref.WeakSet[Registry] = weakref.WeakSet()

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        Registry.live_registries.add(self)

    def claim(
        self, name: str, owner: str | None, make_mailbox: Callable[[], AnyMailbox]
    ) -> AnyMailbox:
        """Bind `name` to a running child; reuse the name's mailbox if it has one."""
        entry = self._entries.get(name)
        if entry is None:
            entry = self._entries[name] = _Entry(make_mailbox(), owner)
        elif entry.live:
            raise DuplicateName(name)
        entry.owner = owner
        entry.live = True
        return entry.mailbox

    def unbind(self, name: str) -> None:
        """The child stopped but its name (and queued mail) stays for a later start."""
        entry = self._entries.get(name)
        if entry is not None:
            entry.live = False

    def release(self, name: str) -> None:
        """The child is gone for good: close its mailbox and fail what was still queued."""
        entry = self._entries.pop(name, None)
        if entry is None:
            return
        for msg in entry.mailbox.close():
            if isinstance(msg, Request):
                msg.reply.fail(ActorStopped(name, type(msg).__name__))

    def mailbox(self, name: str) -> AnyMailbox:
        entry = self._entries.get(name)
        if entry is None:
            raise ActorNotFound(name)
        return entry.mailbox

    def owner(self, name: str) -> str | None:
        entry = self._entries.get(name)
        if entry is None:
            raise ActorNotFound(name)
        return entry.owner

    def names(self) -> Iterator[str]:
        return iter(list(self._entries))

    def depths(self) -> Iterator[tuple[str, int]]:
        for name, entry in list(self._entries.items()):
            yield name, len(entry.mailbox)

    def ref(self, name: str) -> ActorRef:
        return ActorRef(name, self)


class ActorRef:
    """An address: `await ref.tell(msg)`; `await ask(ref, request, timeout=...)` for an answer."""

    __slots__ = ("_mailbox", "name", "registry")

    def __init__(self, name: str, registry: Registry) -> None:
        self.name = name
        self.registry = registry
        self._mailbox: AnyMailbox | None = None

    def __repr__(self) -> str:
        return f"ActorRef({self.name!r})"

    def _resolve(self) -> AnyMailbox:
        mailbox = self._mailbox
        if mailbox is None or mailbox.closed:
            mailbox = self._mailbox = self.registry.mailbox(self.name)
        return mailbox

    async def tell(self, msg: object) -> None:
        """Deliver `msg`, waiting while the actor's mailbox is full (back-pressure)."""
        try:
            await self._resolve().put(msg)
        except MailboxClosed:
            await self.registry.mailbox(self.name).put(msg)  # re-resolve once: the name was re-bound

    def tell_nowait(self, msg: object) -> None:
        """Deliver `msg` now or raise `trio.WouldBlock` (mailbox full)."""
        self._resolve().put_nowait(msg)

    @property
    def depth(self) -> int:
        return len(self._resolve())


async def ask(ref: ActorRef, request: Request[T], *, timeout: float) -> T:
    """Send `request` to `ref` and wait for its answer, at most `timeout` seconds."""
    with trio.move_on_after(timeout):
        await ref.tell(request)
        return await request.reply.wait()
    raise AskTimeout(ref.name, type(request).__name__, timeout)


def new_mailbox(name: str, capacity: int, conflate: Callable[[Any], Any] | None) -> AnyMailbox:
    if conflate is None:
        return Mailbox(name, capacity)
    return ConflatingMailbox(name, conflate, capacity)
