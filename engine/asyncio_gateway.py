"""The bridge both asyncio-only gateways share: asyncio runs here, behind trio-asyncio, and nowhere else.

`run_on_aio_loop` lets *any* trio task of the process run a coroutine on the gateway's loop: the
coroutine becomes an asyncio task on that loop and the caller waits for it on a `trio.Event`.
Unlike trio-asyncio's `loop.run_aio_coroutine`, the wait does not follow the asyncio task into its
cleanup: at the deadline the task is cancelled and left to finish on the loop, and the caller gets
its timeout at once (driver cleanup after a cancelled call talks to the server, which is exactly
what is slow in an outage).

`AsyncioGateway` is what the Postgres and Redis gateways have in common: the loop and the driver
client (`C`) they run on, the health record, and `_call`, which fails fast with the gateway's
"unavailable" error while it is not connected, turns every driver error into the gateway's typed
errors, and keeps the health state in step with what calls see.

May import: the standard library, trio, trio_asyncio, `engine.config`, `engine.http_server`,
`supervisors.backoff`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Generic, Literal, TypeVar

import trio
import trio_asyncio

from engine.config import redact_url
from engine.http_server import DependencyHealth
from supervisors.backoff import backoff_delay

_log = logging.getLogger("xorj.gateway")

T = TypeVar("T")
C = TypeVar("C")
GatewayState = Literal["up", "down", "connecting"]


def _consume_outcome(fut: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned task's outcome so asyncio does not log 'exception never retrieved'."""
    if not fut.cancelled():
        fut.exception()


@asynccontextmanager
async def open_gateway_loop(name: str) -> AsyncIterator[trio_asyncio.TrioEventLoop]:
    """trio-asyncio's loop for one gateway, with an exception handler that logs what no one
    retrieved (a driver's error in the cleanup of a cancelled connect, say) instead of letting it
    end the gateway's serve loop."""
    async with trio_asyncio.open_loop() as loop:
        def stray(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            _log.warning("asyncio error on the gateway loop", extra={
                "gateway": name, "detail": context.get("message"), "error": repr(context.get("exception"))})

        loop.set_exception_handler(stray)
        yield loop


async def run_on_aio_loop(loop: trio_asyncio.TrioEventLoop, coro: Awaitable[T], timeout: float) -> T:
    """Run an asyncio coroutine as a task on ``loop`` from any trio task; return its result.

    Raises `trio.TooSlowError` at ``timeout`` (the asyncio task is cancelled and left to finish
    its cleanup on the loop: the caller never waits for it), `asyncio.CancelledError` if the loop
    shut down under the task, or whatever the coroutine raised.
    """
    fut: asyncio.Future[T] = asyncio.ensure_future(coro, loop=loop)
    done = trio.Event()
    fut.add_done_callback(lambda _: done.set())
    try:
        with trio.move_on_after(timeout):
            await done.wait()
    finally:
        if not fut.done():
            # Deadline or caller cancelled: abandon the task to finish its cleanup on the loop.
            fut.cancel()
            fut.add_done_callback(_consume_outcome)
    if not fut.done():
        raise trio.TooSlowError
    return fut.result()


class AsyncioGateway(Generic[C]):
    """Subclasses set `unavailable` and `timeout_error` and implement `_translate`."""

    unavailable: type[Exception]
    timeout_error: type[Exception]

    def __init__(
        self,
        url: str,
        *,
        name: str,
        backoff_min: float,
        backoff_max: float,
        backoff_jitter: float,
        rng: random.Random | None,
    ) -> None:
        self._url = url
        self._name = name
        self._backoff = {"min_s": backoff_min, "max_s": backoff_max, "jitter": backoff_jitter}
        self._rng = rng
        self._loop: trio_asyncio.TrioEventLoop | None = None
        self._client: C | None = None
        self._state_now: GatewayState = "connecting"
        self._outage = False  # an outage was announced and has not ended
        self._silent = False  # the gateway is stopping: its going down is not an outage
        self._latency_ms: float | None = None
        self._last_error: str | None = None
        # Told of every outage (False, the error) and of the recovery after it (True, None); not of
        # the first connect, nor of the gateway's own stop. The node turns these into alerts.
        self.watch: Callable[[bool, str | None], None] | None = None

    @property
    def _state(self) -> GatewayState:
        return self._state_now

    @_state.setter
    def _state(self, value: GatewayState) -> None:
        was_up, self._state_now = self._state_now == "up", value
        if value == "up" and self._outage:
            self._outage = False
            if self.watch is not None:
                self.watch(True, None)
        elif was_up and value != "up" and not self._silent:
            self._outage = True
            if self.watch is not None:
                self.watch(False, self._last_error)

    def _serving(self) -> None:
        """`serve` begins (again, after a restart): state changes count as outages once more."""
        self._silent = False

    def _stopping(self) -> None:
        """`serve` is ending: what follows is the gateway's own stop, not an outage."""
        self._silent = True

    @property
    def redacted_url(self) -> str:
        return redact_url(self._url)

    @property
    def connected(self) -> bool:
        return self._client is not None

    def health(self) -> DependencyHealth:
        return DependencyHealth(
            name=self._name, state=self._state, latency_ms=self._latency_ms, last_error=self._last_error
        )

    def _translate(self, exc: Exception) -> Exception | None:
        """The gateway's typed error for a driver exception, or None if it is not one (a bug)."""
        raise NotImplementedError

    async def _retry_later(self, attempt: int, error: Exception) -> None:
        """Log a failed connect and wait out its backoff before the next attempt."""
        self._last_error = str(error)
        delay = backoff_delay(attempt, rng=self._rng, **self._backoff)
        _log.warning(
            f"{self._name} connect failed; retrying",
            extra={"gateway": self._name, "url": self.redacted_url, "attempt": attempt,
                   "retry_in_s": round(delay, 3), "error": str(error)},
        )
        await trio.sleep(delay)

    def _mark_down(self, error: Exception) -> None:
        if self._state == "up":
            _log.warning(f"{self._name} unavailable", extra={"gateway": self._name, "error": str(error)})
        self._last_error = str(error)
        self._state = "down" if self._client is not None else "connecting"

    async def _on_loop(
        self, loop: trio_asyncio.TrioEventLoop, coro: Awaitable[T], timeout: float, what: str
    ) -> T:
        """`run_on_aio_loop` with this gateway's error translation."""
        try:
            return await run_on_aio_loop(loop, coro, timeout)
        except trio.TooSlowError:
            raise self.timeout_error(f"{self._name}: {what} did not complete within {timeout:g}s") from None
        except asyncio.CancelledError:
            # Not our deadline and not our caller: the loop is shutting down under us.
            raise self.unavailable(f"{self._name}: gateway stopped during {what}") from None
        except Exception as exc:
            typed = self._translate(exc)
            if typed is None:
                raise
            raise typed from exc

    async def _call(self, what: str, fn: Callable[[C], Awaitable[T]], timeout: float) -> T:
        loop, client = self._loop, self._client
        if loop is None or client is None:
            raise self.unavailable(
                f"{self._name}: not connected ({self._state}; last error: {self._last_error})"
            )
        try:
            result = await self._on_loop(loop, fn(client), timeout, what)
        except self.unavailable as exc:
            self._mark_down(exc)
            raise
        self._state = "up"
        return result
