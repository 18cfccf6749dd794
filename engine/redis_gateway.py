"""The Redis gateway: the one place the engine talks to Redis (redis-py's asyncio client over
trio-asyncio).

Owns: the trio-asyncio loop the client runs on, the client and its connection pool, the health
probe (PING), reconnection with backoff, subscriptions pumped into trio memory channels, and the
translation of redis-py errors into `RedisUnavailable` / `RedisCommandError`.

Failure it contains: Redis down, restarting, slow or dropping connections. Every call has a
deadline and ends by then with a result or a typed error; nothing hangs and no redis-py, OSError
or asyncio exception leaves this module. Redis is coordination and fan-out, never the source of
truth (DESIGN section 5): callers treat `RedisUnavailable` as "keep going alone". A subscription
survives an outage: its pump retries with backoff and redis-py re-subscribes on reconnect;
messages published during the outage are lost (that is Redis pub/sub).

Other trio tasks reach the loop through the bridge in `engine.asyncio_gateway`, shared with the
Postgres gateway: any trio task may call any method once `serve()` has started.

May import: the standard library, trio, trio_asyncio, redis, attrs, `supervisors.backoff`,
`engine.asyncio_gateway` (the bridge).
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final, TypeVar

import attrs
import redis.asyncio as aioredis
import redis.exceptions
import trio
import trio_asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from engine.asyncio_gateway import AsyncioGateway, open_gateway_loop
from supervisors.backoff import backoff_delay

__all__ = [
    "RedisCommandError",
    "RedisError",
    "RedisGateway",
    "RedisMessage",
    "RedisTimeout",
    "RedisUnavailable",
]

_log = logging.getLogger("xorj.redis_gateway")

T = TypeVar("T")

# How long one pump read waits for a message before looping (so cancellation and health are seen).
_PUMP_WAIT_S: Final = 1.0


class RedisError(Exception):
    """Base of every error the Redis gateway raises."""


class RedisUnavailable(RedisError):
    """Redis cannot be reached now (not connected, connection lost, server down or loading)."""


class RedisTimeout(RedisUnavailable):
    """The call did not complete within its deadline; a write may or may not have happened."""


class RedisCommandError(RedisError):
    """Redis answered with an error (wrong type, bad arguments, ...): a bug, not an outage."""


@attrs.frozen
class RedisMessage:
    """One pub/sub message as delivered to a subscriber."""

    channel: str
    data: bytes


_UNAVAILABLE: Final = (
    redis.exceptions.ConnectionError,  # includes BusyLoadingError, AuthenticationError
    redis.exceptions.TimeoutError,
    OSError,
    TimeoutError,
    EOFError,
)


def _translate(exc: Exception) -> RedisError | None:
    if isinstance(exc, _UNAVAILABLE):
        return RedisUnavailable(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, redis.exceptions.RedisError):
        return RedisCommandError(f"{type(exc).__name__}: {exc}")
    return None


class RedisGateway(AsyncioGateway[aioredis.Redis]):
    """One per process. Start with ``await nursery.start(gateway.serve)``; call from any task."""

    unavailable = RedisUnavailable
    timeout_error = RedisTimeout

    def __init__(
        self,
        url: str,
        *,
        name: str = "redis",
        max_connections: int = 32,
        connect_timeout: float = 2.0,
        socket_timeout: float = 10.0,
        probe_interval: float = 1.0,
        probe_timeout: float = 1.0,
        backoff_min: float = 0.05,
        backoff_max: float = 5.0,
        backoff_jitter: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(url, name=name, backoff_min=backoff_min, backoff_max=backoff_max,
                         backoff_jitter=backoff_jitter, rng=rng)
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        # A safety net under our own deadlines, for tasks abandoned at a deadline.
        self._socket_timeout = socket_timeout
        self._probe_interval = probe_interval
        self._probe_timeout = probe_timeout

    def _translate(self, exc: Exception) -> Exception | None:
        return _translate(exc)

    # -- the API -----------------------------------------------------------------------------

    async def ping(self, *, timeout: float) -> None:
        await self._call("ping", lambda c: c.ping(), timeout)

    async def get(self, key: str, *, timeout: float) -> bytes | None:
        value: bytes | str | None = await self._call("get", lambda c: c.get(key), timeout)
        return value.encode() if isinstance(value, str) else value

    async def set(
        self, key: str, value: bytes | str, *, timeout: float, ex: float | None = None, nx: bool = False
    ) -> bool:
        """SET with optional expiry (seconds, sub-second allowed) and NX; True if it was set."""
        px = None if ex is None else max(1, round(ex * 1000))
        result: Any = await self._call("set", lambda c: c.set(key, value, px=px, nx=nx), timeout)
        return bool(result)

    async def delete(self, key: str, *, timeout: float) -> int:
        result: int = await self._call("delete", lambda c: c.delete(key), timeout)
        return result

    async def publish(self, channel: str, message: bytes | str, *, timeout: float) -> int:
        """Publish; return how many subscribers received it."""
        result: int = await self._call("publish", lambda c: c.publish(channel, message), timeout)
        return result

    @asynccontextmanager
    async def subscribe(
        self, channel: str, *, buffer: int = 256, timeout: float = 5.0
    ) -> AsyncIterator[trio.MemoryReceiveChannel[RedisMessage]]:
        """Subscribe to ``channel``; yield a receive channel of `RedisMessage`.

        The stream ends (the channel closes) when the gateway stops; it survives Redis outages.

        On entry the subscription is confirmed by the server (a message published after entry is
        delivered), or `RedisUnavailable` is raised by ``timeout``. The buffer is bounded: a slow
        reader back-pressures the pump, and Redis buffers on its side.
        """
        loop, client = self._loop, self._client
        if loop is None or client is None:
            raise RedisUnavailable(f"{self._name}: not connected ({self._state})")
        pubsub = client.pubsub()
        try:
            with trio.fail_after(timeout):
                await self._on_loop(loop, pubsub.subscribe(channel), timeout, "subscribe")
                while True:
                    first = await self._on_loop(
                        loop, pubsub.get_message(timeout=timeout), timeout + 1.0, "subscribe confirmation"
                    )
                    if first is not None and first.get("type") == "subscribe":
                        break
        except trio.TooSlowError:
            await self._close_pubsub(loop, pubsub)
            raise RedisTimeout(
                f"{self._name}: subscribe to {channel!r} not confirmed within {timeout:g}s"
            ) from None
        except BaseException:
            await self._close_pubsub(loop, pubsub)
            raise
        send, receive = trio.open_memory_channel[RedisMessage](buffer)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._pump, loop, pubsub, channel, send)
                try:
                    async with receive:
                        yield receive
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            await self._close_pubsub(loop, pubsub)

    async def _pump(
        self,
        loop: trio_asyncio.TrioEventLoop,
        pubsub: aioredis.client.PubSub,
        channel: str,
        send: trio.MemorySendChannel[RedisMessage],
    ) -> None:
        attempt = 0
        async with send:
            while True:
                if self._loop is not loop:
                    # The gateway stopped (its loop is gone): end the stream; the reader sees
                    # the channel close and its supervisor decides what comes next.
                    _log.info(
                        "subscription ended: gateway stopped",
                        extra={"gateway": self._name, "channel": channel},
                    )
                    return
                try:
                    raw = await self._on_loop(
                        loop,
                        pubsub.get_message(timeout=_PUMP_WAIT_S),
                        _PUMP_WAIT_S + self._probe_timeout + 1.0,
                        "subscription read",
                    )
                except RedisUnavailable as exc:
                    delay = backoff_delay(attempt, rng=self._rng, **self._backoff)
                    _log.warning(
                        "subscription read failed; retrying",
                        extra={
                            "gateway": self._name,
                            "channel": channel,
                            "error": str(exc),
                            "retry_in_s": round(delay, 3),
                        },
                    )
                    attempt += 1
                    await trio.sleep(delay)
                    continue
                attempt = 0
                if raw is None or raw.get("type") != "message":
                    continue
                raw_channel = raw["channel"]
                data = raw["data"]
                await send.send(
                    RedisMessage(
                        channel=raw_channel.decode() if isinstance(raw_channel, bytes) else str(raw_channel),
                        data=data if isinstance(data, bytes) else str(data).encode(),
                    )
                )

    async def _close_pubsub(self, loop: trio_asyncio.TrioEventLoop, pubsub: aioredis.client.PubSub) -> None:
        if self._loop is not loop:
            return  # the loop shut down and took the pubsub connection with it
        with trio.CancelScope(shield=True):
            try:
                await self._on_loop(loop, pubsub.aclose(), 2.0, "unsubscribe")  # type: ignore[no-untyped-call, unused-ignore]
            except RedisError as exc:
                _log.info(
                    "pubsub close failed; connection dropped",
                    extra={"gateway": self._name, "error": str(exc)},
                )

    # -- the life ----------------------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect (PING with backoff until it answers), report started, then probe until
        cancelled. redis-py reconnects per command, so an outage needs no pool rebuild."""
        if self._loop is not None:
            raise RuntimeError(f"{self._name}: serve() is already running")
        self._serving()
        async with open_gateway_loop(self._name) as loop:
            self._loop = loop
            try:
                self._client = await self._on_loop(loop, self._make_client(), self._connect_timeout, "create")
                attempt = 0
                while True:
                    started_at = trio.current_time()
                    try:
                        await self._call("ping", lambda c: c.ping(), self._probe_timeout)
                    except RedisUnavailable as exc:
                        self._state = "connecting"
                        await self._retry_later(attempt, exc)
                        attempt += 1
                        continue
                    self._latency_ms = (trio.current_time() - started_at) * 1000.0
                    break
                _log.info("redis connected", extra={"gateway": self._name, "url": self.redacted_url})
                task_status.started()
                while True:
                    await trio.sleep(self._probe_interval)
                    started_at = trio.current_time()
                    try:
                        await self._call("health probe", lambda c: c.ping(), self._probe_timeout)
                    except RedisUnavailable:
                        continue
                    self._latency_ms = (trio.current_time() - started_at) * 1000.0
            finally:
                self._stopping()
                client, self._client = self._client, None
                self._state = "down"
                self._last_error = "gateway stopped"
                if client is not None:
                    with trio.CancelScope(shield=True):
                        try:
                            await self._on_loop(loop, client.aclose(), 2.0, "close")
                        except RedisError as exc:
                            _log.info("redis close failed", extra={"gateway": self._name, "error": str(exc)})
                self._loop = None

    async def _make_client(self) -> aioredis.Redis:
        # No retries inside redis-py: our deadline and our backoff decide; one place, one policy.
        return aioredis.Redis.from_url(
            self._url,
            max_connections=self._max_connections,
            socket_connect_timeout=self._connect_timeout,
            socket_timeout=self._socket_timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
