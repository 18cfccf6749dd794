"""Supervisors behave as OTP's do: strategies, restart types, intensity, backoff, start/stop order."""

from __future__ import annotations

import logging

import pytest
import trio
from prometheus_client import REGISTRY

from actors import ActorDied, ActorStopped, AskTimeout, ask
from supervisors import (
    BackoffPolicy,
    ChildSpec,
    CrashChild,
    DuplicateName,
    DynamicSupervisor,
    EventBus,
    EventKind,
    Registry,
    Restart,
    RestartChild,
    StartChild,
    Strategy,
    Supervisor,
    SupervisorEscalated,
    TerminateChild,
)
from tests.runtime.conftest import (
    Boom,
    Hang,
    Journal,
    Note,
    Ping,
    Quit,
    next_event,
    running,
    worker,
)


def specs(journal: Journal, *names: str, restart: Restart = Restart.PERMANENT) -> list[ChildSpec]:
    return [ChildSpec(n, worker(n, journal), restart=restart) for n in names]


async def test_one_for_one_restarts_only_the_crashed_child() -> None:
    j = Journal()
    sup = Supervisor(specs(j, "a", "b", "c"), strategy=Strategy.ONE_FOR_ONE)
    async with running(sup) as tree:
        assert j.lines == ["start a", "start b", "start c"]
        await tree.registry.ref("b").tell(Boom())
        await j.wait_for("start b", count=2)
        assert j.lines[3:] == ["stop b", "start b"]
        assert [n.restarts for n in sup.tree().children] == [0, 1, 0]


async def test_one_for_all_stops_the_others_in_reverse_and_restarts_all_in_order() -> None:
    j = Journal()
    sup = Supervisor(specs(j, "a", "b", "c"), strategy=Strategy.ONE_FOR_ALL)
    async with running(sup) as tree:
        await tree.registry.ref("b").tell(Boom())
        await j.wait_for("start c", count=2)
        assert j.lines[3:] == ["stop b", "stop c", "stop a", "start a", "start b", "start c"]


async def test_rest_for_one_restarts_the_crashed_child_and_those_started_after_it() -> None:
    j = Journal()
    sup = Supervisor(specs(j, "a", "b", "c"), strategy=Strategy.REST_FOR_ONE)
    async with running(sup) as tree:
        await tree.registry.ref("b").tell(Boom())
        await j.wait_for("start c", count=2)
        assert j.lines[3:] == ["stop b", "stop c", "start b", "start c"]
        assert j.lines.count("start a") == 1


async def test_permanent_child_is_restarted_after_a_normal_exit() -> None:
    j = Journal()
    async with running(Supervisor(specs(j, "p"))) as tree:
        await tree.registry.ref("p").tell(Quit())
        await j.wait_for("start p", count=2)


async def test_transient_child_is_restarted_after_a_crash_but_not_after_a_normal_exit() -> None:
    j = Journal()
    events = EventBus()
    with events.subscribe() as rx:
        async with running(Supervisor(specs(j, "t", restart=Restart.TRANSIENT)), events) as tree:
            await tree.registry.ref("t").tell(Boom())
            await j.wait_for("start t", count=2)
            await tree.registry.ref("t").tell(Quit())
            await next_event(rx, EventKind.EXITED, "t")
            assert tree.root.tree().children[0].state == "stopped"
            assert j.lines.count("start t") == 2


async def test_temporary_child_is_never_restarted_even_when_a_sibling_takes_it_down() -> None:
    j = Journal()
    sup = Supervisor(
        [
            ChildSpec("perm", worker("perm", j)),
            ChildSpec("temp", worker("temp", j), restart=Restart.TEMPORARY),
        ],
        strategy=Strategy.ONE_FOR_ALL,
    )
    async with running(sup) as tree:
        await tree.registry.ref("perm").tell(Boom())
        await j.wait_for("start perm", count=2)
        assert j.lines.count("start temp") == 1
        assert sup.child_names == ["perm"]
        with pytest.raises(LookupError):
            tree.registry.mailbox("temp")


async def test_temporary_child_that_crashes_is_removed() -> None:
    j = Journal()
    events = EventBus()
    sup = Supervisor(specs(j, "x", restart=Restart.TEMPORARY))
    with events.subscribe() as rx:
        async with running(sup, events) as tree:
            await tree.registry.ref("x").tell(Boom())
            await next_event(rx, EventKind.REMOVED, "x")
            assert sup.child_names == []


async def test_too_many_restarts_escalate_to_the_parent_which_restarts_the_subtree() -> None:
    j = Journal()
    events = EventBus()
    inner = ChildSpec(
        "inner",
        lambda: Supervisor(specs(j, "leaf"), max_restarts=2, period=60.0,
                           backoff=BackoffPolicy(min_s=0.0, max_s=0.0)),
        shutdown_s=10.0,
    )
    outer = Supervisor([inner], max_restarts=5, period=60.0)
    with events.subscribe() as rx:
        async with running(outer, events) as tree:
            for n in range(1, 4):
                await tree.registry.ref("leaf").tell(Boom())
                await j.wait_for("start leaf", count=n + 1)
            escalated = await next_event(rx, EventKind.ESCALATED, "leaf")
            assert escalated.supervisor == "inner"
            await next_event(rx, EventKind.RESTARTING, "inner")
            await next_event(rx, EventKind.STARTED, "inner")
            assert outer.tree().children[0].restarts == 1
            # The restarted subtree serves again, through the same address.
            assert await ask(tree.registry.ref("leaf"), Ping(text="again"), timeout=5) == "pong again"


async def test_root_escalation_stops_children_in_reverse_order_and_raises() -> None:
    j = Journal()
    root = Supervisor(specs(j, "a", "b"), max_restarts=0, period=60.0)
    registry = Registry()
    with pytest.RaisesGroup(pytest.RaisesExc(SupervisorEscalated, match="exceeded its restart intensity")):
        async with trio.open_nursery() as nursery:
            await nursery.start(root.run_as_root, "root", registry, EventBus())
            await registry.ref("a").tell(Boom())
    assert j.lines == ["start a", "start b", "stop a", "stop b"]


async def test_backoff_grows_with_consecutive_restarts_and_resets_after_a_quiet_period(
    autojump_clock: trio.abc.Clock,
) -> None:
    j = Journal()
    events = EventBus()
    policy = BackoffPolicy(min_s=0.1, max_s=0.4, jitter=0.5, reset_after_s=30.0)
    sup = Supervisor(specs(j, "w"), max_restarts=100, period=1.0, backoff=policy)
    delays = []
    with events.subscribe() as rx:
        async with running(sup, events) as tree:
            for n in range(5):
                await tree.registry.ref("w").tell(Boom())
                delays.append((await next_event(rx, EventKind.RESTARTING, "w")).delay_s)
                await j.wait_for("start w", count=n + 2)
            await trio.sleep(31.0)  # quiet period (virtual time)
            await tree.registry.ref("w").tell(Boom())
            after_quiet = (await next_event(rx, EventKind.RESTARTING, "w")).delay_s
    assert delays[0] == 0.0
    for got, base in zip(delays[1:], [0.1, 0.2, 0.4, 0.4], strict=True):
        assert base <= got < base * 1.5
    assert after_quiet == 0.0


async def test_queued_messages_survive_a_restart_and_reach_the_next_incarnation() -> None:
    j = Journal()
    sup = Supervisor(specs(j, "w"))
    async with running(sup) as tree:
        ref = tree.registry.ref("w")
        # All of these are queued before the actor runs again: Boom is taken in the same batch.
        for msg in [Note("1"), Boom(), Note("2"), Note("3")]:
            ref.tell_nowait(msg)
        await j.wait_for("w got 3")
        assert [line for line in j.lines if line.startswith("w got")] == ["w got 1", "w got 2", "w got 3"]
        assert j.lines.count("start w") == 2


async def test_ask_answers_and_fails_with_typed_errors() -> None:
    j = Journal()
    sup = Supervisor(specs(j, "w"))
    async with running(sup) as tree:
        ref = tree.registry.ref("w")
        assert await ask(ref, Ping(text="x"), timeout=5) == "pong x"
        stuck = Hang()
        with pytest.raises(AskTimeout):
            await ask(ref, stuck, timeout=0.05)
        # The actor is still stuck in `stuck`; a request queued behind it survives a crash.
        queued = Ping(text="queued")
        ref.tell_nowait(queued)
        await ask(tree.registry.ref("root"), CrashChild("w"), timeout=5)
        with trio.fail_after(5):
            with pytest.raises(ActorDied, match="crashed while handling Hang"):
                await stuck.reply.wait()
            assert await queued.reply.wait() == "pong queued"


async def test_requests_queued_for_a_removed_child_fail_with_actor_stopped() -> None:
    j = Journal()
    sup = Supervisor([ChildSpec("w", worker("w", j), shutdown_s=0.1)])
    async with running(sup) as tree:
        ref = tree.registry.ref("w")
        await ref.tell(Hang())
        await trio.testing.wait_all_tasks_blocked()
        queued = Ping(text="never")
        ref.tell_nowait(queued)
        await ask(tree.registry.ref("root"), TerminateChild("w"), timeout=5)
        with pytest.raises(ActorStopped):
            await queued.reply.wait()


async def test_dynamic_supervisor_adds_and_removes_children_at_run_time() -> None:
    j = Journal()
    events = EventBus()
    dyn = ChildSpec("executors", DynamicSupervisor, shutdown_s=10.0)
    with events.subscribe() as rx:
        async with running(Supervisor([dyn]), events) as tree:
            executors = tree.registry.ref("executors")
            for user in ("u1", "u2", "u3"):
                await ask(executors, StartChild(ChildSpec(f"executor[{user}]", worker(user, j))), timeout=5)
            assert [c.name for c in tree.root.tree().children[0].children] == [
                "executor[u1]", "executor[u2]", "executor[u3]"]
            with pytest.raises(DuplicateName):
                await ask(executors, StartChild(ChildSpec("executor[u1]", worker("u1", j))), timeout=5)
            await tree.registry.ref("executor[u2]").tell(Boom())
            await next_event(rx, EventKind.RESTARTING, "executor[u2]")
            await ask(executors, TerminateChild("executor[u1]"), timeout=5)
            assert [c.name for c in tree.root.tree().children[0].children] == [
                "executor[u2]", "executor[u3]"]
            assert j.lines.count("start u3") == 1 and j.lines.count("start u2") == 2
            assert "stop u1" in j.lines


async def test_shutdown_is_reverse_order_and_a_stubborn_child_is_cancelled_after_its_grace(
    autojump_clock: trio.abc.Clock,
) -> None:
    j = Journal()
    sup = Supervisor(
        [
            ChildSpec("first", worker("first", j)),
            ChildSpec("stubborn", worker("stubborn", j), shutdown_s=3.0),
            ChildSpec("last", worker("last", j)),
        ]
    )
    async with running(sup) as tree:
        await tree.registry.ref("stubborn").tell(Hang())
        await trio.testing.wait_all_tasks_blocked()
        before = trio.current_time()
    assert j.lines[3:] == ["stop last", "stop stubborn", "stop first"]
    assert trio.current_time() - before >= 3.0  # virtual time: the grace was waited out


async def test_operator_restart_and_crash_are_visible_in_tree_metrics_and_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    j = Journal()
    sup = Supervisor(specs(j, "visible"))
    before = REGISTRY.get_sample_value("xorj_actor_restarts_total", {"actor": "visible"}) or 0.0
    caplog.set_level(logging.INFO, logger="xorj.supervisor")
    async with running(sup) as tree:
        root = tree.registry.ref("root")
        await ask(root, RestartChild("visible"), timeout=5)
        await ask(root, CrashChild("visible"), timeout=5)
        await j.wait_for("start visible", count=3)
        node = sup.tree().find("visible")
        assert node is not None and node.restarts == 2
    after = REGISTRY.get_sample_value("xorj_actor_restarts_total", {"actor": "visible"})
    assert after == before + 2
    crashed = [r for r in caplog.records if getattr(r, "event", None) == "crashed"]
    assert crashed and crashed[0].child == "visible"  # type: ignore[attr-defined]
    assert "InjectedCrash" in crashed[0].reason  # type: ignore[attr-defined]
