"""What the price feed tests share: a stand-in Price API server, an alert collector, a fake clock,
and the feed under a real `Supervisor`.

The stand-in (`PriceApiStandIn`) exists because the local chain's price API only ever answers
well: to feed the actor garbage, a dead port or a comeback on the same port, the test needs a
server it scripts. It speaks the wire format of Jupiter's Price API v3 over real HTTP/1.1 on a
real socket: ``GET /price/v3?ids=MINT,MINT`` -> ``200`` with a JSON object keyed by mint, each
``{"usdPrice", "blockId", "decimals", "priceChange24h"}``, a mint without a price absent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import trio
from prometheus_client import REGISTRY

from actors import Actor, ChildContext
from actors.alerts import Alert
from actors.database import Database
from actors.price_feed import (
    PriceBook,
    PriceFeed,
    PriceFeedSettings,
    PriceSubscribers,
    SubscribePrices,
    conflate_prices,
)
from supervisors import ChildSpec, Registry, Supervisor
from tests.runtime.conftest import running

Answer = bytes | dict[str, Any] | None  # raw body, a JSON object, or None: stay silent


def v3_entry(usd: Any, decimals: int = 6) -> dict[str, Any]:
    return {"usdPrice": usd, "blockId": 1234, "decimals": decimals, "priceChange24h": 0.0}


def v3(prices: dict[str, Any]) -> dict[str, Any]:
    """A Price API v3 answer for ``mint -> usdPrice``."""
    return {mint: v3_entry(usd) for mint, usd in prices.items()}


class PriceApiStandIn:
    """A scripted Price API v3 server (see the module docstring). ``answers`` are served in order,
    the last one for every request after; an answer of None accepts, reads, and never replies."""

    def __init__(self, *answers: Answer) -> None:
        self.answers: list[Answer] = list(answers)
        self.requests: list[list[str]] = []  # the ids of every request, in order
        self.port = 0
        self._changed = trio.Event()
        self._scope: trio.CancelScope | None = None

    def script(self, *answers: Answer) -> None:
        self.answers = list(answers)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_requests(self, count: int, *, within: float = 10.0) -> None:
        with trio.fail_after(within):
            while len(self.requests) < count:
                await self._changed.wait()

    def _next(self) -> Answer:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    async def _handle(self, stream: trio.SocketStream) -> None:
        async with stream:
            data = b""
            with trio.move_on_after(5):
                while b"\r\n\r\n" not in data:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        return
                    data += chunk
            target = data.split(b"\r\n", 1)[0].split(b" ")[1].decode()
            ids = [i for v in parse_qs(urlsplit(target).query).get("ids", []) for i in v.split(",") if i]
            self.requests.append(ids)
            self._changed.set()
            self._changed = trio.Event()
            answer = self._next()
            if answer is None:
                await trio.sleep_forever()  # a server that accepted the request and says nothing
            body = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            head = (f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
                    "connection: close\r\n\r\n").encode()
            await stream.send_all(head + body)

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen (on ``self.port``, or a free port the first time) until cancelled."""
        with trio.CancelScope() as self._scope:
            listeners = await trio.open_tcp_listeners(self.port, host="127.0.0.1")
            self.port = listeners[0].socket.getsockname()[1]
            async with trio.open_nursery() as nursery:
                await nursery.start(trio.serve_listeners, self._handle, listeners)
                task_status.started(self.port)

    def stop(self) -> None:
        """Close the listener and every connection: the port refuses connections from now on."""
        if self._scope is not None:
            self._scope.cancel()


@asynccontextmanager
async def serving(server: PriceApiStandIn) -> AsyncIterator[PriceApiStandIn]:
    """The server is up inside the block; on exit it is gone and its port refuses connections."""
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        yield server
        server.stop()


class AlertLog:
    """An `AlertSink` that keeps every alert, for tests to wait on."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self._changed = trio.Event()

    def __call__(self, alert: Alert) -> None:
        self.alerts.append(alert)
        self._changed.set()
        self._changed = trio.Event()

    def of(self, kind: str, subject: str | None = None) -> list[Alert]:
        return [a for a in self.alerts if a.kind == kind and (subject is None or a.subject == subject)]

    async def wait_for(self, kind: str, subject: str | None = None, *, count: int = 1,
                       within: float = 10.0) -> list[Alert]:
        with trio.fail_after(within):
            while len(self.of(kind, subject)) < count:
                await self._changed.wait()
        return self.of(kind, subject)


@attrs.define
class FakeClock:
    """Monotonic seconds that move only when the test says so."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Inbox(Actor):
    """A subscriber: forwards every message it gets to a memory channel the test reads."""

    def __init__(self, send: trio.MemorySendChannel[object]) -> None:
        self._send = send

    async def handle(self, ctx: ChildContext, msg: Any) -> None:
        self._send.send_nowait(msg)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def wait_until(condition: Callable[[], bool], *, within: float = 10.0) -> None:
    with trio.fail_after(within):
        while not condition():  # noqa: ASYNC110 -- state owned by the feed's task, no event to wait on
            await trio.sleep(0.01)


@attrs.define
class FeedRun:
    feed: PriceFeed
    registry: Registry
    inbox: trio.MemoryReceiveChannel[object]


@asynccontextmanager
async def feed_running(
    settings: PriceFeedSettings, book: PriceBook, alerts: AlertLog, *, db: Database | None = None,
    subscribers: PriceSubscribers | None = None, **kwargs: Any,
) -> AsyncIterator[FeedRun]:
    """The feed and an `Inbox` subscriber (conflating mailbox, as the executors' will be) under a
    real supervisor; the subscription is told to the feed like any actor would."""
    feeds: list[PriceFeed] = []
    send, receive = trio.open_memory_channel[object](100)

    def start() -> PriceFeed:
        feeds.append(PriceFeed(settings, book, subscribers or PriceSubscribers(), db=db, alert=alerts,
                               **kwargs))
        return feeds[-1]

    tree = Supervisor([
        ChildSpec("executor", lambda: Inbox(send), conflate=conflate_prices),
        ChildSpec("price_feed", start, shutdown_s=2.0),
    ])
    async with running(tree) as t:
        await t.registry.ref("price_feed").tell(SubscribePrices(t.registry.ref("executor")))
        yield FeedRun(feeds[-1], t.registry, receive)


def mints_of(manifest: dict[str, Any]) -> Iterator[str]:
    for info in manifest["mints"].values():
        yield str(info["mint"])
