"""The context one incarnation of a child runs with: its name, its mailbox, its registry.

`receive()` hands out one message at a time from batches drained off the mailbox and remembers
which ones are in hand; when the incarnation crashes, the supervisor calls `release()`, which
fails the reply of the request being handled (`ActorDied`) and puts every message taken but not
yet handled back at the front of the mailbox for the next incarnation. `receive()` returns None
once the supervisor asks the child to stop: an actor's loop ends at a message boundary.

It also measures, per message, the time from hand-out to the next `receive()` -- the handling
latency -- and counts messages per batch, so actors get their metrics without writing any.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import trio

from supervisors import metrics
from supervisors.events import EventBus
from supervisors.registry import ActorRef, AnyMailbox, Registry
from supervisors.request import ActorDied, ActorStopped, Request

BATCH = 256


class ChildContext:
    __slots__ = (
        "_batch",
        "_handed_at",
        "_handled",
        "_handling",
        "_index",
        "_latency",
        "_messages",
        "_on_started",
        "_stop_requested",
        "events",
        "incarnation",
        "mailbox",
        "name",
        "registry",
        "stopping",
    )

    def __init__(
        self,
        name: str,
        mailbox: AnyMailbox,
        registry: Registry,
        events: EventBus,
        incarnation: int,
        on_started: Callable[[], None],
        metrics_label: str | None = None,
    ) -> None:
        self.name = name
        self.mailbox = mailbox
        self.registry = registry
        self.events = events
        self.incarnation = incarnation
        self.stopping = trio.Event()
        self._on_started = on_started
        self._stop_requested = False
        self._batch: list[Any] = []
        self._index = 0
        self._handed_at = 0.0
        self._handling = False
        self._handled = 0
        self._messages = metrics.MESSAGES_HANDLED.labels(metrics_label or name)
        self._latency = metrics.HANDLING_SECONDS.labels(metrics_label or name)

    def started(self) -> None:
        """Tell the supervisor this incarnation is ready; the next sibling starts after it."""
        self._on_started()

    def ref(self, name: str) -> ActorRef:
        return self.registry.ref(name)

    @property
    def self_ref(self) -> ActorRef:
        return self.registry.ref(self.name)

    async def receive(self) -> Any | None:
        """The next message, or None when this incarnation has been asked to stop."""
        if self._handling:
            self._latency.observe(time.perf_counter() - self._handed_at)
            self._handling = False
        if self._stop_requested:
            return None
        if self._index >= len(self._batch):
            if self._handled:
                self._messages.inc(self._handled)
                self._handled = 0
            self._batch = await self.mailbox.get_batch(BATCH)
            self._index = 0
            if not self._batch:
                return None
        msg = self._batch[self._index]
        self._index += 1
        self._handled += 1
        self._handling = True
        self._handed_at = time.perf_counter()
        return msg

    def request_stop(self) -> None:
        self._stop_requested = True
        self.stopping.set()
        self.mailbox.interrupt()

    def release(self, cause: str | None) -> None:
        """After the incarnation ended: requeue the untouched messages, fail a request in hand.

        The message in hand when the incarnation died is not retried (as in OTP: a message that
        crashes its actor would crash every incarnation); if it was a request, its caller gets
        `ActorDied` (crash) or `ActorStopped` (killed after its grace) instead of waiting.
        """
        if self._handled:
            self._messages.inc(self._handled)
            self._handled = 0
        in_hand = self._batch[self._index - 1] if self._handling and self._index else None
        rest = self._batch[self._index :]
        self._batch, self._index, self._handling = [], 0, False
        if isinstance(in_hand, Request):
            request = type(in_hand).__name__
            in_hand.reply.fail(
                ActorDied(self.name, request, cause) if cause else ActorStopped(self.name, request)
            )
        if rest and not self.mailbox.closed:
            self.mailbox.requeue_front(rest)
        self.mailbox.clear_interrupt()
