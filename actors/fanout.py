"""The fan-out contract: how actors hand a message to other nodes (Redis pub/sub) without
depending on the gateway.

Owns: `Publish` (``await publish(channel, payload)``) and `PublishFailed`, the one error a
publisher raises when the fan-out could not take a message. The node adapts its Redis gateway to
it (`engine.alert_commands.redis_publisher`); the price feed, the alerter and the scorer take it.
Fan-out is never the source of truth: a failed publish is logged and counted, never retried into
a stall.

May import: the standard library only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

__all__ = ["Publish", "PublishFailed"]

Publish = Callable[[str, bytes], Awaitable[object]]


class PublishFailed(Exception):
    """Raised by a `Publish` callable when the fan-out (Redis) could not take the message."""
