"""Combining batcher: concurrent callers' items become one flush (one multi-row statement).

Owns: `Batcher`, the rendezvous that lets many tasks of one process share a database round trip
without a background task. ``await batcher.submit(item)`` queues the item; the first submitter
that finds no flush in progress becomes the *flusher*: it yields once (``window_s`` 0: one
scheduler checkpoint, so the tasks already runnable can queue too; or waits up to ``window_s``
unless ``max_items`` are queued first), takes up to ``max_items`` queued items in submission order,
runs ``flush(items)`` and hands each waiter its own result (``flush`` answers one result -- a value
or an exception -- per item, in order). When that flush ends, the oldest item still queued wakes and
its submitter flushes what queued meanwhile. At most one flush per batcher runs at a time.

Failure it contains: an exception raised by ``flush`` (e.g. a `sql.errors.DatabaseError`) is
raised to every submitter of that batch, and only of that batch; the next batch flushes normally.
A cancelled waiter never costs the others their results: an item not yet taken is withdrawn (a
waiter whose item is in a running flush just does not collect its result); a flush in progress is
shielded from its flusher's cancellation (``flush`` must bound itself, as every database call here
does with its deadline) and its results are handed out to all -- the flusher gets its own too, since
its item took effect, and sees the cancellation at its next checkpoint. A ``flush`` that answers the
wrong number of results is a bug: every item of the batch gets a `RuntimeError`.

May import: the standard library, trio, attrs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Generic, TypeVar

import attrs
import trio

__all__ = ["Batcher", "batcher_field", "each", "outcome"]

In = TypeVar("In")
Out = TypeVar("Out")
T = TypeVar("T")


async def outcome(call: Awaitable[T]) -> T | Exception:
    """The call's result, or the exception it raised: what a ``flush`` answers for one item."""
    try:
        return await call
    except Exception as exc:  # noqa: BLE001 -- handed to that item's submitter, who raises it
        return exc


async def each(call: Callable[[In], Awaitable[T]], items: Sequence[In]) -> list[T | Exception]:
    """Every item through the single-item ``call``, in order: a batch's row-by-row fallback."""
    return [await outcome(call(item)) for item in items]


def batcher_field(flush_of: Callable[[Any], Callable[[Sequence[Any]], Awaitable[Sequence[Any]]]]) -> Any:
    """An attrs field holding one `Batcher` per instance over ``flush_of(instance)``, e.g.
    ``_creates: Batcher[_NewJob, None] = batcher_field(lambda self: self._create_many)``."""
    return attrs.field(init=False, repr=False, eq=False,
                       default=attrs.Factory(lambda self: Batcher(flush_of(self)), takes_self=True))


@attrs.define(eq=False)
class _Slot(Generic[In, Out]):
    """One submitted item and its submitter, who parks until woken: for its result, or for its turn
    to flush. (trio's low-level parking, not a `trio.Event` per item: a fan-out queues tens of
    thousands of items, and an Event costs a parking lot each.)"""

    item: In
    task: trio.lowlevel.Task | None = None  # the submitter, while parked
    woken: bool = False  # woken while not parked: the next `park` returns at once
    done: bool = False
    value: Out | None = None
    error: BaseException | None = None
    traceback: TracebackType | None = None

    def wake(self) -> None:
        if self.task is None:
            self.woken = True
            return
        task, self.task = self.task, None
        trio.lowlevel.reschedule(task)

    async def park(self) -> None:
        """Until `wake` (a checkpoint: cancellable, and it yields even when already woken)."""
        if self.woken:
            self.woken = False
            await trio.lowlevel.checkpoint()
            return
        self.task = trio.lowlevel.current_task()

        def abort(_: object) -> trio.lowlevel.Abort:
            self.task = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def settle(self, value: Out | None, error: BaseException | None) -> None:
        self.done, self.value, self.error = True, value, error
        # One exception object may go to many waiters: each raises it from the flush's traceback,
        # so the traceback does not grow by every waiter's frames.
        self.traceback = None if error is None else error.__traceback__
        self.wake()


class Batcher(Generic[In, Out]):
    """``submit`` items from any number of tasks; ``flush`` sees them in batches of at most ``max_items``."""

    def __init__(
        self, flush: Callable[[Sequence[In]], Awaitable[Sequence[Out | Exception]]], *,
        max_items: int = 1000, window_s: float = 0.0,
    ) -> None:
        if max_items < 1:
            raise ValueError(f"max_items must be at least 1, got {max_items}")
        if window_s < 0:
            raise ValueError(f"window_s must not be negative, got {window_s}")
        self._flush = flush
        self._max_items = max_items
        self._window_s = window_s
        self._queued: deque[_Slot[In, Out]] = deque()
        self._flushing = False
        self._full: trio.Event | None = None  # set when max_items are queued during a window
        self.flushes = 0  # batches flushed so far (tests and benchmarks read it)

    @property
    def queued(self) -> int:
        return len(self._queued)

    async def submit(self, item: In) -> Out:
        slot: _Slot[In, Out] = _Slot(item)
        self._queued.append(slot)
        if self._full is not None and len(self._queued) >= self._max_items:
            self._full.set()
        try:
            while not slot.done:
                if self._flushing:
                    await slot.park()  # for the result, or for our turn to flush
                    continue
                await self._lead()
        except BaseException:
            if not slot.done:
                try:
                    self._queued.remove(slot)
                except ValueError:
                    pass  # taken by a flush in progress: its result is simply not collected
            self._pass_turn()
            raise
        if slot.error is not None:
            raise slot.error.with_traceback(slot.traceback)
        return slot.value  # type: ignore[return-value]  # Out may itself admit None

    async def _lead(self) -> None:
        self._flushing = True
        try:
            await self._gather()
            count = min(self._max_items, len(self._queued))
            batch = [self._queued.popleft() for _ in range(count)]
            if batch:
                await self._run(batch)
        finally:
            self._flushing = False
            self._pass_turn()

    async def _gather(self) -> None:
        """Let the other submitters queue: one checkpoint, or up to ``window_s`` (until full)."""
        if self._window_s <= 0 or len(self._queued) >= self._max_items:
            await trio.lowlevel.checkpoint()
            return
        self._full = trio.Event()
        try:
            with trio.move_on_after(self._window_s):
                await self._full.wait()
        finally:
            self._full = None

    async def _run(self, batch: list[_Slot[In, Out]]) -> None:
        self.flushes += 1
        try:
            with trio.CancelScope(shield=True):  # the batch's results belong to every waiter in it
                results = await self._flush([s.item for s in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"flush answered {len(results)} result(s) for {len(batch)} item(s)")
        except BaseException as exc:
            for slot in batch:
                slot.settle(None, exc)
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt and the like: the waiters were told, now it goes on
            return
        for slot, result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                slot.settle(None, result)
            else:
                slot.settle(result, None)

    def _pass_turn(self) -> None:
        """No flush running and items queued: wake the oldest, whose submitter flushes next."""
        if not self._flushing and self._queued:
            self._queued[0].wake()
