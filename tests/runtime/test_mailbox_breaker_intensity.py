"""Mailboxes (back-pressure, conflation, requeue), the circuit breaker and the intensity window."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from supervisors import BreakerOpen, BreakerPolicy, BreakerState, CircuitBreaker, backoff_delay
from supervisors.intensity import RestartIntensity
from supervisors.mailbox import ConflatingMailbox, Mailbox, MailboxClosed


@attrs.frozen
class Tick:
    mint: str
    price: float


@attrs.frozen
class Command:
    name: str


async def test_tell_waits_while_the_mailbox_is_full_and_resumes_when_drained() -> None:
    box: Mailbox[int] = Mailbox("m", capacity=2)
    box.put_nowait(1)
    box.put_nowait(2)
    with pytest.raises(trio.WouldBlock):
        box.put_nowait(3)
    delivered = trio.Event()

    async def producer() -> None:
        await box.put(3)
        delivered.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        await trio.testing.wait_all_tasks_blocked()
        assert not delivered.is_set()
        assert await box.get_batch(10) == [1, 2]
        with trio.fail_after(5):
            await delivered.wait()
    assert await box.get_batch(10) == [3]


async def test_conflating_mailbox_keeps_the_latest_tick_per_key_and_every_command() -> None:
    def key(msg: object) -> str | None:
        return msg.mint if isinstance(msg, Tick) else None

    box: ConflatingMailbox[object] = ConflatingMailbox("prices", key, capacity=3)
    box.put_nowait(Tick("SOL", 1.0))
    box.put_nowait(Command("a"))
    box.put_nowait(Tick("SOL", 2.0))
    box.put_nowait(Tick("BONK", 0.1))
    box.put_nowait(Tick("SOL", 3.0))  # a known key never needs room
    with pytest.raises(trio.WouldBlock):
        box.put_nowait(Command("b"))  # but a command does, and is never dropped
    assert await box.get_batch(10) == [Tick("SOL", 3.0), Command("a"), Tick("BONK", 0.1)]


async def test_requeued_messages_go_back_to_the_front_and_lose_to_newer_ticks() -> None:
    box: ConflatingMailbox[Tick] = ConflatingMailbox("p", lambda t: t.mint)
    box.put_nowait(Tick("SOL", 5.0))
    box.requeue_front([Tick("SOL", 4.0), Tick("JUP", 1.0)])
    assert await box.get_batch(10) == [Tick("JUP", 1.0), Tick("SOL", 5.0)]
    fifo: Mailbox[int] = Mailbox("f")
    fifo.put_nowait(3)
    fifo.requeue_front([1, 2])
    assert await fifo.get_batch(10) == [1, 2, 3]


async def test_a_closed_mailbox_refuses_delivery_and_returns_what_was_queued() -> None:
    box: Mailbox[int] = Mailbox("gone")
    box.put_nowait(1)
    assert box.close() == [1]
    with pytest.raises(MailboxClosed, match="'gone'"):
        box.put_nowait(2)


class FakeClock:
    """A clock the test advances by hand (time is an input, not something to sleep through)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_breaker(**policy: float) -> tuple[CircuitBreaker, FakeClock, list[tuple[str, str]]]:
    clock = FakeClock()
    changes: list[tuple[str, str]] = []
    breaker = CircuitBreaker(
        "rpc",
        BreakerPolicy(**policy),  # type: ignore[arg-type]
        clock=clock,
        on_change=lambda _n, old, new: changes.append((old.value, new.value)),
    )
    return breaker, clock, changes


def test_breaker_opens_after_consecutive_failures_and_half_opens_after_the_recovery_wait() -> None:
    breaker, clock, changes = make_breaker(consecutive_failures=3, recovery_s=30.0, min_calls=100)
    for _ in range(3):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(BreakerOpen, match="'rpc' is open"):
        breaker.before_call()
    clock.now += 30.0
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.before_call()  # the one trial call
    with pytest.raises(BreakerOpen):
        breaker.before_call()  # no second trial while the first is out
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_breaker_opens_on_failure_rate_within_the_window_and_reopens_on_a_failed_trial() -> None:
    breaker, clock, _ = make_breaker(consecutive_failures=10, failure_rate=0.8, min_calls=5,
                                     window_s=600.0, recovery_s=60.0)
    for ok in [False, True, False, False, False]:  # 4 of 5 failed, never 10 in a row
        breaker.before_call()
        breaker.record_success() if ok else breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.now += 60.0
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN


def test_breaker_forgets_outcomes_older_than_its_window() -> None:
    breaker, clock, _ = make_breaker(consecutive_failures=10, failure_rate=0.8, min_calls=5,
                                     window_s=600.0)
    for _ in range(4):
        breaker.record_failure()
        breaker.record_success()  # keep the consecutive count low
    clock.now += 601.0
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED  # one failure inside the window is not a rate


async def test_breaker_guard_counts_exceptions_but_not_cancellation() -> None:
    breaker, _, _ = make_breaker(consecutive_failures=1)
    with trio.move_on_after(0):
        async with breaker.guard():
            await trio.sleep(1)
    assert breaker.state is BreakerState.CLOSED
    with pytest.raises(OSError):
        async with breaker.guard():
            raise OSError("connection refused")
    assert breaker.state is BreakerState.OPEN


@given(
    max_restarts=st.integers(0, 5),
    period=st.floats(0.5, 20.0),
    gaps=st.lists(st.floats(0.0, 10.0), min_size=1, max_size=40),
)
def test_intensity_exceeds_exactly_when_more_than_max_restarts_fall_inside_the_period(
    max_restarts: int, period: float, gaps: list[float]
) -> None:
    window = RestartIntensity(max_restarts, period)
    now = 0.0
    stamps: list[float] = []
    for gap in gaps:
        now += gap
        stamps.append(now)
        in_window = [t for t in stamps if t > now - period]
        assert window.record(now) == (len(in_window) > max_restarts)
        assert window.used(now) == len(in_window)


@given(attempt=st.integers(0, 200), jitter=st.floats(0.0, 1.0))
def test_backoff_delay_stays_between_its_base_and_the_jittered_ceiling(attempt: int, jitter: float) -> None:
    delay = backoff_delay(attempt, min_s=0.05, max_s=5.0, jitter=jitter)
    base = min(5.0, 0.05 * 2.0**attempt)
    assert base <= delay <= base * (1 + jitter)
