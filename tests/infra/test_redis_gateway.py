"""The Redis gateway: commands and pub/sub from trio, typed outage, recovery without a restart."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import trio

from engine.embedded_redis import EmbeddedRedis, run_embedded_redis
from engine.redis_gateway import RedisCommandError, RedisGateway, RedisMessage, RedisUnavailable
from tests.infra.conftest import wait_until


@pytest.fixture
async def redis_gw(redis_server: EmbeddedRedis, nursery: trio.Nursery) -> RedisGateway:
    gw = RedisGateway(redis_server.url, probe_interval=0.2)
    with trio.fail_after(10):
        await nursery.start(gw.serve)
    return gw


async def test_get_set_with_expiry_and_nx(redis_gw: RedisGateway) -> None:
    key = f"k:{uuid.uuid4().hex}"
    with trio.fail_after(10):
        assert await redis_gw.get(key, timeout=2) is None
        assert await redis_gw.set(key, "v1", timeout=2) is True
        assert await redis_gw.set(key, b"v2", nx=True, timeout=2) is False
        assert await redis_gw.get(key, timeout=2) == b"v1"
        await redis_gw.set(key, b"short", ex=0.05, timeout=2)
        while await redis_gw.get(key, timeout=2) is not None:  # noqa: ASYNC110 -- polling Redis itself
            await trio.sleep(0.02)
    assert redis_gw.health().state == "up"


async def test_wrong_type_is_a_command_error_not_an_outage(redis_gw: RedisGateway) -> None:
    key = f"h:{uuid.uuid4().hex}"
    with trio.fail_after(10):
        await redis_gw.set(key, "x", timeout=2)
        with pytest.raises(RedisCommandError):
            await redis_gw._call("hget", lambda c: c.hget(key, "f"), 2)  # a bug: HGET on a string


async def test_subscriber_receives_what_is_published_after_subscribing(redis_gw: RedisGateway) -> None:
    channel = f"ch:{uuid.uuid4().hex}"
    with trio.fail_after(10):
        async with redis_gw.subscribe(channel) as messages:
            assert await redis_gw.publish(channel, b"one", timeout=2) == 1
            await redis_gw.publish(channel, "two", timeout=2)
            got = [await messages.receive(), await messages.receive()]
        assert await redis_gw.publish(channel, b"after", timeout=2) == 0  # unsubscribed on exit
    assert got == [RedisMessage(channel=channel, data=b"one"), RedisMessage(channel=channel, data=b"two")]


async def test_redis_down_gives_redis_unavailable_then_commands_and_subscriptions_recover(
    server_home: Path, nursery: trio.Nursery
) -> None:
    home = server_home
    received: list[RedisMessage] = []
    with trio.fail_after(60):
        async with run_embedded_redis(home) as server:
            gw = RedisGateway(server.url, probe_interval=0.1, backoff_max=0.2)
            await nursery.start(gw.serve)
            await gw.set("kept", b"v", timeout=2)
            subscribed = trio.Event()

            async def listen() -> None:
                async with gw.subscribe("fanout") as messages:
                    subscribed.set()
                    async for message in messages:
                        received.append(message)

            nursery.start_soon(listen)
            await subscribed.wait()
        # Server stopped: a call fails within its deadline, no hang.
        with pytest.raises(RedisUnavailable):
            await gw.get("kept", timeout=2)
        await wait_until(lambda: gw.health().state != "up", within=10)
        async with run_embedded_redis(home):
            while True:
                try:
                    value = await gw.get("kept", timeout=1)
                    break
                except RedisUnavailable:
                    await trio.sleep(0.05)
            assert value == b"v"
            # The subscription re-subscribes by itself once Redis is back.
            while not received:
                await gw.publish("fanout", b"again", timeout=1)
                await trio.sleep(0.05)
    assert received[0] == RedisMessage(channel="fanout", data=b"again")


async def test_subscription_stream_ends_when_the_gateway_stops(redis_server: EmbeddedRedis) -> None:
    gw = RedisGateway(redis_server.url)
    received: list[RedisMessage] = []
    with trio.fail_after(20):
        async with trio.open_nursery() as serving:
            await serving.start(gw.serve)
            async with gw.subscribe("ends") as messages:
                await gw.publish("ends", b"last", timeout=2)
                received.append(await messages.receive())
                serving.cancel_scope.cancel()
                async for message in messages:
                    received.append(message)
    assert received == [RedisMessage(channel="ends", data=b"last")]
    assert gw.health().state == "down"
