"""A token bucket: the request rate one RPC provider grants us, shared by every caller of one client.

It owns the bucket's arithmetic and its accounting (tokens granted, callers that had to wait,
callers refused). It contains one failure: a burst of callers exceeding the provider's quota,
which would otherwise come back as HTTP 429s and open the endpoint's breaker.

Waiting for a token counts against the caller's deadline: `acquire` waits inside whatever
`trio.fail_after` / `move_on_after` scope the caller is in, and when the token cannot arrive
before that deadline it refuses at once (`RateLimited`) instead of sleeping until the deadline
fires -- a caller learns "no capacity" without burning its whole budget.

Waiters are served first-come first-served (a `trio.Lock` is fair), so a stream of new callers
cannot starve an early one. The clock is a parameter so tests can drive it.

May import: the standard library, trio, attrs.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import trio

# Refills are float arithmetic: a bucket that should hold exactly one token may hold 0.9999999...,
# and waiting for the missing 1e-16 of a token would spin without the clock moving.
_EPSILON = 1e-9


class RateLimited(Exception):
    """No token can be had before the caller's deadline."""

    def __init__(self, needed_wait_s: float, remaining_s: float) -> None:
        super().__init__(
            f"rate limit: next token in {needed_wait_s:.3f}s, caller's deadline in {remaining_s:.3f}s"
        )
        self.needed_wait_s = needed_wait_s
        self.remaining_s = remaining_s


@attrs.frozen
class BucketStats:
    granted: int  # tokens handed out
    waited: int  # acquisitions that had to sleep for their token
    refused: int  # acquisitions refused because the token would come after the deadline
    tokens: float  # tokens available now


class TokenBucket:
    def __init__(
        self, rate_per_s: float, burst: int, *, clock: Callable[[], float] | None = None
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError(f"rate_per_s must be > 0 and burst >= 1, got {rate_per_s}, {burst}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock or trio.current_time
        self._tokens = float(burst)
        self._stamp: float | None = None
        self._lock = trio.Lock()
        self._granted = 0
        self._waited = 0
        self._refused = 0

    def _refill(self) -> None:
        now = self._clock()
        if self._stamp is not None:
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate_per_s)
        self._stamp = now

    def try_acquire(self, count: int = 1) -> bool:
        """Take `count` tokens now if they are there (never waits, never counts as refused)."""
        if self._lock.locked():
            return False  # someone is already queued: do not jump the line
        self._refill()
        if self._tokens >= count - _EPSILON:
            self._tokens = max(0.0, self._tokens - count)
            self._granted += count
            return True
        return False

    async def acquire(self, count: int = 1) -> None:
        """Take `count` tokens, waiting for them within the caller's deadline.

        Raises `RateLimited` at once when they cannot arrive before that deadline.
        """
        if not 1 <= count <= self.burst:
            raise ValueError(f"count must be in [1, {self.burst}], got {count}")
        async with self._lock:
            waited = False
            while True:
                self._refill()
                if self._tokens >= count - _EPSILON:
                    self._tokens = max(0.0, self._tokens - count)
                    self._granted += count
                    self._waited += waited
                    return
                wait = (count - self._tokens) / self.rate_per_s
                remaining = trio.current_effective_deadline() - trio.current_time()
                if wait > remaining:
                    self._refused += 1
                    raise RateLimited(wait, remaining)
                waited = True
                await trio.sleep(wait)

    def refund(self, count: int = 1) -> None:
        """Give back tokens taken for a request that was not sent after all."""
        self._refill()
        self._tokens = min(float(self.burst), self._tokens + count)
        self._granted -= count

    @property
    def stats(self) -> BucketStats:
        self._refill()
        return BucketStats(self._granted, self._waited, self._refused, self._tokens)
