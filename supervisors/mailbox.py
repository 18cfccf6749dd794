"""Mailboxes: the bounded queues actors receive from.

A mailbox belongs to a child's *name*, not to one incarnation of the actor: the registry keeps it
while a supervisor restarts the actor, so the actor keeps its address and every message still
queued. It is closed only when the child is removed for good.

- `Mailbox`: FIFO with a capacity; `put` waits while it is full (back-pressure on the sender),
  `put_nowait` raises `trio.WouldBlock` instead. Commands are never dropped.
- `ConflatingMailbox`: for market data. Messages with the same key (e.g. the mint of a price tick)
  replace each other in place -- the latest value wins and keeps the first one's position; a
  message whose key is None is a command and is queued like in `Mailbox`. The capacity bounds the
  number of distinct entries, so a burst of ticks for known keys never blocks the feed.

The receiver drains in batches (`get_batch`): one scheduling round trip per batch rather than per
message is what makes `tell` fast. `put` does not checkpoint when there is room: a tight producer
runs until the mailbox is full and the consumer then drains everything in one go.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

import trio

M = TypeVar("M")


class MailboxClosed(Exception):
    """The mailbox's child was removed; nothing more can be delivered to it."""

    def __init__(self, name: str) -> None:
        super().__init__(f"mailbox of {name!r} is closed (the actor was removed)")
        self.name = name


class _BaseMailbox(Generic[M]):
    """Waiting, waking and closing; subclasses say how items are stored."""

    def __init__(self, name: str, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"mailbox capacity must be >= 1, got {capacity}")
        self.name = name
        self.capacity = capacity
        self._closed = False
        self._interrupted = False
        self._not_empty = trio.lowlevel.ParkingLot()
        self._not_full = trio.lowlevel.ParkingLot()

    # storage, provided by subclasses
    def __len__(self) -> int:
        raise NotImplementedError

    def _store(self, msg: M) -> bool:
        """Store `msg`; False when there is no room for it."""
        raise NotImplementedError

    def _take(self, n: int) -> list[M]:
        raise NotImplementedError

    def _store_front(self, msgs: list[M]) -> None:
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        return self._closed

    def put_nowait(self, msg: M) -> None:
        if self._closed:
            raise MailboxClosed(self.name)
        if not self._store(msg):
            raise trio.WouldBlock
        if self._not_empty:
            self._not_empty.unpark()

    async def put(self, msg: M) -> None:
        """Deliver `msg`, waiting while the mailbox is full."""
        while True:
            try:
                self.put_nowait(msg)
                return
            except trio.WouldBlock:
                await self._not_full.park()

    async def get_batch(self, max_items: int) -> list[M]:
        """Up to `max_items` messages, waiting for the first; [] when interrupted (a stop request)."""
        if len(self):
            await trio.lowlevel.checkpoint()
        while not len(self):
            if self._interrupted:
                self._interrupted = False
                return []
            if self._closed:
                raise MailboxClosed(self.name)
            await self._not_empty.park()
        batch = self._take(max_items)
        if self._not_full:
            self._not_full.unpark(count=len(batch))
        return batch

    def requeue_front(self, msgs: list[M]) -> None:
        """Put messages a crashed incarnation took but never handled back at the front."""
        if msgs:
            self._store_front(msgs)
            if self._not_empty:
                self._not_empty.unpark()

    def interrupt(self) -> None:
        """Make a waiting (or the next) `get_batch` on an empty mailbox return [] once."""
        self._interrupted = True
        self._not_empty.unpark_all()

    def clear_interrupt(self) -> None:
        self._interrupted = False

    def close(self) -> list[M]:
        """Close for good; returns what was still queued so pending requests can be failed."""
        self._closed = True
        left = self._take(len(self))
        self._not_empty.unpark_all()
        self._not_full.unpark_all()
        return left


class Mailbox(_BaseMailbox[M]):
    def __init__(self, name: str, capacity: int = 1024) -> None:
        super().__init__(name, capacity)
        self._items: deque[M] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def _store(self, msg: M) -> bool:
        if len(self._items) >= self.capacity:
            return False
        self._items.append(msg)
        return True

    def _take(self, n: int) -> list[M]:
        items = self._items
        if n >= len(items):
            batch = list(items)
            items.clear()
            return batch
        return [items.popleft() for _ in range(n)]

    def _store_front(self, msgs: list[M]) -> None:
        self._items.extendleft(reversed(msgs))


class ConflatingMailbox(_BaseMailbox[M]):
    def __init__(self, name: str, key: Callable[[M], Hashable | None], capacity: int = 1024) -> None:
        super().__init__(name, capacity)
        self._key = key
        self._entries: OrderedDict[Hashable, M] = OrderedDict()
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._entries)

    def _entry_key(self, msg: M) -> Hashable:
        key = self._key(msg)
        # Commands get a unique key so that they are never conflated.
        return ("command", next(self._seq)) if key is None else ("keyed", key)

    def _store(self, msg: M) -> bool:
        key = self._entry_key(msg)
        if key in self._entries:
            self._entries[key] = msg
            return True
        if len(self._entries) >= self.capacity:
            return False
        self._entries[key] = msg
        return True

    def _take(self, n: int) -> list[M]:
        entries = self._entries
        return [entries.popitem(last=False)[1] for _ in range(min(n, len(entries)))]

    def _store_front(self, msgs: Iterable[M]) -> None:
        for msg in reversed(list(msgs)):
            key = self._entry_key(msg)
            if key in self._entries:
                continue  # a newer value arrived while the old one was in hand: it wins
            self._entries[key] = msg
            self._entries.move_to_end(key, last=False)
