"""The price feed: prices of the real local chain's price API land in the shared book, in
`token_prices` and on Redis; the book ages them; garbage, a dead port and a silent server are
contained (last good price kept, alerts raised once per transition, no poll outlives its deadline).

Real parts: the market node (`python -m localnet --genesis market`, its Price API v3), an embedded
PostgreSQL, an embedded Redis, the feed under a real supervisor. The scripted server of the
garbage / outage / silence tests is a stand-in speaking Price API v3 over real HTTP (see
tests/prices/conftest.py): the local chain's API cannot be made to misbehave.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time

import pytest
import trio
from solders.keypair import Keypair

from actors.price_feed import (
    PRICES_CHANNEL,
    Price,
    PriceBook,
    PriceFeedSettings,
    PriceSubscribers,
    PricesUpdated,
    PublishFailed,
    conflate_prices,
)
from engine.embedded_redis import EmbeddedRedis
from engine.postgres_gateway import PostgresGateway
from engine.redis_gateway import RedisGateway, RedisUnavailable
from supervisors import BreakerPolicy, BreakerState, Registry
from supervisors.mailbox import ConflatingMailbox, Mailbox
from tests.infra.conftest import db_url, gateway, pg_server, redis_server, schema, xorj_home  # noqa: F401
from tests.localnet.conftest import LocalnetNode
from tests.prices.conftest import (
    AlertLog,
    FakeClock,
    PriceApiStandIn,
    feed_running,
    metric,
    mints_of,
    serving,
    v3,
    v3_entry,
    wait_until,
)
from tests.trades.conftest import market_node  # noqa: F401


def new_mint() -> str:
    return str(Keypair().pubkey())


def settings_for(url: str, *mints: str, **overrides: object) -> PriceFeedSettings:
    base: dict[str, object] = {"url": url, "mints": mints, "poll_s": 0.02, "stale_s": 30.0,
                               "max_jump_pct": 50.0, "timeout_s": 2.0, "backoff_max_s": 0.05}
    return PriceFeedSettings(**{**base, **overrides})  # type: ignore[arg-type]


@pytest.fixture
async def redis_gw(redis_server: EmbeddedRedis, nursery: trio.Nursery) -> RedisGateway:  # noqa: F811
    gw = RedisGateway(redis_server.url, probe_interval=0.2)
    with trio.fail_after(10):
        await nursery.start(gw.serve)
    return gw


# ---------------------------------------------------------------------------------------- the chain


async def test_prices_of_the_local_chain_land_in_the_book_in_token_prices_and_on_redis(
    market_node: LocalnetNode, schema: PostgresGateway, redis_gw: RedisGateway,  # noqa: F811
) -> None:
    manifest = market_node.manifest
    mints = tuple(mints_of(manifest))
    usdc = manifest["mints"]["USDC"]["mint"]
    book = PriceBook(stale_after_s=30.0)
    alerts = AlertLog()

    async def publish(channel: str, data: bytes) -> None:  # how the node hands the Redis gateway in
        try:
            await redis_gw.publish(channel, data, timeout=1.0)
        except RedisUnavailable as exc:
            raise PublishFailed(str(exc)) from exc

    settings = settings_for(manifest["priceUrl"], *mints, poll_s=0.2, stale_s=30.0, backoff_max_s=1.0)
    async with redis_gw.subscribe(PRICES_CHANNEL) as fanout, \
            feed_running(settings, book, alerts, db=schema, publish=publish) as run:
        with trio.fail_after(20):
            note = await run.inbox.receive()
            fanned = json.loads((await fanout.receive()).data)
        assert isinstance(note, PricesUpdated)
        at = dt.datetime.fromtimestamp(note.at, dt.UTC)

        async def stored() -> list[dict[str, object]]:
            return await schema.fetch("SELECT mint, usd_price FROM token_prices WHERE at = $1", at, timeout=5)

        with trio.fail_after(10):
            while not await stored():  # noqa: ASYNC110 -- the feed stores right after it notifies
                await trio.sleep(0.02)
        rows = await stored()

    assert set(note.prices) == set(mints)  # every mint of the manifest has a price on this chain
    assert note.prices[usdc] == 1.0
    for mint in mints:
        price = book.fresh(mint)
        assert price is not None and price.usd > 0 and price.mint == mint
    assert {r["mint"]: float(r["usd_price"]) for r in rows} == pytest.approx(note.prices, abs=1e-12)  # type: ignore[arg-type]
    assert set(fanned["prices"]) == set(mints) and all(p > 0 for p in fanned["prices"].values())
    assert not alerts.of("price_rejected") and not alerts.of("dependency_down")


# ---------------------------------------------------------------------------------------- the book


def test_the_book_ages_a_price_and_fresh_turns_none_after_stale_after_s() -> None:
    clock = FakeClock()
    book = PriceBook(stale_after_s=5.0, clock=clock)
    assert (book.get("M"), book.fresh("M"), book.age_s("M"), book.is_stale("M")) == (None, None, None, True)

    price = Price("M", 2.0, clock(), time.time())
    book.update(price)
    clock.advance(3.0)
    assert (book.fresh("M"), book.age_s("M"), book.is_stale("M")) == (price, 3.0, False)

    clock.advance(2.5)
    assert (book.fresh("M"), book.age_s("M"), book.is_stale("M")) == (None, 5.5, True)
    assert book.get("M") == price and book.snapshot() == {"M": price}  # the last good one stays


async def test_a_price_going_stale_alerts_once_and_coming_back_alerts_fresh_once() -> None:
    clock = FakeClock()
    book = PriceBook(stale_after_s=5.0, clock=clock)
    alerts = AlertLog()
    priced, never = new_mint(), new_mint()
    server = PriceApiStandIn(v3({priced: 2.0}))
    async with serving(server), feed_running(settings_for(server.url, priced, never, stale_s=5.0),
                                             book, alerts):
        await wait_until(lambda: book.get(priced) is not None)
        server.script({})  # the API stops pricing it (absent from the answer, as Jupiter does)
        await server.wait_requests(len(server.requests) + 1)  # nothing older is in flight now
        clock.advance(10.0)
        await alerts.wait_for("price_stale", priced)
        await alerts.wait_for("price_stale", never)  # never priced since the feed started
        await server.wait_requests(len(server.requests) + 3)
        assert len(alerts.of("price_stale", priced)) == 1  # not once per poll
        assert metric("xorj_price_age_seconds", mint=priced) >= 10.0
        assert book.fresh(priced) is None and book.get(priced).usd == 2.0  # type: ignore[union-attr]

        server.script(v3({priced: 2.1}))
        await alerts.wait_for("price_fresh", priced)
        await server.wait_requests(len(server.requests) + 3)

    assert [len(alerts.of(k, priced)) for k in ("price_stale", "price_fresh")] == [1, 1]
    assert book.fresh(priced) is not None and book.fresh(priced).usd == 2.1  # type: ignore[union-attr]
    assert not alerts.of("price_fresh", never)


# ---------------------------------------------------------------------------------------- garbage


async def test_garbage_is_rejected_with_alerts_and_the_last_good_price_stays(
    gateway: PostgresGateway,  # noqa: F811 -- unmigrated: the database refuses every write
) -> None:
    neg, text_nan, nan, jump, fine = (new_mint() for _ in range(5))
    mints = (neg, text_nan, nan, jump, fine)
    book = PriceBook(stale_after_s=30.0)
    alerts = AlertLog()
    good = v3(dict.fromkeys(mints, 10.0))
    garbage = {neg: v3_entry(-1.0), text_nan: v3_entry("NaN"), nan: v3_entry(math.nan),  # bare NaN token
               jump: v3_entry(100.0), fine: v3_entry(10.5)}
    server = PriceApiStandIn(good, b"<html>502 Bad Gateway</html>", garbage)
    before = {r: metric("xorj_price_rejected_total", reason=r)
              for r in ("not_json", "bad_shape", "not_finite", "not_positive", "jump")}
    store_failures = metric("xorj_price_store_failures_total")
    publish_failures = metric("xorj_price_publish_failures_total")

    async def publish(channel: str, data: bytes) -> None:
        raise PublishFailed("redis is down")

    async with serving(server), feed_running(settings_for(server.url, *mints), book, alerts,
                                             db=gateway, publish=publish):
        await wait_until(lambda: book.get(fine) is not None and book.get(fine).usd == 10.5)  # type: ignore[union-attr]
        await alerts.wait_for("price_rejected", jump)

    seen = {(a.subject, a.details["reason"]) for a in alerts.of("price_rejected")}
    assert {(m, "not_json") for m in mints} <= seen
    assert {(neg, "not_positive"), (text_nan, "bad_shape"), (nan, "not_finite"), (jump, "jump")} <= seen
    assert (fine, "jump") not in seen  # +5 % is a move, not a jump
    jumped = next(a for a in alerts.of("price_rejected", jump) if a.details["reason"] == "jump")
    assert jumped.severity == "WARNING" and jumped.details["value"] == 100.0
    assert all(book.get(m).usd == 10.0 for m in (neg, text_nan, nan, jump))  # type: ignore[union-attr]
    for reason, count in before.items():
        assert metric("xorj_price_rejected_total", reason=reason) > count, reason
    # Neither the database nor Redis refusing the prices stopped the feed: it accepted 10.5 after.
    assert metric("xorj_price_store_failures_total") > store_failures
    assert metric("xorj_price_publish_failures_total") > publish_failures


# ---------------------------------------------------------------------------------------- outages


async def test_a_dead_endpoint_opens_the_breaker_keeps_the_price_alerts_once_and_recovers() -> None:
    mint = new_mint()
    book = PriceBook(stale_after_s=30.0)
    alerts = AlertLog()
    server = PriceApiStandIn(v3({mint: 5.0}))
    breaker = BreakerPolicy(consecutive_failures=2, recovery_s=0.1)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        async with feed_running(settings_for(server.url, mint, breaker=breaker), book, alerts) as run:
            await wait_until(lambda: book.get(mint) is not None)
            last_good = book.get(mint)
            refused = metric("xorj_price_polls_total", outcome="transport_error")
            server.stop()  # its port refuses connections from now on
            # Two refusals open the breaker; two more can only be half-open trials that re-opened it.
            await wait_until(lambda: metric("xorj_price_polls_total", outcome="transport_error")
                             >= refused + 4)
            assert len(await alerts.wait_for("dependency_down", "price_api")) == 1
            assert run.feed.breaker.state is not BreakerState.CLOSED
            assert book.get(mint) == last_good  # kept, with its age

            server.script(v3({mint: 5.5}))
            await nursery.start(server.serve)  # back, on the same port
            await wait_until(lambda: book.get(mint).usd == 5.5)  # type: ignore[union-attr]
            await alerts.wait_for("dependency_up", "price_api")
            assert run.feed.breaker.state.value == "closed"
        server.stop()
    assert len(alerts.of("dependency_down")) == 1


async def test_a_server_that_never_answers_costs_each_poll_its_deadline_and_no_more(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="xorj.price_feed")  # whatever an earlier test configured
    mint = new_mint()
    book = PriceBook(stale_after_s=30.0)
    book.update(Price(mint, 3.0, book.clock(), time.time()))
    alerts = AlertLog()
    server = PriceApiStandIn(None)  # accepts, reads the request, stays silent
    timeouts = metric("xorj_price_polls_total", outcome="timeout")
    breaker = BreakerPolicy(consecutive_failures=100, recovery_s=0.1)  # keep polling into the silence
    async with serving(server), feed_running(
            settings_for(server.url, mint, timeout_s=0.2, breaker=breaker), book, alerts):
        # Each poll gave up at its deadline and the loop went on to the next one.
        await server.wait_requests(3)
        await wait_until(lambda: metric("xorj_price_polls_total", outcome="timeout") >= timeouts + 2)
    assert book.get(mint).usd == 3.0  # type: ignore[union-attr]
    assert not alerts.of("price_rejected")
    # The feed's own deadline ended them, not httpx's safety-net timeout behind it.
    reasons = {getattr(r, "reason", None) for r in caplog.records
               if getattr(r, "event", "") == "price_poll_failed"}
    assert reasons == {"no answer within 0.2s"}


# ---------------------------------------------------------------------------------------- fan-out


async def test_subscribers_skip_when_full_are_dropped_when_gone_and_conflate_to_the_newest() -> None:
    registry = Registry()
    registry.claim("slow", None, lambda: Mailbox("slow", 1))
    conflating = registry.claim("executor", None, lambda: ConflatingMailbox("executor", conflate_prices, 8))
    subscribers = PriceSubscribers()
    for name in ("slow", "executor", "gone"):
        subscribers.add(registry.ref(name))
    first, second = PricesUpdated({"A": 1.0}, 1.0), PricesUpdated({"A": 1.1}, 2.0)

    assert subscribers.publish(first) == 0
    assert len(subscribers) == 2  # "gone" has no mailbox: dropped for good
    assert subscribers.publish(second) == 1  # "slow" is full: skipped, not waited on
    assert await conflating.get_batch(10) == [second]  # the executor sees only the newest
