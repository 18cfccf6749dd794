"""The token bucket in virtual time (trio's autojump clock): no sockets, no wall clock."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors.rate_limit import RateLimited, TokenBucket


async def test_a_burst_is_granted_at_once_and_then_tokens_come_at_the_rate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bucket = TokenBucket(rate_per_s=2.0, burst=3)
    start = trio.current_time()
    for _ in range(3):
        await bucket.acquire()
    assert trio.current_time() == start
    await bucket.acquire()
    assert trio.current_time() - start == pytest.approx(0.5)
    stats = bucket.stats
    assert (stats.granted, stats.waited, stats.refused) == (4, 1, 0)


async def test_a_token_that_cannot_come_before_the_deadline_is_refused_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bucket = TokenBucket(rate_per_s=1.0, burst=1)
    await bucket.acquire()
    start = trio.current_time()
    with trio.move_on_after(0.5), pytest.raises(RateLimited) as caught:
        await bucket.acquire()
    assert trio.current_time() == start  # it did not sleep until the deadline to say no
    assert caught.value.needed_wait_s == pytest.approx(1.0)
    assert bucket.stats.refused == 1


async def test_waiters_are_served_in_arrival_order(autojump_clock: trio.testing.MockClock) -> None:
    bucket = TokenBucket(rate_per_s=10.0, burst=1)
    await bucket.acquire()
    order: list[int] = []

    async def take(i: int) -> None:
        await bucket.acquire()
        order.append(i)

    async with trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(take, i)
            await trio.testing.wait_all_tasks_blocked()
    assert order == [0, 1, 2, 3, 4]
    assert bucket.try_acquire() is False


async def test_a_refund_gives_the_token_back(autojump_clock: trio.testing.MockClock) -> None:
    bucket = TokenBucket(rate_per_s=0.001, burst=2)
    assert bucket.try_acquire(2) is True
    assert bucket.try_acquire() is False
    bucket.refund()
    assert bucket.try_acquire() is True
    assert bucket.stats.granted == 2
