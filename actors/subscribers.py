"""A list of actors that hear one kind of notification: the one fan-out inside a node.

Owns: `Subscribers[M]` -- created once by the node and handed to every incarnation of the
publisher (so a restart forgets no one), told without waiting: a full mailbox skips that
subscriber for this message (counted in the given counter: the publisher never blocks on a slow
reader, and the notifications are wake-ups the readers conflate), a subscriber that is gone for
good is removed. `RankingsSubscribers`, `PriceSubscribers` and `TargetSubscribers` are this.

May import: the standard library, trio, prometheus_client, `supervisors`.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import trio
from prometheus_client import Counter

from supervisors.mailbox import MailboxClosed
from supervisors.registry import ActorNotFound, ActorRef

__all__ = ["Subscribers"]

M = TypeVar("M")


class Subscribers(Generic[M]):
    def __init__(self, skipped: Counter | None = None) -> None:
        self._refs: dict[str, ActorRef] = {}
        self._skipped = skipped

    def add(self, ref: ActorRef) -> None:
        self._refs[ref.name] = ref

    def remove(self, name: str) -> None:
        self._refs.pop(name, None)

    def __len__(self) -> int:
        return len(self._refs)

    def publish(self, msg: M) -> int:
        """Tell every subscriber without waiting; returns how many were skipped (mailbox full)."""
        skipped = 0
        for ref in list(self._refs.values()):
            try:
                ref.tell_nowait(msg)
            except trio.WouldBlock:
                skipped += 1
                if self._skipped is not None:
                    self._skipped.inc()
            except (ActorNotFound, MailboxClosed):  # the subscriber is gone for good
                self.remove(ref.name)
        return skipped
