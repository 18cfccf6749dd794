"""Supervision events: every start, exit, crash, restart and escalation, for whoever subscribes.

The alerter (and tests) subscribe to the `EventBus`. Publishing never blocks a supervisor: each
subscriber has a bounded buffer and, when it is full, the event is dropped for that subscriber and
counted in `xorj_supervision_events_dropped_total` -- a slow subscriber must not stall recovery.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator
from contextlib import contextmanager

import attrs
import trio

from supervisors import metrics


class EventKind(enum.Enum):
    STARTED = "started"
    EXITED = "exited"  # returned normally
    CRASHED = "crashed"  # an exception escaped run()
    KILLED = "killed"  # cancelled after its shutdown grace
    STOPPED = "stopped"  # stopped by its supervisor (shutdown, sibling restart, removal)
    REMOVED = "removed"  # gone for good: its name is released and its queued requests failed
    RESTARTING = "restarting"
    ESCALATED = "escalated"  # a supervisor exceeded its intensity and gave up


@attrs.frozen
class SupervisionEvent:
    kind: EventKind
    supervisor: str
    child: str
    incarnation: int
    at: float  # trio.current_time()
    reason: str = ""
    delay_s: float = 0.0


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[trio.MemorySendChannel[SupervisionEvent]] = []

    @contextmanager
    def subscribe(self, capacity: int = 1000) -> Iterator[trio.MemoryReceiveChannel[SupervisionEvent]]:
        send, receive = trio.open_memory_channel[SupervisionEvent](capacity if capacity else math.inf)
        self._subscribers.append(send)
        try:
            yield receive
        finally:
            self._subscribers.remove(send)
            send.close()

    def publish(self, event: SupervisionEvent) -> None:
        for send in self._subscribers:
            try:
                send.send_nowait(event)
            except trio.WouldBlock:
                metrics.EVENTS_DROPPED.inc()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the subscriber went away; its context manager removes it
