"""The node: one engine process -- its embedded servers, its supervision tree and its edges.

```
root (rest_for_one)
├── infra (one_for_one): postgres, redis, http (metrics/health), control (socket),
│                        localnet (embedded mode: the local chain as a child process)
├── rpc_client
├── alerter                                   -- alerts: table, log, counter, webhook, Redis
├── price_feed                                -- the market's prices (engine/trading.py)
├── scorer                                    -- waits for the migrated schema
├── trader_watch                              -- whom each risk profile follows
├── risk                                      -- the kill switches, loaded before any trade
├── executors (dynamic, one_for_one)          -- one executor per enabled user
└── trading                                   -- start-up: leftovers, demo users, executors
```

The `rest_for_one` root means that when infra has to be restarted as a whole, everything that depends
on it is restarted after it, in order.

Start-up is embedded servers (when no URL is configured) -> tree in start order (with no
`SOLANA_RPC_URL` the local chain is started inside the tree, supervised, and the RPC client is
pointed at it); the Postgres
gateway migrates the schema every time it (re)connects. Shutdown (SIGTERM, SIGINT or `xorj ctl
shutdown`) stops the tree in reverse order within `SHUTDOWN_TIMEOUT_SECONDS`, cancelling whatever
is left after that, then stops the embedded servers. A root escalation ends the process with an
error: the node is crash-only, and the service manager restarts it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import trio

from actors.alerter import alerts_from_supervision
from actors.alerts import Severity
from actors.rpc_client import GetRpcHealth, RpcClient, RpcClientActor
from actors.scorer import RankingsSubscribers, Scorer
from engine.alert_commands import alert_commands, gateway_alerts, redis_publisher
from engine.config import Config
from engine.control_socket import CommandError, CommandSpec, serve_control_socket
from engine.embedded_localnet import LocalnetPorts, localnet_ports, serve_localnet
from engine.embedded_postgres import run_embedded_postgres
from engine.embedded_redis import run_embedded_redis
from engine.gc_policy import tune as tune_gc
from engine.gc_policy import unfreeze as unfreeze_gc
from engine.http_server import DependencyHealth, HealthReport, serve_http
from engine.postgres_gateway import PostgresGateway
from engine.redis_gateway import RedisGateway
from engine.risk_commands import risk_commands
from engine.scoring_commands import scorer_commands, scorer_settings
from engine.services import AfterEvent, ServiceActor
from engine.trading import Trading
from engine.trading_commands import trading_commands
from engine.user_commands import user_commands
from sql.migrate import migrate
from supervisors import (
    ActorNotFound,
    AskTimeout,
    ChildSpec,
    CrashChild,
    EventBus,
    Registry,
    RestartChild,
    Strategy,
    Supervisor,
    ask,
)
from supervisors.request import AskError

log = logging.getLogger("xorj.node")

VERSION = "0.1.0"
SUPERVISOR_ASK_TIMEOUT_S = 30.0


@asynccontextmanager
async def _database_url(config: Config) -> AsyncIterator[str]:
    if config.database_url is not None:
        yield config.database_url
        return
    async with run_embedded_postgres(config.xorj_home, config.embedded_postgres_port) as server:
        yield server.url


@asynccontextmanager
async def _redis_url(config: Config) -> AsyncIterator[str]:
    if config.redis_url is not None:
        yield config.redis_url
        return
    async with run_embedded_redis(config.xorj_home, config.embedded_redis_port) as server:
        yield server.url


class Node:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.registry = Registry()
        self.events = EventBus()
        self.state = "starting"
        self.metrics_port: int | None = None
        self.database_ready = trio.Event()
        self._stop = trio.Event()
        self._started_at = time.time()
        self.root: Supervisor | None = None
        self.postgres: PostgresGateway | None = None
        self.redis: RedisGateway | None = None
        self.localnet: LocalnetPorts | None = None
        self.localnet_manifest: Path | None = None
        self.rankings_subscribers = RankingsSubscribers()  # outlives scorer incarnations
        self.trading: Trading | None = None
        self._rpc_endpoints: dict[str, object] | None = None  # as the last health read saw them

    # ------------------------------------------------------------------ life

    async def run(self, *, task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED) -> None:
        cfg = self.config
        cfg.xorj_home.mkdir(parents=True, exist_ok=True, mode=0o700)
        tune_gc()
        try:
            await self._serve(task_status)
        finally:
            unfreeze_gc()  # what start-up froze (engine.gc_policy) is the collector's again

    async def _serve(self, task_status: trio.TaskStatus[Node]) -> None:
        cfg = self.config
        async with AsyncExitStack() as servers:
            database_url = await servers.enter_async_context(_database_url(cfg))
            redis_url = await servers.enter_async_context(_redis_url(cfg))
            self.postgres = PostgresGateway(
                database_url, pool_min=cfg.database_pool_min, pool_max=cfg.database_pool_max
            )
            self.redis = RedisGateway(redis_url)
            if cfg.solana_rpc_url is None:
                self.localnet = localnet_ports(
                    cfg.xorj_home, cfg.localnet_rpc_port, cfg.localnet_price_port)
            self.trading = Trading(cfg, self.postgres, self.redis, self.registry, self.rankings_subscribers,
                                   self.database_ready, lambda: self.localnet_manifest)
            # an outage is an alert even when no executor is there to notice it
            alerts = self.trading.alerts
            self.postgres.watch = gateway_alerts(alerts, "postgres", "database", Severity.CRITICAL)
            self.redis.watch = gateway_alerts(alerts, "redis", "redis", Severity.WARNING)
            self.root = self._tree()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_signals)
                await nursery.start(partial(alerts_from_supervision, self.events, self.trading.alerts))
                root_done = trio.Event()
                await nursery.start(self._run_root, self.root, root_done)
                self.state = "running"
                log.info("engine running", extra={"pid": os.getpid(), "metrics_port": self.metrics_port,
                                                  "control_socket": str(cfg.xorj_control_socket)})
                task_status.started(self)
                # A root that escalates raises out of this nursery, which cancels this wait.
                await self._stop.wait()
                self.state = "stopping"
                log.info("engine stopping", extra={"timeout_s": cfg.shutdown_timeout_seconds})
                self.root.request_stop()
                with trio.move_on_after(cfg.shutdown_timeout_seconds) as grace:
                    await root_done.wait()
                if grace.cancelled_caught:
                    log.warning("shutdown grace exceeded; cancelling what is left")
                nursery.cancel_scope.cancel()
        self.state = "stopped"
        log.info("engine stopped")

    async def _run_root(
        self, root: Supervisor, done: trio.Event, *, task_status: trio.TaskStatus[None]
    ) -> None:
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(root.run_as_root, "root", self.registry, self.events)
                task_status.started()
        finally:
            done.set()

    async def _watch_signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("signal received", extra={"signal": signal.Signals(signum).name})
                self.request_shutdown()

    def request_shutdown(self) -> None:
        self._stop.set()

    # ------------------------------------------------------------------ tree

    def _tree(self) -> Supervisor:
        cfg = self.config
        assert self.postgres is not None and self.redis is not None
        postgres, redis = self.postgres, self.redis

        async def migrated(_: object) -> None:
            applied = await migrate(postgres)
            if applied:
                log.info("migrations applied", extra={"versions": [m.version for m in applied]})
            self.database_ready.set()

        async def http_bound(port: int) -> None:
            self.metrics_port = port

        async def serve_metrics(*, task_status: trio.TaskStatus[int]) -> None:
            await serve_http(cfg.metrics_host, cfg.metrics_port, self.health, task_status=task_status)

        async def serve_control(*, task_status: trio.TaskStatus[Any]) -> None:
            await serve_control_socket(cfg.xorj_control_socket, self.commands(), task_status=task_status)

        async def chain_serving(manifest: Path) -> None:
            self.localnet_manifest = manifest

        async def serve_chain(*, task_status: trio.TaskStatus[Path]) -> None:
            assert self.localnet is not None
            await serve_localnet(cfg.xorj_home, self.localnet, cfg.localnet_seed,
                                 admin=cfg.xorj_fault_injection, task_status=task_status)

        rpc_primary = cfg.solana_rpc_url or (self.localnet.rpc_url if self.localnet else "")

        # A local chain (embedded, or named by LOCALNET_MANIFEST) has no provider quota.
        local = cfg.solana_rpc_url is None or cfg.localnet_manifest is not None
        rate = cfg.solana_rpc_rate_per_s or (2000.0 if local else 40.0)

        def rpc_client() -> RpcClient:
            return RpcClient(rpc_primary, cfg.solana_rpc_backup_url, rate_per_s=rate, burst=int(rate))

        def scorer() -> AfterEvent:
            path = cfg.localnet_manifest or self.localnet_manifest
            manifest = json.loads(path.read_text()) if path else None
            return AfterEvent(self.database_ready, Scorer(
                postgres, scorer_settings(cfg, manifest), self.rankings_subscribers,
                publish=redis_publisher(redis)))

        assert self.trading is not None
        trading = {spec.name: spec for spec in self.trading.children()}
        infra = [
            ChildSpec("postgres", lambda: ServiceActor(
                postgres.serve, wait_until_serving=False, on_serving=migrated)),
            ChildSpec("redis", lambda: ServiceActor(redis.serve, wait_until_serving=False)),
            ChildSpec("http", lambda: ServiceActor(
                serve_metrics, wait_until_serving=True, on_serving=http_bound)),
            ChildSpec("control", lambda: ServiceActor(serve_control, wait_until_serving=True)),
        ]
        if self.localnet is not None:
            infra.append(ChildSpec("localnet", lambda: ServiceActor(
                serve_chain, wait_until_serving=True, on_serving=chain_serving), shutdown_s=15.0))
        return Supervisor(
            [
                ChildSpec("infra", lambda: Supervisor(infra, strategy=Strategy.ONE_FOR_ONE,
                                                      max_restarts=10, period=60.0),
                          shutdown_s=math.inf),
                ChildSpec("rpc_client", lambda: RpcClientActor(rpc_client), shutdown_s=10.0),
                trading["alerter"],
                trading["price_feed"],
                ChildSpec("scorer", scorer, shutdown_s=5.0),
                trading["trader_watch"],
                trading["risk"],
                trading["executors"],
                trading["trading"],
            ],
            strategy=Strategy.REST_FOR_ONE,
            max_restarts=3,
            period=60.0,
        )

    # ------------------------------------------------------------------ edges

    async def health(self) -> HealthReport:
        deps = [g.health() for g in (self.postgres, self.redis) if g is not None]
        deps.append(await self._rpc_health())
        return HealthReport(node_state=self.state, dependencies=tuple(deps))

    async def _rpc_health(self) -> DependencyHealth:
        try:
            rpc = await ask(self.registry.ref("rpc_client"), GetRpcHealth(), timeout=1.0)
        except (ActorNotFound, AskError) as exc:
            return DependencyHealth("solana_rpc", "down", None, f"rpc client: {exc}")
        self._rpc_endpoints = {"active_endpoint": rpc.active_endpoint, "breakers": dict(rpc.breakers)}
        return DependencyHealth("solana_rpc", rpc.state, rpc.latency_ms, rpc.last_error)

    def commands(self) -> Mapping[str, CommandSpec]:
        scoring = scorer_commands(self.registry.ref("scorer"), self.postgres) if self.postgres else {}
        trading: dict[str, CommandSpec] = {}
        if self.trading is not None and self.postgres is not None:
            t = self.trading

            async def resolve_user(who: str) -> str | None:
                user = await t.users.get(who)
                return None if user is None else user.user_id

            trading = {
                **user_commands(t.users, t.enabler),
                **risk_commands(t.switch_store, t.switches, t.breakers, resolve_user),
                **alert_commands(self.postgres),
                **trading_commands(t, fault_injection=self.config.xorj_fault_injection),
            }
        return {
            **scoring,
            **trading,
            "status": CommandSpec(self._status, help="the node's state and its dependencies"),
            "tree": CommandSpec(self._tree_cmd, help="the supervision tree"),
            "restart": CommandSpec(self._restart, required={"actor": str}, help="restart an actor"),
            "crash": CommandSpec(self._crash, required={"actor": str},
                                 help="raise inside an actor (needs XORJ_FAULT_INJECTION=1)"),
            "shutdown": CommandSpec(self._shutdown, help="stop the engine gracefully"),
        }

    async def _status(self, args: Mapping[str, object]) -> object:
        report = await self.health()
        tree = self.root.tree(state=self.state) if self.root else None
        return {
            "state": self.state,
            "status": report.status,
            "version": VERSION,
            "pid": os.getpid(),
            "uptime_s": round(time.time() - self._started_at, 3),
            "metrics_port": self.metrics_port,
            "fault_injection": self.config.xorj_fault_injection,
            "dependencies": report.as_json()["dependencies"],
            "restarts": _total_restarts(tree.as_dict()) if tree else 0,
            "rpc": self._rpc_endpoints,
            "trading": self.trading.status() if self.trading else None,
        }

    async def _tree_cmd(self, args: Mapping[str, object]) -> object:
        if self.root is None:
            raise CommandError("the supervision tree is not running yet")
        return self.root.tree(state=self.state).as_dict()

    async def _ask_owner(self, actor: str, request: RestartChild | CrashChild) -> None:
        try:
            owner = self.registry.owner(actor)
        except ActorNotFound:
            raise CommandError(f"no actor named {actor!r}; see `xorj ctl tree`") from None
        if owner is None:
            raise CommandError(f"{actor!r} is the root of the tree; use `xorj ctl shutdown`")
        try:
            await ask(self.registry.ref(owner), request, timeout=SUPERVISOR_ASK_TIMEOUT_S)
        except (ActorNotFound, RuntimeError) as exc:
            raise CommandError(str(exc)) from None
        except AskTimeout:
            raise CommandError(f"supervisor {owner!r} did not answer in time") from None

    async def _restart(self, args: Mapping[str, object]) -> object:
        actor = str(args["actor"])
        await self._ask_owner(actor, RestartChild(actor))
        return {"restarted": actor}

    async def _crash(self, args: Mapping[str, object]) -> object:
        actor = str(args["actor"])
        if not self.config.xorj_fault_injection:
            raise CommandError("crash is refused: fault injection is off (start the engine with "
                               "XORJ_FAULT_INJECTION=1)")
        await self._ask_owner(actor, CrashChild(actor))
        log.warning("crash injected", extra={"actor": actor})
        return {"crashed": actor}

    async def _shutdown(self, args: Mapping[str, object]) -> object:
        self.request_shutdown()
        return {"stopping": True}


def _total_restarts(node: Mapping[str, Any]) -> int:
    return int(node["restarts"]) + sum(_total_restarts(c) for c in node["children"])
