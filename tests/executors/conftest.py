"""What the executor tests share: the real engine node, in-process, on real parts.

Owns: one ``python -m localnet --genesis market`` chain for the session (fast 50 ms slots, a
60-slot blockhash window, ``--admin`` for the fault knobs, no live traders and no market maker, so
a pool moves only when the engine or a test trades against it), the session's embedded PostgreSQL
and Redis (tests/infra), and `run_engine`: an `engine.node.Node` started in the test's own trio
run (``await nursery.start(node.run)``) with its config from `engine.config.load_config`, a fresh
database, its own Redis database number, and Postgres and the RPC routed through an in-process
`chaos.fault_proxy.FaultProxy` so a test cuts them with real TCP faults.

The test checks what the node did where it is recorded: the database (a direct connection, not
through the proxy) and the chain (an `RpcClient` straight to the chain; ``TradeExecuted`` events
decoded from the transactions' logs).

The scorer ranks the manifest's traders, so the executors have a leader; `run_engine` sets
``MIN_TRADE_USD`` far above any vault by default, so every planned leg is dropped (the plan's
``min_trade_value`` check) and the executors only trade what a test asks through the ``trade``
drill (which is not a planned leg). The end-to-end test sets a real minimum and lets them copy.

The chain is shared: a test that sets chain faults resets them on the way out (`run_engine` does),
and every assertion about the chain is about the test's own signatures or balance deltas.
"""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import attrs
import pytest
import trio
from solders.pubkey import Pubkey
from solders.rpc.config import RpcSignaturesForAddressConfig
from solders.signature import Signature

from actors.rpc_client import RetryPolicy, RpcClient
from chaos.fault_proxy import FaultProxy, Proxy, open_fault_proxy
from chaos.toxics import ProxySpec
from contracts.vault_client import TradeExecuted, VaultClient
from engine.config import load_config
from engine.control_socket import CommandError
from engine.embedded_postgres import EmbeddedPostgres
from engine.embedded_redis import EmbeddedRedis
from engine.node import Node
from engine.postgres_gateway import PostgresGateway
from tests.infra.conftest import db_url, pg_server, redis_server, xorj_home  # noqa: F401
from tests.localnet.conftest import LocalnetNode, start_node, stop_node
from tests.trades.conftest import executed, set_faults

T = TypeVar("T")

CHAIN = ("--slot-ms", "50", "--blockhash-window", "60", "--finalize-slots", "4", "--confirm-slots", "1",
         "--genesis", "market", "--price-port", "0", "--admin", "--seed", "11", "--no-live-traders",
         "--market-maker-slots", "0")
FAULTS_OFF: Mapping[str, object] = {"dropRate": 0.0, "landDelaySlots": 0, "errorAfterLanding": False}
_redis_databases = itertools.count(1)


@pytest.fixture(scope="session")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalnetNode]:
    node = start_node(tmp_path_factory.mktemp("executors-market"), *CHAIN, deadline_s=120.0)
    yield node
    assert stop_node(node) == 0


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    userinfo, _, _host = parts.netloc.rpartition("@")
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


@attrs.define
class Engine:
    """A running node and the handles a test checks it through."""

    node: Node
    chain: LocalnetNode
    proxy: FaultProxy
    pg_proxy: Proxy
    rpc_proxy: Proxy
    db: PostgresGateway  # straight to the test's database, not through the proxy
    rpc: RpcClient  # straight to the chain, not through the proxy
    socket: Path
    vault: VaultClient

    # ------------------------------------------------------------------ the node's edges

    async def cmd(self, name: str, **args: object) -> Any:
        """One command through the node's command table (raises `CommandError`)."""
        return await self.node.commands()[name].handler(args)

    async def ctl(self, name: str, **args: object) -> dict[str, Any]:
        """One request over the control socket; the whole answer ({ok, result | error})."""
        with trio.fail_after(60):
            stream = await trio.open_unix_socket(str(self.socket))
            async with stream:
                await stream.send_all(json.dumps({"cmd": name, "args": args}).encode() + b"\n")
                data = b""
                while not data.endswith(b"\n"):
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        break
                    data += chunk
        answer: dict[str, Any] = json.loads(data)
        return answer

    def status(self) -> dict[str, Any]:
        assert self.node.trading is not None
        return self.node.trading.status()

    # ------------------------------------------------------------------ the database

    async def rows(self, sql: str, *args: object) -> list[dict[str, Any]]:
        return [dict(r) for r in await self.db.fetch(sql, *args, timeout=10)]

    async def trades(self, where: str = "TRUE", *args: object) -> list[dict[str, Any]]:
        return await self.rows(f"SELECT * FROM trades WHERE {where} ORDER BY created_at, attempt", *args)

    async def snapshot(self) -> dict[str, int]:
        """Row counts an operator command must not change."""
        counts = {}
        for table in ("users", "user_settings", "trades", "trade_events", "execution_jobs", "kill_switches"):
            counts[table] = int(await self.db.fetchval(f"SELECT count(*) FROM {table}", timeout=10))
        counts["enabled"] = int(await self.db.fetchval(
            "SELECT count(*) FROM user_settings WHERE bot_enabled", timeout=10))
        return counts

    # ------------------------------------------------------------------ the chain

    @property
    def manifest(self) -> dict[str, Any]:
        return self.chain.manifest

    def mint(self, symbol: str) -> str:
        return str(self.manifest["mints"][symbol]["mint"])

    def demo_owner(self, index: int) -> str:
        return str(self.manifest["demoUsers"][index]["owner"])

    async def user_id(self, owner: str) -> str:
        user_id = await self.db.fetchval("SELECT id FROM users WHERE wallet_address = $1", owner, timeout=10)
        assert isinstance(user_id, str)
        return user_id

    async def set_faults(self, **knobs: object) -> None:
        await set_faults(self.chain.url, knobs)

    async def executed(self, signature: str) -> list[TradeExecuted]:
        return await executed(self.rpc, signature)

    async def landed(self, signature: str) -> bool:
        statuses = await self.rpc.get_signature_statuses([Signature.from_string(signature)], timeout=5.0)
        return statuses.value[0] is not None

    async def vault_signatures(self, owner: str) -> set[str]:
        vault = self.vault.vault(Pubkey.from_string(owner))
        answer = await self.rpc.get_signatures_for_address(
            vault, RpcSignaturesForAddressConfig(limit=1000), timeout=5.0)
        return {str(s.signature) for s in answer.value}

    async def block_height(self) -> int:
        return int(await self.rpc.get_block_height(timeout=5.0))

    # ------------------------------------------------------------------ faults through the proxy

    def cut(self, proxy: Proxy) -> None:
        """Stop listening and hang up on every connection: a real outage for the node."""
        proxy.stop()

    def restore(self, proxy: Proxy) -> None:
        proxy.start()


async def eventually(check: Callable[[], Awaitable[T | None]], *, within: float, poll: float = 0.1,
                     what: str = "condition") -> T:
    """Poll an async ``check`` until it returns something truthy; fail after ``within`` seconds."""
    try:
        with trio.fail_after(within):
            while True:
                value = await check()
                if value:
                    return value
                await trio.sleep(poll)
    except trio.TooSlowError:
        raise AssertionError(f"timed out after {within}s waiting for {what}") from None


def _private_dir(prefix: str) -> Path:
    # short: the control socket's path must fit in sun_path (108 bytes)
    return Path(tempfile.mkdtemp(prefix=prefix))


@asynccontextmanager
async def run_engine(chain: LocalnetNode, pg: EmbeddedPostgres, redis: EmbeddedRedis, database_url: str,
                     **settings: str) -> AsyncIterator[Engine]:
    """A node on a fresh database, Postgres and the RPC through the fault proxy, until the block
    ends; the chain's faults are reset and the proxies restored before it is shut down."""
    home = _private_dir("xorj-ex-")
    manifest = chain.manifest
    stable = ",".join(str(m["mint"]) for s, m in manifest["mints"].items() if s in ("USDC", "USDT"))
    try:
        async with open_fault_proxy(seed=6) as proxy, trio.open_nursery() as nursery:
            pg_proxy = proxy.create(ProxySpec("postgres", _host_port(database_url), "127.0.0.1:0"))
            rpc_proxy = proxy.create(ProxySpec("rpc", _host_port(chain.url), "127.0.0.1:0"))
            redis_parts = urlsplit(redis.url)
            env = {
                "DATABASE_URL": _with_port(database_url, pg_proxy.port),
                "REDIS_URL": urlunsplit(redis_parts._replace(path=f"/{next(_redis_databases) % 16}")),
                "SOLANA_RPC_URL": f"http://127.0.0.1:{rpc_proxy.port}",
                "SOLANA_RPC_RATE_PER_S": "5000",
                "LOCALNET_MANIFEST": str(chain.workdir / "manifest.json"),
                "XORJ_HOME": str(home / "home"),
                "XORJ_CONTROL_SOCKET": str(home / "ctl.sock"),
                "METRICS_PORT": "0",
                "XORJ_FAULT_INJECTION": "1",
                "STABLECOIN_MINTS": stable,
                "EXECUTOR_CHECK_SECONDS": "1",
                "CONFIRM_TIMEOUT_SECONDS": "10",
                "SHUTDOWN_TIMEOUT_SECONDS": "10",
                "PRICE_POLL_SECONDS": "0.5",
                "TRADER_POLL_SECONDS": "0.5",
                "BREAKER_RECOVERY_SECONDS": "2",
                "LOG_LEVEL": "INFO",
                "MIN_TRADE_USD": "1000000000",
                **settings,
            }
            node = Node(load_config(env))
            db = PostgresGateway(database_url, pool_min=1, pool_max=4, probe_interval=0.2, backoff_max=0.5)
            with trio.fail_after(30):
                await nursery.start(db.serve)
            async with RpcClient(chain.url, rate_per_s=5000.0, burst=500, default_timeout_s=5.0,
                                 retry=RetryPolicy(retries=1, min_s=0.01, max_s=0.05)) as rpc:
                engine = Engine(node, chain, proxy, pg_proxy, rpc_proxy, db, rpc, home / "ctl.sock",
                                VaultClient(Pubkey.from_string(manifest["programs"]["vault"])))
                with trio.fail_after(60):
                    await nursery.start(node.run)
                    await node.database_ready.wait()
                await eventually(lambda: _executors_running(engine, len(manifest["demoUsers"])),
                                 within=60, what="an executor per demo user")
                try:
                    yield engine
                finally:
                    with trio.CancelScope(shield=True):
                        await engine.set_faults(**FAULTS_OFF)
                        for p in (pg_proxy, rpc_proxy):
                            if not p.enabled:
                                p.start()
                        node.request_shutdown()
                        with trio.move_on_after(30):
                            while node.state != "stopped":  # noqa: ASYNC110 -- the node's own state
                                await trio.sleep(0.05)
                        nursery.cancel_scope.cancel()
    finally:
        shutil.rmtree(home, ignore_errors=True)


async def _executors_running(engine: Engine, count: int) -> bool:
    views = engine.status()["executors"]
    return len(views) >= count and all(v["state"] != "stopped" for v in views.values())


@pytest.fixture
async def engine(chain: LocalnetNode, pg_server: EmbeddedPostgres, redis_server: EmbeddedRedis,  # noqa: F811
                 db_url: str) -> AsyncIterator[Engine]:  # noqa: F811
    """A node that trades only what the test asks (no tracked traders, so no leader)."""
    async with run_engine(chain, pg_server, redis_server, db_url) as engine:
        yield engine


async def drill(engine: Engine, owner: str, usd: float = 3.0, source: str = "USDC",
                target: str = "JUP") -> dict[str, Any]:
    """The ``trade`` drill through the command table; its answer (job_id, intent_id, amount_in)."""
    answer: dict[str, Any] = await engine.cmd("trade", user=owner, input=source, output=target, usd=usd)
    return answer


async def attempts(engine: Engine, intent: str) -> list[dict[str, Any]]:
    return await engine.trades("intent_id = $1", intent)


async def wait_status(engine: Engine, intent: str, attempt: int, statuses: set[str], *,
                      within: float = 20.0) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        for row in await attempts(engine, intent):
            if row["attempt"] == attempt and row["status"] in statuses:
                return row
        return None
    return await eventually(check, within=within, what=f"{intent} attempt {attempt} in {statuses}")


__all__ = ["CommandError", "Engine", "attempts", "drill", "eventually", "run_engine", "wait_status"]
