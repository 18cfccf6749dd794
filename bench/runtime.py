"""Runtime suite: restart latency, tell throughput (and a raw trio channel as its ceiling), ask
round trip, memory per idle actor and the time to start 10,000 of them.

Every figure is measured through the real supervisor and registry, as production code uses them.
"""

from __future__ import annotations

import gc
import logging
import statistics
import time
import tracemalloc
from typing import Any

import attrs
import trio
import trio.testing

from actors import Actor, ChildContext, Request, ask
from bench.report import Figure
from supervisors import (
    BackoffPolicy,
    ChildSpec,
    DynamicSupervisor,
    EventBus,
    Registry,
    StartChild,
    Supervisor,
)

TELL_N = 300_000
ASK_N = 20_000
RESTART_N = 2_000
IDLE_N = 10_000


@attrs.frozen
class Crash:
    pass


@attrs.frozen
class Ping(Request[int]):
    pass


@attrs.frozen
class Count:
    n: int


class Counter(Actor):
    """Counts messages; signals when the expected number arrived."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    async def handle(self, ctx: ChildContext, msg: Any) -> None:
        if isinstance(msg, Ping):
            msg.reply.set(0)
            return
        if isinstance(msg, Crash):
            self.state["crashed_at"] = time.perf_counter()
            raise RuntimeError("bench crash")
        if isinstance(msg, Count):
            self.state["seen"] += 1
            if self.state["seen"] == self.state["want"]:
                self.state["done"].set()


class Restartee(Actor):
    """Records the time its first message arrives in a new incarnation."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    async def handle(self, ctx: ChildContext, msg: Any) -> None:
        if isinstance(msg, Crash):
            self.state["crashed_at"] = time.perf_counter()
            raise RuntimeError("bench crash")
        if isinstance(msg, Ping):
            if self.state["crashed_at"] is not None:
                self.state["latencies"].append(time.perf_counter() - self.state["crashed_at"])
                self.state["crashed_at"] = None
            msg.reply.set(0)


class Idle(Actor):
    async def handle(self, ctx: ChildContext, msg: Any) -> None:
        pass


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _tree(sup: Supervisor, nursery: trio.Nursery) -> Registry:
    registry = Registry()
    await nursery.start(sup.run_as_root, "root", registry, EventBus())
    return registry


async def _tell_throughput() -> float:
    state: dict[str, Any] = {"seen": 0, "want": TELL_N, "done": trio.Event()}
    sup = Supervisor([ChildSpec("counter", lambda: Counter(state), mailbox_capacity=4096)])
    async with trio.open_nursery() as nursery:
        registry = await _tree(sup, nursery)
        ref = registry.ref("counter")
        msg = Count(1)
        start = time.perf_counter()
        for _ in range(TELL_N):
            await ref.tell(msg)
        await state["done"].wait()
        elapsed = time.perf_counter() - start
        sup.request_stop()
    return TELL_N / elapsed


async def _raw_channel_throughput() -> float:
    send, receive = trio.open_memory_channel[Count](4096)
    done = trio.Event()

    async def consumer() -> None:
        seen = 0
        while seen < TELL_N:
            await receive.receive()
            seen += 1
            while True:  # batch-drain, as the actor mailbox does
                try:
                    receive.receive_nowait()
                except trio.WouldBlock:
                    break
                seen += 1
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        msg = Count(1)
        start = time.perf_counter()
        for _ in range(TELL_N):
            await send.send(msg)
        await done.wait()
        return TELL_N / (time.perf_counter() - start)


async def _ask_round_trips() -> list[float]:
    state: dict[str, Any] = {"seen": 0, "want": -1, "done": trio.Event()}
    sup = Supervisor([ChildSpec("counter", lambda: Counter(state))])
    out = []
    async with trio.open_nursery() as nursery:
        registry = await _tree(sup, nursery)
        ref = registry.ref("counter")
        for _ in range(ASK_N):
            start = time.perf_counter()
            await ask(ref, Ping(), timeout=5)
            out.append(time.perf_counter() - start)
        sup.request_stop()
    return out


async def _restart_latencies() -> list[float]:
    state: dict[str, Any] = {"crashed_at": None, "latencies": []}
    # reset_after_s=0: every crash counts as the first after a quiet period, so no backoff delay is
    # added and the figure is the restart machinery itself.
    sup = Supervisor(
        [ChildSpec("restartee", lambda: Restartee(state))],
        max_restarts=RESTART_N * 2,
        period=1.0,
        backoff=BackoffPolicy(reset_after_s=0.0),
    )
    async with trio.open_nursery() as nursery:
        registry = await _tree(sup, nursery)
        ref = registry.ref("restartee")
        for _ in range(RESTART_N):
            await ref.tell(Crash())
            await ask(ref, Ping(), timeout=5)
        sup.request_stop()
    return list(state["latencies"])


async def _start_idle(n: int) -> float:
    sup = Supervisor([ChildSpec("pool", lambda: DynamicSupervisor(max_restarts=10), shutdown_s=60)])
    async with trio.open_nursery() as nursery:
        registry = await _tree(sup, nursery)
        pool = registry.ref("pool")
        start = time.perf_counter()
        for i in range(n):
            await ask(pool, StartChild(ChildSpec(f"idle[{i}]", Idle, metrics_label="idle")), timeout=5)
        elapsed = time.perf_counter() - start
        sup.request_stop()
    return elapsed


async def _idle_bytes(n: int) -> float:
    sup = Supervisor([ChildSpec("pool", lambda: DynamicSupervisor(max_restarts=10), shutdown_s=60)])
    async with trio.open_nursery() as nursery:
        registry = await _tree(sup, nursery)
        pool = registry.ref("pool")
        # Warm up every lazily created structure (metric families, code objects) first.
        for i in range(100):
            await ask(pool, StartChild(ChildSpec(f"warm[{i}]", Idle, metrics_label="idle")), timeout=5)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            await ask(pool, StartChild(ChildSpec(f"idle[{i}]", Idle, metrics_label="idle")), timeout=5)
        await trio.testing.wait_all_tasks_blocked()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        sup.request_stop()
    return (after - before) / n


def figures() -> dict[str, Figure]:
    logging.getLogger("xorj").setLevel(logging.ERROR)  # thousands of deliberate crashes

    restart = trio.run(_restart_latencies)
    tell = trio.run(_tell_throughput)
    raw = trio.run(_raw_channel_throughput)
    asks = trio.run(_ask_round_trips)
    start_s = trio.run(_start_idle, IDLE_N)
    idle = trio.run(_idle_bytes, IDLE_N)
    return {
        "restart_p50_ms": Figure(statistics.median(restart) * 1e3, "ms", "lower"),
        "restart_p99_ms": Figure(_pct(restart, 0.99) * 1e3, "ms", "lower", target=1.0),
        "tell_msgs_per_s": Figure(tell, "msgs/s", "higher", target=200_000),
        "raw_channel_msgs_per_s": Figure(raw, "msgs/s", "higher"),
        "ask_p50_us": Figure(statistics.median(asks) * 1e6, "us", "lower"),
        "ask_p99_us": Figure(_pct(asks, 0.99) * 1e6, "us", "lower"),
        "idle_actor_bytes": Figure(idle, "bytes", "lower", target=8192),
        "start_10k_actors_s": Figure(start_s, "s", "lower"),
    }
