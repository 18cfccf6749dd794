"""The kill switches (`actors.kill_switches`) and their control commands (`engine.risk_commands`)
against a real PostgreSQL (the infra fixtures, migrated) and a real Redis (embedded; a test that
stops Redis runs its own). Each test uses its own mirror key and channel, so tests sharing the
session's Redis cannot see each other's switches."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest
import trio
from prometheus_client import REGISTRY

from actors.alerts import Alert, AlertSink, Severity
from actors.kill_switches import GLOBAL, KillSwitches, KillSwitchMirror, KillSwitchStore, SwitchState
from actors.trade_lifecycle import FailureReason, TradeStatus
from actors.trading_breakers import TradingBreakers
from engine.control_socket import CommandError
from engine.embedded_redis import EmbeddedRedis, run_embedded_redis
from engine.postgres_gateway import PostgresGateway
from engine.redis_gateway import RedisError, RedisGateway
from engine.risk_commands import CTL, render_breakers, render_kill_switch, risk_commands
from sql.errors import DatabaseError
from tests.infra.conftest import db_url, gateway, pg_server, redis_server, schema, server_home, xorj_home

# The real servers of tests/infra, found by pytest under these names.
INFRA_FIXTURES = (db_url, gateway, pg_server, redis_server, schema, server_home, xorj_home)

Change = tuple[str, "SwitchState | None"]


@pytest.fixture
async def redis_gw(redis_server: EmbeddedRedis, nursery: trio.Nursery) -> RedisGateway:
    gw = RedisGateway(redis_server.url, probe_interval=0.2)
    with trio.fail_after(10):
        await nursery.start(gw.serve)
    return gw


@pytest.fixture
def names() -> tuple[str, str]:
    """A mirror key and channel of this test's own."""
    tag = uuid.uuid4().hex[:8]
    return f"xorj:kill_switch:global:{tag}", f"xorj:kill_switch:{tag}"


def mirror(redis: RedisGateway, names: tuple[str, str]) -> KillSwitchMirror:
    key, channel = names
    return KillSwitchMirror(redis, unavailable=(RedisError,), timeout_s=2.0, key=key, channel=channel)


def collecting() -> tuple[list[Alert], AlertSink]:
    alerts: list[Alert] = []

    def sink(alert: Alert) -> None:
        alerts.append(alert)

    return alerts, sink


def engaged_gauge(scope: str) -> float | None:
    return REGISTRY.get_sample_value("xorj_kill_switch_engaged", {"scope": scope})


def recording(switches: KillSwitches) -> tuple[list[Change], trio.Event]:
    changes: list[Change] = []
    changed = trio.Event()

    def listener(scope: str, state: SwitchState | None) -> None:
        changes.append((scope, state))
        changed.set()

    switches.on_change(listener)
    return changes, changed


async def events(db: PostgresGateway) -> list[tuple[str, bool, str]]:
    rows = await db.fetch("SELECT scope, engaged, reason FROM kill_switch_events ORDER BY id", timeout=5)
    return [(r["scope"], r["engaged"], r["reason"]) for r in rows]


async def test_engaging_writes_postgres_then_stops_trading_and_wakes_listeners_before_set_returns(
    schema: PostgresGateway, redis_gw: RedisGateway, names: tuple[str, str]
) -> None:
    store, (alerts, sink) = KillSwitchStore(schema, timeout_s=5), collecting()
    switches = KillSwitches(alerts=sink, mirror=mirror(redis_gw, names))
    with trio.fail_after(20):
        await switches.refresh(store)
    assert switches.loaded and not switches.stopped("u1") and engaged_gauge("global") == 0
    changes, _ = recording(switches)
    seen_by_listener: list[bool] = []
    switches.on_change(lambda _scope, _state: seen_by_listener.append(switches.stopped("u1")))

    with trio.fail_after(20):
        state = await switches.set(store, GLOBAL, True, "  exchange halted  ")
        # When set() returns, executors already see it (no refresh in between), and a woken
        # listener reads the new view.
        assert changes == [(GLOBAL, state)] and seen_by_listener == [True]
        assert switches.global_engaged() and switches.stopped("u1") and switches.stopped("u2")
        assert switches.reason(GLOBAL) == "exchange halted" and state.confirmed
        assert engaged_gauge("global") == 1
        row = await schema.fetchrow(
            "SELECT engaged, reason FROM kill_switches WHERE scope = 'global'", timeout=5)
        assert row == {"engaged": True, "reason": "exchange halted"}
        # The mirror carries it for the other nodes.
        assert await redis_gw.get(names[0], timeout=2) == KillSwitchMirror.encode(state)

        await switches.set(store, "user:u1", True, "owner asked")
        assert switches.user_engaged("u1") and not switches.user_engaged("u2")
        assert engaged_gauge("user") == 1

        released = await switches.set(store, GLOBAL, False, None)
        assert not switches.global_engaged() and switches.stopped("u1") and not switches.stopped("u2")
        assert released.reason == "exchange halted"  # a release keeps the last reason
        assert switches.reason(GLOBAL) is None and engaged_gauge("global") == 0
        await switches.set(store, "user:u1", False, "resolved")

        assert await events(schema) == [
            ("global", True, "exchange halted"), ("user:u1", True, "owner asked"),
            ("global", False, "exchange halted"), ("user:u1", False, "resolved")]
    assert [(a.severity, a.kind, a.subject, a.details["reason"]) for a in alerts] == [
        (Severity.CRITICAL, "kill_switch", "global", "exchange halted"),
        (Severity.CRITICAL, "kill_switch", "user:u1", "owner asked"),
        (Severity.INFO, "kill_switch", "global", "exchange halted"),
        (Severity.INFO, "kill_switch", "user:u1", "resolved")]
    assert [scope for scope, _ in changes] == ["global", "user:u1", "global", "user:u1"]
    assert engaged_gauge("user") == 0


async def test_a_restart_finds_the_switches_where_they_were_left(schema: PostgresGateway) -> None:
    with trio.fail_after(20):
        await KillSwitches().set(KillSwitchStore(schema), "user:u7", True, "suspicious withdrawals")
        await KillSwitches().set(KillSwitchStore(schema), GLOBAL, True, "maintenance")

        after_restart = KillSwitches()
        await after_restart.refresh(KillSwitchStore(schema))
    assert after_restart.global_engaged() and after_restart.user_engaged("u7")
    assert after_restart.reason("user:u7") == "suspicious withdrawals"
    assert after_restart.snapshot()["global"]["reason"] == "maintenance"


async def test_a_refused_write_changes_nothing(db_url: str) -> None:
    down = PostgresGateway(db_url)  # never served: every call is DatabaseUnavailable
    alerts, sink = collecting()
    switches = KillSwitches(alerts=sink)
    changes, _ = recording(switches)
    with trio.fail_after(10), pytest.raises(DatabaseError):
        await switches.set(KillSwitchStore(down), GLOBAL, True, "halt")
    assert not switches.global_engaged() and changes == [] and alerts == []


async def test_a_second_node_sees_a_global_engage_through_redis_before_its_postgres_refresh(
    schema: PostgresGateway, redis_server: EmbeddedRedis, names: tuple[str, str], nursery: trio.Nursery
) -> None:
    redis_a = RedisGateway(redis_server.url, probe_interval=0.2)
    redis_b = RedisGateway(redis_server.url, probe_interval=0.2)
    node_a = KillSwitches(mirror=mirror(redis_a, names))
    node_b = KillSwitches(mirror=mirror(redis_b, names))
    store = KillSwitchStore(schema)
    with trio.fail_after(30):
        await nursery.start(redis_a.serve)
        await nursery.start(redis_b.serve)
        # Node B refreshes from Postgres once at start, then not for an hour.
        await nursery.start(lambda task_status: node_b.watch(
            store, refresh_s=3600, poll_s=3600, task_status=task_status))
        await wait_for_subscriber(redis_a, names[1])
        _, changed = recording(node_b)

        state = await node_a.set(store, GLOBAL, True, "oracle failure")
        await changed.wait()
    seen = node_b.state(GLOBAL)
    assert node_b.global_engaged() and node_b.reason(GLOBAL) == "oracle failure"
    assert seen is not None and not seen.confirmed and seen.updated_at == state.updated_at

    with trio.fail_after(20):
        await node_b.refresh(store)
        assert node_b.state(GLOBAL) == state  # confirmed by Postgres

        released = await node_a.set(store, GLOBAL, False, "oracle back")
        # A release is never taken from Redis: only Postgres lets trading resume.
        assert node_b.apply_mirror(KillSwitchMirror.encode(released)) is False
        assert node_b.global_engaged()
        await node_b.refresh(store)
    assert not node_b.global_engaged()


async def wait_for_subscriber(redis: RedisGateway, channel: str) -> None:
    """Until node B's subscription is registered (a probe publish reaches one subscriber)."""
    while await redis.publish(channel, b"probe", timeout=2) < 1:  # noqa: ASYNC110 -- asking Redis itself
        await trio.sleep(0.02)


async def test_the_key_poll_applies_an_engage_the_channel_missed_and_postgres_refutes_a_bogus_one(
    schema: PostgresGateway, redis_gw: RedisGateway, names: tuple[str, str], nursery: trio.Nursery,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = KillSwitchStore(schema)
    node = KillSwitches(mirror=mirror(redis_gw, names))
    with trio.fail_after(30):
        await nursery.start(lambda task_status: node.watch(
            store, refresh_s=3600, poll_s=0.05, task_status=task_status))
        _, changed = recording(node)
        # Written to the key only (as if the publish was lost), and never committed to Postgres.
        now = await schema.fetchval("SELECT now() + interval '1 second'", timeout=5)
        bogus = KillSwitchMirror.encode(SwitchState(engaged=True, reason="bogus", updated_at=now))
        await redis_gw.set(names[0], bogus, timeout=2)
        await changed.wait()
        assert node.global_engaged() and node.reason(GLOBAL) == "bogus"

        with caplog.at_level(logging.WARNING, logger="xorj.kill_switches"):
            await node.refresh(store)
    assert not node.global_engaged()
    assert "not confirmed by Postgres" in caplog.text
    assert node.apply_mirror(bogus) is False  # applied at most once: a stale key cannot flap it
    assert node.apply_mirror(b"{not json") is False


async def test_with_redis_down_set_succeeds_through_postgres_and_the_mirror_failure_is_only_logged(
    schema: PostgresGateway, server_home: Path, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    store = KillSwitchStore(schema)
    with trio.fail_after(60):
        async with run_embedded_redis(server_home) as server:
            redis = RedisGateway(server.url, probe_interval=0.1, backoff_max=0.2)
            await nursery.start(redis.serve)
            writer = KillSwitches(mirror=KillSwitchMirror(redis, unavailable=(RedisError,), timeout_s=1.0))
            reader = KillSwitches(mirror=KillSwitchMirror(redis, unavailable=(RedisError,), timeout_s=1.0))
            await nursery.start(lambda task_status: reader.watch(
                store, refresh_s=0.1, poll_s=0.1, task_status=task_status))
        # Redis is stopped.
        _, changed = recording(reader)
        with caplog.at_level(logging.WARNING, logger="xorj.kill_switches"):
            state = await writer.set(store, GLOBAL, True, "redis is down and we halt anyway")
            assert writer.global_engaged() and state.engaged
            # The other node learns it from its Postgres refresh.
            await changed.wait()
    assert reader.global_engaged() and reader.state(GLOBAL) == state
    assert await events(schema) == [("global", True, "redis is down and we halt anyway")]
    assert "kill switch mirror unavailable" in caplog.text


async def test_the_kill_switch_command_validates_state_user_and_reason(
    schema: PostgresGateway, redis_gw: RedisGateway, names: tuple[str, str]
) -> None:
    owner = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
    await schema.execute("INSERT INTO users (id, wallet_address) VALUES ('user-1', $1)", owner, timeout=5)

    async def resolve_user(text: str) -> str | None:
        value: str | None = await schema.fetchval(
            "SELECT id FROM users WHERE id = $1 OR wallet_address = $1", text, timeout=5)
        return value

    store, switches = KillSwitchStore(schema), KillSwitches(mirror=mirror(redis_gw, names))
    breakers = TradingBreakers()
    commands = risk_commands(store, switches, breakers, resolve_user)
    kill_switch, list_breakers = commands["kill-switch"].handler, commands["breakers"].handler
    assert commands["kill-switch"].required == {"state": str}

    async def refused(args: dict[str, object], message: str) -> None:
        with pytest.raises(CommandError, match=message):
            await kill_switch(args)

    with trio.fail_after(30):
        await refused({"state": "maybe"}, r"state must be 'on' or 'off', got 'maybe'")
        await refused({"state": "on"}, r"kill-switch on: --reason is required")
        await refused({"state": "on", "reason": "   "}, r"--reason is required")
        await refused({"state": "on", "reason": "x" * 501}, r"501 characters; at most 500")
        await refused({"state": "off", "reason": ""}, r"--reason must not be empty")
        await refused({"state": "on", "user": "nobody", "reason": "r"}, r"unknown user 'nobody'")
        await refused({"state": "on", "user": " ", "reason": "r"}, r"--user must name a user")
        assert not switches.global_engaged() and await events(schema) == []

        on = await kill_switch({"state": "on", "user": owner, "reason": "x" * 500})
        assert isinstance(on, dict)
        assert (on["scope"], on["user_id"], on["engaged"], on["global_engaged"]) == (
            "user:user-1", "user-1", True, False)
        assert switches.user_engaged("user-1")
        assert render_kill_switch(on, {}).startswith("kill switch of user user-1 ENGAGED: xxx")

        on = await kill_switch({"state": "on", "reason": "market chaos"})
        assert isinstance(on, dict) and on["scope"] == "global" and switches.global_engaged()
        assert render_kill_switch(on, {}).startswith("global kill switch ENGAGED: market chaos")
        off = await kill_switch({"state": "off", "user": "user-1"})
        assert isinstance(off, dict) and off["engaged"] is False and not switches.user_engaged("user-1")
        assert render_kill_switch(off, {}).startswith("kill switch of user user-1 released")

        for _ in range(3):
            breakers.record_outcome("user-1", TradeStatus.FAILED, FailureReason.SLIPPAGE_EXCEEDED)
        listed = await list_breakers({})
    assert isinstance(listed, dict)
    assert listed["open"] == ["slippage_failure_rate"]
    assert listed["breakers"]["trade_failure_rate"] == "closed"
    shown = render_breakers(listed, {})
    assert "slippage_failure_rate  open" in shown and "kill switches engaged: global (market chaos)" in shown
    assert [c.name for c in CTL] == ["kill-switch", "breakers"]
    assert [o.flag for o in CTL[0].options] == ["--user", "--reason"]


