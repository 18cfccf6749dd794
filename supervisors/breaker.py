"""Circuit breaker: closed / open / half-open, for any dependency of any actor.

It contains an outage: while a dependency keeps failing, callers fail fast with `BreakerOpen`
instead of piling up on deadlines and driving a restart storm.

- CLOSED: calls pass. It opens after `consecutive_failures` failures in a row, or when at least
  `min_calls` calls fell inside the last `window_s` seconds and the failure rate among them reached
  `failure_rate`.
- OPEN: calls are refused until `recovery_s` has passed since it opened.
- HALF_OPEN: up to `half_open_calls` trial calls pass; a success closes it, a failure reopens it.

The breaker is synchronous and owned by one actor (or shared within one trio thread); the clock is a
parameter so that time can be advanced in tests without sleeping.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import attrs


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    @property
    def gauge_value(self) -> int:
        return {"closed": 0, "half_open": 1, "open": 2}[self.value]


class BreakerOpen(Exception):
    """A call was refused because the breaker for its dependency is open."""

    def __init__(self, name: str, retry_in_s: float) -> None:
        super().__init__(f"circuit breaker {name!r} is open; next trial in {retry_in_s:.1f}s")
        self.name = name
        self.retry_in_s = retry_in_s


@attrs.frozen
class BreakerPolicy:
    consecutive_failures: int = 3
    failure_rate: float = 0.8
    min_calls: int = 5
    window_s: float = 600.0
    recovery_s: float = 30.0
    half_open_calls: int = 1

    def __attrs_post_init__(self) -> None:
        if self.consecutive_failures < 1 or self.min_calls < 1 or self.half_open_calls < 1:
            raise ValueError("breaker thresholds must be >= 1")
        if not 0.0 < self.failure_rate <= 1.0:
            raise ValueError("failure_rate must be in (0, 1]")
        if self.window_s <= 0 or self.recovery_s < 0:
            raise ValueError("window_s must be > 0 and recovery_s >= 0")


StateListener = Callable[[str, BreakerState, BreakerState], None]


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        policy: BreakerPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: StateListener | None = None,
    ) -> None:
        self.name = name
        self.policy = policy or BreakerPolicy()
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._failures = 0  # the failures among _outcomes: kept, not recounted on every outcome
        self._opened_at = 0.0
        self._trials_in_flight = 0

    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker whose recovery wait is over reads as half-open)."""
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.policy.recovery_s:
            self._move(BreakerState.HALF_OPEN)
        return self._state

    def before_call(self) -> None:
        """Raise `BreakerOpen` unless a call may go ahead now; pair with `record_*`."""
        state = self.state
        if state is BreakerState.OPEN:
            raise BreakerOpen(self.name, self.policy.recovery_s - (self._clock() - self._opened_at))
        if state is BreakerState.HALF_OPEN:
            if self._trials_in_flight >= self.policy.half_open_calls:
                raise BreakerOpen(self.name, 0.0)
            self._trials_in_flight += 1

    def record_success(self) -> None:
        self._consecutive = 0
        self._note(ok=True)
        if self._state is BreakerState.HALF_OPEN:
            self._trials_in_flight = 0
            self._outcomes.clear()
            self._failures = 0
            self._move(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._consecutive += 1
        self._note(ok=False)
        if self._state is BreakerState.HALF_OPEN:
            self._trials_in_flight = 0
            self._open()
        elif self._state is BreakerState.CLOSED and self._should_open():
            self._open()

    @asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        """`async with breaker.guard(): await call()` -- an exception inside counts as a failure.

        Cancellation is not the dependency's fault and counts as neither outcome.
        """
        self.before_call()
        try:
            yield
        except Exception:
            self.record_failure()
            raise
        except BaseException:
            if self._state is BreakerState.HALF_OPEN:
                self._trials_in_flight = max(0, self._trials_in_flight - 1)
            raise
        self.record_success()

    def _note(self, *, ok: bool) -> None:
        now = self._clock()
        self._outcomes.append((now, ok))
        self._failures += not ok
        horizon = now - self.policy.window_s
        while self._outcomes and self._outcomes[0][0] < horizon:
            self._failures -= not self._outcomes.popleft()[1]

    def _should_open(self) -> bool:
        if self._consecutive >= self.policy.consecutive_failures:
            return True
        calls = len(self._outcomes)
        if calls < self.policy.min_calls:
            return False
        return self._failures / calls >= self.policy.failure_rate

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._move(BreakerState.OPEN)

    def _move(self, new: BreakerState) -> None:
        old, self._state = self._state, new
        if old is not new and self._on_change is not None:
            self._on_change(self.name, old, new)
