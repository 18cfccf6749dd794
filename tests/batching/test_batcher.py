"""`actors.batcher.Batcher` on its own (pure trio, no I/O): concurrent submitters share one flush in
submission order and each gets its own result; items queued during a flush form the next batch;
``max_items`` and ``window_s`` bound a batch; a flush error reaches exactly its batch's submitters;
a cancelled submitter -- waiting, gathering or flushing -- never costs the others their results."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
import trio

from actors.batcher import Batcher


async def until(condition: Callable[[], bool]) -> None:
    """Let the other tasks run until ``condition`` holds (the caller's deadline bounds it)."""
    while not condition():
        await trio.lowlevel.checkpoint()


class Recorder:
    """A flush that records its batches, answers ``item * 10`` and can be held open by a test."""

    def __init__(self, *, hold: bool = False, fail_items: frozenset[int] = frozenset()) -> None:
        self.batches: list[list[int]] = []
        self.release = trio.Event()
        self.entered = trio.Event()
        self.hold = hold
        self.fail_items = fail_items

    async def __call__(self, items: Sequence[int]) -> list[int | Exception]:
        self.batches.append(list(items))
        self.entered.set()
        if self.hold:
            await self.release.wait()
        await trio.lowlevel.checkpoint()  # a real flush waits for I/O
        return [KeyError(i) if i in self.fail_items else i * 10 for i in items]


async def submit_all(
    batcher: Batcher[int, int], items: Sequence[int], order: list[int] | None = None,
) -> dict[int, int | BaseException]:
    """Submit ``items`` from one task each (trio starts them in any order; ``order`` records it)."""
    results: dict[int, int | BaseException] = {}

    async def one(item: int) -> None:
        if order is not None:
            order.append(item)  # no checkpoint before submit queues it: this is the submission order
        try:
            results[item] = await batcher.submit(item)
        except Exception as exc:  # noqa: BLE001 -- recorded for the test to assert on
            results[item] = exc

    async with trio.open_nursery() as nursery:
        for item in items:
            nursery.start_soon(one, item)
    return results


async def test_concurrent_submitters_share_one_flush_in_submission_order() -> None:
    flush = Recorder()
    batcher: Batcher[int, int] = Batcher(flush)
    order: list[int] = []
    with trio.fail_after(5):
        results = await submit_all(batcher, range(50), order)
    assert flush.batches == [order] and sorted(order) == list(range(50))
    assert results == {i: i * 10 for i in range(50)}
    assert batcher.flushes == 1 and batcher.queued == 0


async def test_a_lone_submitter_is_flushed_alone() -> None:
    flush = Recorder()
    batcher: Batcher[int, int] = Batcher(flush)
    with trio.fail_after(5):
        assert await batcher.submit(7) == 70
        assert await batcher.submit(8) == 80
    assert flush.batches == [[7], [8]]


async def test_items_queued_during_a_flush_form_the_next_batch() -> None:
    flush = Recorder(hold=True)
    batcher: Batcher[int, int] = Batcher(flush)
    results: dict[int, int | BaseException] = {}
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: submit_into(batcher, [1, 2], results))
            await flush.entered.wait()
            nursery.start_soon(lambda: submit_into(batcher, [3, 4, 5], results))
            await until(lambda: batcher.queued >= 3)
            assert [sorted(b) for b in flush.batches] == [[1, 2]]  # nobody flushes while one flush runs
            flush.hold = False
            flush.release.set()
    assert [sorted(b) for b in flush.batches] == [[1, 2], [3, 4, 5]]
    assert results == {1: 10, 2: 20, 3: 30, 4: 40, 5: 50}


async def submit_into(batcher: Batcher[int, int], items: Sequence[int],
                      results: dict[int, int | BaseException]) -> None:
    results.update(await submit_all(batcher, items))


async def test_max_items_bounds_a_batch_and_the_rest_follow_in_order() -> None:
    flush = Recorder()
    batcher: Batcher[int, int] = Batcher(flush, max_items=10)
    order: list[int] = []
    with trio.fail_after(5):
        results = await submit_all(batcher, range(25), order)
    assert flush.batches == [order[:10], order[10:20], order[20:]]
    assert results == {i: i * 10 for i in range(25)}


async def test_a_window_flushes_as_soon_as_max_items_are_queued() -> None:
    flush = Recorder()
    batcher: Batcher[int, int] = Batcher(flush, max_items=5, window_s=3_600.0)
    with trio.fail_after(5):  # the window is an hour: only a full batch ends it in time
        results = await submit_all(batcher, range(5))
    assert [sorted(b) for b in flush.batches] == [[0, 1, 2, 3, 4]]
    assert results == {i: i * 10 for i in range(5)}


async def test_a_window_gathers_late_submitters_into_the_batch() -> None:
    flush = Recorder()
    batcher: Batcher[int, int] = Batcher(flush, max_items=100, window_s=0.2)
    results: dict[int, int | BaseException] = {}
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: submit_into(batcher, [1], results))
            await until(lambda: batcher.queued >= 1)
            await trio.lowlevel.checkpoint()
            await trio.lowlevel.checkpoint()  # several scheduler rounds later, still inside the window
            nursery.start_soon(lambda: submit_into(batcher, [2], results))
    assert flush.batches == [[1, 2]]
    assert results == {1: 10, 2: 20}


async def test_a_per_item_error_reaches_only_its_submitter() -> None:
    flush = Recorder(fail_items=frozenset({3}))
    batcher: Batcher[int, int] = Batcher(flush)
    with trio.fail_after(5):
        results = await submit_all(batcher, range(6))
    assert isinstance(results.pop(3), KeyError)
    assert results == {i: i * 10 for i in (0, 1, 2, 4, 5)}


async def test_a_flush_error_reaches_every_submitter_of_that_batch_only() -> None:
    calls = 0

    async def flush(items: Sequence[int]) -> list[int | Exception]:
        nonlocal calls
        calls += 1
        await trio.lowlevel.checkpoint()
        if calls == 1:
            raise ConnectionError("the database went away")
        return [i for i in items]

    batcher: Batcher[int, int] = Batcher(flush)
    with trio.fail_after(5):
        first = await submit_all(batcher, range(4))
        second = await submit_all(batcher, range(4, 8))
    assert all(isinstance(r, ConnectionError) for r in first.values()) and len(first) == 4
    # one exception object for the batch, raised by every submitter without growing a traceback each
    depths = {len(_frames(r)) for r in first.values() if isinstance(r, BaseException)}
    assert len(depths) == 1
    assert second == {i: i for i in range(4, 8)}


def _frames(exc: BaseException) -> list[object]:
    frames, tb = [], exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames


async def test_a_flush_answering_the_wrong_number_of_results_fails_its_batch() -> None:
    async def flush(items: Sequence[int]) -> list[int | Exception]:
        await trio.lowlevel.checkpoint()
        return [1]

    batcher: Batcher[int, int] = Batcher(flush)
    with trio.fail_after(5):
        results = await submit_all(batcher, range(3))
    assert all(isinstance(r, RuntimeError) for r in results.values()) and len(results) == 3


async def test_a_cancelled_waiter_is_withdrawn_and_the_others_still_get_their_results() -> None:
    flush = Recorder(hold=True)
    batcher: Batcher[int, int] = Batcher(flush)
    results: dict[int, int | BaseException] = {}
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: submit_into(batcher, [1], results))
            await flush.entered.wait()
            nursery.start_soon(lambda: submit_into(batcher, [2, 3], results))
            cancelled = trio.CancelScope()

            async def doomed() -> None:
                with cancelled:
                    await batcher.submit(99)
                results[99] = -1  # reached only through the cancellation

            nursery.start_soon(doomed)
            await until(lambda: batcher.queued >= 3)
            cancelled.cancel()
            await until(lambda: batcher.queued <= 2)
            flush.hold = False
            flush.release.set()
    assert [sorted(b) for b in flush.batches] == [[1], [2, 3]]  # 99 never reached a flush
    assert results == {1: 10, 2: 20, 3: 30, 99: -1}


async def test_a_cancelled_flusher_completes_the_flush_for_everyone_in_it() -> None:
    flush = Recorder(hold=True)
    batcher: Batcher[int, int] = Batcher(flush, max_items=3, window_s=3_600.0)  # flushes when 3 queued
    results: dict[int, int | BaseException] = {}
    flusher = trio.CancelScope()

    async def lead() -> None:
        with flusher:
            results[1] = await batcher.submit(1)  # the flush took effect: its result is kept
            await trio.lowlevel.checkpoint()  # the cancellation is delivered at the flusher's next checkpoint
            results[0] = -1

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lead)
            await until(lambda: batcher.queued >= 1)  # `lead` queued first: it gathers the batch
            nursery.start_soon(lambda: submit_into(batcher, [2, 3], results))
            await flush.entered.wait()
            assert [sorted(b) for b in flush.batches] == [[1, 2, 3]]
            flusher.cancel()
            for _ in range(3):
                await trio.lowlevel.checkpoint()
            assert results == {}  # the flush is shielded: it is still running for all three
            nursery.start_soon(lambda: submit_into(batcher, [4, 5, 6], results))  # queue behind the flush
            await until(lambda: batcher.queued >= 3)
            flush.hold = False
            flush.release.set()
    assert flusher.cancelled_caught
    assert results == {1: 10, 2: 20, 3: 30, 4: 40, 5: 50, 6: 60}
    assert [sorted(b) for b in flush.batches] == [[1, 2, 3], [4, 5, 6]]


async def test_a_flusher_cancelled_while_gathering_hands_over_to_the_next_submitter() -> None:
    flush = Recorder()
    batcher: Batcher[int, int] = Batcher(flush, window_s=0.2)
    results: dict[int, int | BaseException] = {}
    leader = trio.CancelScope()

    async def doomed() -> None:
        with leader:
            results[0] = await batcher.submit(0)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(doomed)
            await until(lambda: batcher.queued >= 1)
            nursery.start_soon(lambda: submit_into(batcher, [1], results))
            await until(lambda: batcher.queued >= 2)
            leader.cancel()  # inside its gathering window, before it took anything
    assert leader.cancelled_caught
    assert results == {1: 10}
    assert flush.batches == [[1]]  # the withdrawn item never reached a flush


def test_bad_bounds_are_refused() -> None:
    async def flush(items: Sequence[int]) -> list[int | Exception]:
        return list(items)

    with pytest.raises(ValueError, match="max_items"):
        Batcher(flush, max_items=0)
    with pytest.raises(ValueError, match="window_s"):
        Batcher(flush, window_s=-1.0)
