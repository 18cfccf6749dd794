"""The alerter actor against a real PostgreSQL, a real HTTP receiver standing in for Alertmanager
(see conftest), a real Redis, and a real supervision tree; and the ``alerts`` control command."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
from functools import partial

import pytest
import trio
import trio.testing
from prometheus_client import REGISTRY

import engine.ctl
from actors import Actor, ChildContext
from actors.alerter import ALERTS_CHANNEL, AlerterSettings, alerts_from_supervision
from actors.alerts import Alert, Severity
from engine.alert_commands import CTL, alert_commands, parse_since, redis_publisher, render_alerts
from engine.control_socket import CommandError
from engine.embedded_redis import EmbeddedRedis
from engine.postgres_gateway import PostgresGateway
from engine.redis_gateway import RedisGateway
from supervisors import BackoffPolicy, ChildSpec, Supervisor
from tests.alerts.conftest import (
    Clock,
    RecordingDatabase,
    alert_rows,
    alertmanager,
    rows_when,
    running_alerter,
)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def warn(kind: str, subject: str, **details: object) -> Alert:
    return Alert(Severity.WARNING, kind, subject, details)


# ---------------------------------------------------------------------------------------- dedup


async def test_repeats_inside_the_window_are_one_alert_and_a_repeat_after_it_is_a_new_one(
    schema: PostgresGateway,
) -> None:
    clock = Clock()
    settings = AlerterSettings(dedup_window_s=60.0, clock=clock)
    suppressed_before = metric("xorj_alerts_suppressed_total", kind="trade_failed")
    raised_before = metric("xorj_alerts_total", severity="WARNING", kind="trade_failed")
    async with running_alerter(schema, settings) as (_, sink):
        # The alerter reads the clock when it handles an alert: each step waits for the last one.
        sink(warn("trade_failed", "user-1", reason="slippage"))
        sink(warn("trade_failed", "user-1", reason="slippage"))
        await rows_when(schema, lambda r: len(r) == 1 and r[0]["details"].get("suppressed") == 1)
        clock.advance(59.0)
        sink(warn("trade_failed", "user-1", reason="slippage"))
        sink(Alert(Severity.CRITICAL, "kill_switch", "global", {"by": "ops"}))
        rows = await rows_when(schema, lambda r: len(r) == 2 and r[0]["details"].get("suppressed") == 2)
        first = rows[0]
        assert (first["severity"], first["kind"], first["subject"]) == ("WARNING", "trade_failed", "user-1")
        assert first["details"] == {"reason": "slippage", "suppressed": 2}
        assert first["created_at"] == dt.datetime.fromtimestamp(clock.now - 59.0, dt.UTC)
        assert (rows[1]["severity"], rows[1]["kind"], rows[1]["details"]) == ("CRITICAL", "kill_switch",
                                                                              {"by": "ops"})

        clock.advance(1.0)  # the window (60 s from the first alert) is over
        sink(warn("trade_failed", "user-1", reason="expired"))
        rows = await rows_when(schema, lambda r: len(r) == 3)
    again = rows[2]
    assert (again["kind"], again["subject"]) == ("trade_failed", "user-1")
    assert again["details"] == {"reason": "expired"}
    assert len({r["dedup_key"] for r in rows}) == 3
    assert metric("xorj_alerts_suppressed_total", kind="trade_failed") - suppressed_before == 2
    assert metric("xorj_alerts_total", severity="WARNING", kind="trade_failed") - raised_before == 2


async def test_a_restarted_alerter_does_not_store_an_alert_of_the_same_window_twice(
    schema: PostgresGateway,
) -> None:
    clock = Clock()
    settings = AlerterSettings(dedup_window_s=600.0, clock=clock)
    async with running_alerter(schema, settings) as (_, sink):
        sink(warn("dependency_down", "redis"))
        await rows_when(schema, lambda r: len(r) == 1)
    clock.advance(1.0)
    async with running_alerter(schema, settings) as (_, sink):  # a new incarnation: no memory of it
        sink(warn("dependency_down", "redis"))
        sink(warn("dependency_down", "postgres"))
        rows = await rows_when(schema, lambda r: any(x["subject"] == "postgres" for x in r))
    assert sorted(r["subject"] for r in rows) == ["postgres", "redis"]


async def test_a_burst_of_alerts_is_written_in_one_batched_statement(schema: PostgresGateway) -> None:
    db = RecordingDatabase(schema)
    async with running_alerter(db, AlerterSettings(dedup_window_s=60.0)) as (_, sink):
        for i in range(300):
            sink(warn("price_rejected", f"mint-{i}", jump_pct=i))
        rows = await rows_when(schema, lambda r: len(r) == 300)
    assert {r["subject"] for r in rows} == {f"mint-{i}" for i in range(300)}
    # 300 alerts, not 300 round trips (the batch is bounded by batch_max=500).
    assert 1 <= len(db.calls) <= 2 and all(outcome == "ok" for _, outcome in db.calls)


# ---------------------------------------------------------------------------------------- outage


async def test_a_database_outage_keeps_alerts_and_writes_them_after_recovery(
    schema: PostgresGateway, db_url: str
) -> None:
    """The alerter's own gateway is stopped and served again (the database itself stays up for the
    test's checks): while it is stopped every call fails with `DatabaseUnavailable`, as in an outage."""
    own = PostgresGateway(db_url, pool_min=1, pool_max=2, probe_interval=0.2, backoff_max=0.2)
    db = RecordingDatabase(own)
    settings = AlerterSettings(dedup_window_s=60.0, buffer_capacity=6, db_backoff_min_s=0.01,
                               db_backoff_max_s=0.05)
    dropped_before = metric("xorj_alerter_drops_total", stage="buffer_full")
    async with running_alerter(db, settings) as (_, sink):
        async with trio.open_nursery() as gateway_nursery:
            await gateway_nursery.start(own.serve)
            sink(warn("breaker_opened", "rpc"))
            await rows_when(schema, lambda r: len(r) == 1)
            gateway_nursery.cancel_scope.cancel()  # the outage starts

        for i in range(8):
            sink(warn("trade_failed", f"user-{i}"))
        await db.wait_for(lambda: sum(o == "DatabaseUnavailable" for _, o in db.calls) >= 3)
        assert len(await alert_rows(schema)) == 1  # nothing written during the outage
        assert metric("xorj_alerter_drops_total", stage="buffer_full") - dropped_before == 2

        async with trio.open_nursery() as gateway_nursery:
            await gateway_nursery.start(own.serve)  # the database is back
            rows = await rows_when(schema, lambda r: len(r) == 7)
            gateway_nursery.cancel_scope.cancel()
    # The buffer held 6: the first six raised during the outage, none of them lost.
    assert [r["subject"] for r in rows] == ["rpc"] + [f"user-{i}" for i in range(6)]


async def test_an_alert_the_database_refuses_is_dropped_without_holding_back_its_batch(
    schema: PostgresGateway,
) -> None:
    rejected_before = metric("xorj_alerter_drops_total", stage="db_rejected")
    async with running_alerter(schema, AlerterSettings(dedup_window_s=60.0)) as (_, sink):
        sink(warn("trade_failed", "before"))
        sink(warn("trade_failed", "nul\x00byte"))  # PostgreSQL text cannot hold NUL: refused
        sink(warn("trade_failed", "after"))
        rows = await rows_when(schema, lambda r: len(r) == 2)
        with trio.fail_after(10):
            while metric("xorj_alerter_drops_total", stage="db_rejected") == rejected_before:  # noqa: ASYNC110
                await trio.sleep(0.02)
    assert [r["subject"] for r in rows] == ["before", "after"]
    assert metric("xorj_alerter_drops_total", stage="db_rejected") - rejected_before == 1


async def test_stopping_during_an_outage_reports_the_unwritten_alerts(
    db_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    down = PostgresGateway(db_url)  # never served: every call fails with DatabaseUnavailable
    with caplog.at_level(logging.WARNING, logger="xorj.alerter"):
        async with running_alerter(down, AlerterSettings(dedup_window_s=60.0, stop_flush_s=0.5)) as (_, sink):
            sink(warn("dependency_down", "postgres"))
            sink(warn("dependency_down", "redis"))
            await trio.testing.wait_all_tasks_blocked()
    events = {getattr(r, "event", None): r for r in caplog.records}
    assert "alerts_waiting_for_database" in events and "alerts_stop_flush_failed" in events
    assert events["alerts_unwritten_at_stop"].__dict__["alerts"] == 2


# ---------------------------------------------------------------------------------------- webhook


async def test_the_webhook_gets_alertmanager_json_and_is_retried_after_a_500(schema: PostgresGateway) -> None:
    clock = Clock()
    async with alertmanager(statuses=[500]) as am:
        settings = AlerterSettings(dedup_window_s=60.0, webhook_url=am.url, webhook_backoff_min_s=0.01,
                                   webhook_backoff_max_s=0.05, generator_url="http://node:9100/health",
                                   clock=clock)
        ok_before = metric("xorj_alert_webhook_posts_total", outcome="ok")
        async with running_alerter(schema, settings) as (_, sink):
            sink(Alert(Severity.CRITICAL, "reconcile_anomaly", "trade-7", {"signature": "5xyz", "slot": 12}))
            await am.wait_for_posts(2)
            await rows_when(schema, lambda r: len(r) == 1)
        assert metric("xorj_alert_webhook_posts_total", outcome="ok") - ok_before == 1

    first, retry = am.posted
    assert first.body == retry.body  # the same alerts, sent again after the 500
    assert (retry.path, retry.content_type) == ("/api/v2/alerts", "application/json")
    [alert] = retry.body
    assert alert["labels"] == {"alertname": "reconcile_anomaly", "severity": "critical",
                               "subject": "trade-7", "service": "xorj"}
    assert alert["annotations"]["summary"] == "CRITICAL reconcile_anomaly: trade-7"
    assert json.loads(alert["annotations"]["details"]) == {"signature": "5xyz", "slot": 12}
    assert dt.datetime.fromisoformat(alert["startsAt"]) == dt.datetime.fromtimestamp(clock.now, dt.UTC)
    assert alert["startsAt"].endswith("Z") and alert["generatorURL"] == "http://node:9100/health"


async def test_a_webhook_that_refuses_the_body_is_not_retried(schema: PostgresGateway) -> None:
    failed_before = metric("xorj_alerter_drops_total", stage="webhook_failed")
    async with alertmanager(statuses=[400, 400]) as am:
        settings = AlerterSettings(dedup_window_s=60.0, webhook_url=am.url, webhook_backoff_min_s=0.01)
        async with running_alerter(schema, settings) as (_, sink):
            sink(warn("price_rejected", "SOL"))
            with trio.fail_after(10):
                while metric("xorj_alerter_drops_total", stage="webhook_failed") == failed_before:  # noqa: ASYNC110
                    await trio.sleep(0.02)
            await rows_when(schema, lambda r: len(r) == 1)
    assert len(am.posted) == 1  # a 400 is final: sending the same body again cannot help


async def test_a_webhook_that_never_answers_does_not_hold_back_alerts_from_the_database(
    schema: PostgresGateway,
) -> None:
    full_before = metric("xorj_alerter_drops_total", stage="webhook_queue_full")
    async with alertmanager(hang=True) as am:
        settings = AlerterSettings(dedup_window_s=60.0, webhook_url=am.url, webhook_queue=2,
                                   webhook_timeout_s=30.0)
        async with running_alerter(schema, settings) as (_, sink):
            sink(warn("dependency_down", "first"))
            await am.wait_for_posts(1)  # the POST of the first alert hangs from here on
            for i in range(20):
                sink(warn("dependency_down", f"subject-{i}"))
            rows = await rows_when(schema, lambda r: len(r) == 21)
    assert len({r["subject"] for r in rows}) == 21
    # Two wait in the webhook queue behind the hung POST; the rest are not queued (and counted).
    assert metric("xorj_alerter_drops_total", stage="webhook_queue_full") - full_before == 18


# ---------------------------------------------------------------------------------------- Redis


async def test_raised_alerts_are_published_on_redis_and_a_redis_outage_only_loses_the_fan_out(
    schema: PostgresGateway, redis_server: EmbeddedRedis, nursery: trio.Nursery,
) -> None:
    redis = RedisGateway(redis_server.url, probe_interval=0.2)
    with trio.fail_after(10):
        await nursery.start(redis.serve)
    failed_before = metric("xorj_alerter_drops_total", stage="publish_failed")
    async with running_alerter(schema, AlerterSettings(dedup_window_s=60.0),
                               publish=redis_publisher(redis)) as (_, sink):
        async with redis.subscribe(ALERTS_CHANNEL) as messages:
            sink(warn("price_stale", "SOL", age_s=42))
            sink(warn("price_stale", "SOL", age_s=43))  # suppressed: not published again
            sink(warn("price_stale", "JUP", age_s=7))
            with trio.fail_after(10):
                got = [json.loads((await messages.receive()).data) for _ in range(2)]
        assert [(m["kind"], m["subject"], m["details"]) for m in got] == [
            ("price_stale", "SOL", {"age_s": 42}), ("price_stale", "JUP", {"age_s": 7})]
        assert got[0]["severity"] == "WARNING" and got[0]["dedup_key"].startswith("price_stale:SOL@")

        # A publisher whose Redis is unreachable (an unserved gateway fails like Redis down).
        down = redis_publisher(RedisGateway(redis_server.url))
    async with running_alerter(schema, AlerterSettings(dedup_window_s=60.0), publish=down) as (_, sink):
        sink(warn("price_stale", "BONK"))
        await rows_when(schema, lambda r: any(x["subject"] == "BONK" for x in r))
        with trio.fail_after(10):
            while metric("xorj_alerter_drops_total", stage="publish_failed") == failed_before:  # noqa: ASYNC110
                await trio.sleep(0.02)


# ---------------------------------------------------------------------------------------- supervision


class Crasher(Actor):
    """Crashes on every message it is told."""

    async def handle(self, ctx: ChildContext, msg: object) -> None:
        raise RuntimeError(f"crasher was told {msg!r}")


async def test_restarts_of_a_crashing_child_and_an_escalation_raise_alerts(schema: PostgresGateway) -> None:
    no_wait = BackoffPolicy(min_s=0.0, max_s=0.0)
    fragile = ChildSpec("fragile", lambda: Supervisor(
        [ChildSpec("doomed", Crasher)], max_restarts=1, period=60.0, backoff=no_wait))
    crasher = ChildSpec("crasher", Crasher)
    raised: list[Alert] = []
    async with running_alerter(schema, AlerterSettings(dedup_window_s=60.0),
                               extra=[crasher, fragile]) as (tree, sink):

        def recording_sink(alert: Alert) -> None:
            raised.append(alert)
            sink(alert)

        async with trio.open_nursery() as bridge:
            await bridge.start(partial(
                alerts_from_supervision, tree.events, recording_sink, restarts_threshold=3, window_s=60.0))
            for n in range(3):
                await tree.registry.ref("crasher").tell(f"crash {n}")
            rows = await rows_when(schema, lambda r: any(x["kind"] == "actor_restarts" for x in r))
            for n in range(2):  # the second crash within its period exceeds fragile's intensity
                await tree.registry.ref("doomed").tell(f"crash {n}")
            rows = await rows_when(schema, lambda r: any(x["kind"] == "supervisor_escalated" for x in r))
            bridge.cancel_scope.cancel()
    # One alert for three restarts (not one per restart); doomed's single restart and fragile's
    # restart by root stay below the threshold.
    assert [(a.kind, a.subject) for a in raised] == [("actor_restarts", "crasher"),
                                                     ("supervisor_escalated", "fragile")]
    restarts = next(r for r in rows if r["kind"] == "actor_restarts")
    assert (restarts["severity"], restarts["subject"]) == ("WARNING", "crasher")
    assert restarts["details"]["restarts"] == 3 and restarts["details"]["supervisor"] == "root"
    escalated = next(r for r in rows if r["kind"] == "supervisor_escalated")
    assert (escalated["severity"], escalated["subject"]) == ("CRITICAL", "fragile")
    assert escalated["details"]["child"] == "doomed"


# ---------------------------------------------------------------------------------------- ctl


async def test_the_alerts_command_filters_by_since_and_limit_and_refuses_garbage(
    schema: PostgresGateway,
) -> None:
    now = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
    for kind, ago in (("old", dt.timedelta(hours=3)), ("recent", dt.timedelta(minutes=30)),
                      ("newest", dt.timedelta(minutes=1))):
        await schema.execute(
            "INSERT INTO alerts (severity, kind, subject, details, dedup_key, created_at) "
            "VALUES ('WARNING', $1, 'x', '{\"n\": 1}'::jsonb, $1, $2)", kind, now - ago, timeout=10)
    alerts = alert_commands(schema, now=lambda: now)["alerts"].handler

    def kinds(result: object) -> list[str]:
        assert isinstance(result, dict)
        return [a["kind"] for a in result["alerts"]]

    assert kinds(await alerts({})) == ["newest", "recent", "old"]
    assert kinds(await alerts({"since": "1h"})) == ["newest", "recent"]
    assert kinds(await alerts({"since": "10m"})) == ["newest"]
    assert kinds(await alerts({"since": "2026-11-22T09:30:00Z"})) == ["newest", "recent"]
    assert kinds(await alerts({"since": "2026-11-22T11:58:00"})) == ["newest"]  # no offset: UTC
    assert kinds(await alerts({"since": "1d", "limit": 1})) == ["newest"]
    shown = await alerts({"limit": 2})
    assert isinstance(shown, dict)
    assert set(shown["alerts"][0]) == {"id", "severity", "kind", "subject", "details", "created_at"}
    assert shown["alerts"][0]["details"] == {"n": 1}

    for bad in ("yesterday", "-5m", "10 minutes", "5w", ""):
        with pytest.raises(CommandError, match=r"alerts: since: .* is neither an ISO-8601 timestamp"):
            await alerts({"since": bad})
    for limit in (0, 1001):
        with pytest.raises(CommandError, match="alerts: limit must be 1-1000"):
            await alerts({"limit": limit})

    lines = render_alerts(shown, {}).splitlines()
    assert len(lines) == 2 and lines[0].split()[2] == "newest" and lines[1].split()[2] == "recent"
    assert lines[0].index("WARNING") == lines[1].index("WARNING")  # aligned columns
    assert render_alerts({"alerts": []}, {"since": "10m"}) == "no alerts since 10m"


def test_parse_since_reads_durations_and_timestamps() -> None:
    now = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
    assert parse_since("90s", now) == now - dt.timedelta(seconds=90)
    assert parse_since("2h", now) == now - dt.timedelta(hours=2)
    assert parse_since("1.5d", now) == now - dt.timedelta(hours=36)
    assert parse_since("2026-11-22T10:00:00+02:00", now) == dt.datetime(2026, 11, 22, 8, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="reaches back too far"):
        parse_since("99999999999d", now)


def test_xorj_ctl_parses_the_alerts_options(monkeypatch: pytest.MonkeyPatch) -> None:
    if "alerts" not in {c.name for c in engine.ctl.COMMANDS}:  # until the lead adds CTL to the table
        monkeypatch.setattr(engine.ctl, "COMMANDS", engine.ctl.COMMANDS + CTL)
    parser = argparse.ArgumentParser()
    engine.ctl.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["ctl", "alerts", "--since", "10m", "--limit", "5"])
    assert (args.ctl_command, args.since, args.limit) == ("alerts", "10m", 5)
    args = parser.parse_args(["ctl", "alerts"])
    assert (args.since, args.limit) == (None, None)
    with pytest.raises(SystemExit):
        parser.parse_args(["ctl", "alerts", "--limit", "many"])
