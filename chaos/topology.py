"""The system under chaos: engine -> fault proxy -> {local chain RPC, price API, Postgres, Redis}.

Owns: bringing the topology up and down inside one nursery (``open_topology``): an embedded
PostgreSQL and Redis of its own (`engine.embedded_postgres` / `engine.embedded_redis`), a local
chain (``python -m localnet --genesis market --admin`` with fast slots and a short blockhash
window, so expiry settles in seconds), a toxiproxy server (the one at ``toxiproxy_url`` /
``$TOXIPROXY_URL``, else our fault proxy in-process), one proxy per dependency (``rpc``,
``rpc_backup``, ``price``, ``postgres``, ``redis``) on fixed loopback ports -- so a proxy that is
disabled and enabled again comes back on the same address, as a restarted server would -- and
the engine as a subprocess whose environment points at the proxies only. The harness itself
reads the database and the chain DIRECTLY (``Topology.db``, ``Topology.rpc``), never through a
fault.

Engine life: ``start_engine``, ``wait_ready`` (the control socket answers ``status`` with state
running and the demo users' executors started), ``stop_engine`` (SIGTERM, then SIGKILL after a
grace), ``kill_engine`` (kill -9), ``restart_engine``; ``ctl`` sends one control command.

Failure it contains: a part that does not come up within its deadline (``TopologyError`` naming
the part and its log file), an engine that exits while awaited (``EngineExited`` with the tail of
its log). Everything started here is stopped when the block exits, however it exits.

May import: the standard library, trio, attrs, solders, `engine` (embedded servers, gateway,
control client), `actors.rpc_client`, `contracts.vault_client`, `chaos.toxiproxy_client`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import attrs
import httpx
import trio
from solders.pubkey import Pubkey

from actors.rpc_client import RetryPolicy, RpcClient
from chaos.toxiproxy_client import ProxyInfo, ToxiproxyClient, ToxiproxyError, open_toxiproxy
from contracts.vault_client import VaultClient
from engine.control_client import ControlError, request
from engine.embedded_postgres import EmbeddedPostgres, run_embedded_postgres
from engine.embedded_process import free_loopback_port
from engine.embedded_redis import EmbeddedRedis, run_embedded_redis
from engine.postgres_gateway import PostgresGateway

__all__ = [
    "PROXIES",
    "ChainSettings",
    "EngineExited",
    "EngineSettings",
    "Topology",
    "TopologyError",
    "open_topology",
]

_log = logging.getLogger("xorj.chaos.topology")

PROXIES: Final = ("rpc", "rpc_backup", "price", "postgres", "redis")
CHAIN_START_S: Final = 180.0  # the market genesis lands ~11,000 transactions
ENGINE_READY_S: Final = 120.0
ENGINE_STOP_GRACE_S: Final = 20.0
_NOT_STARTED: Final = frozenset({"starting", "stopped", "stopping", "crashed", "down", "failed",
                                  "restarting"})
_PASSED_ENV: Final = frozenset({"PATH", "HOME", "USER", "LANG", "TZ", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH"})
ROOT: Final = Path(__file__).resolve().parents[1]  # the project: the subprocesses' working dir


class TopologyError(Exception):
    """A part of the topology did not come up (or answer) within its deadline."""


class EngineExited(TopologyError):
    """The engine process exited while the harness waited on it."""


@attrs.frozen
class ChainSettings:
    """The local chain's clock: 100 ms slots and a 40-slot window make a blockhash expire in ~4 s."""

    slot_ms: int = 100
    blockhash_window: int = 40
    finalize_slots: int = 4
    confirm_slots: int = 1
    seed: int = 11
    # No market maker: it walks each pool back to its own target within a few slots, which would
    # undo the slippage scenario's real pool move; prices still come from the live reserves.
    market_maker_slots: int = 0

    def argv(self) -> list[str]:
        return ["--slot-ms", str(self.slot_ms), "--blockhash-window", str(self.blockhash_window),
                "--finalize-slots", str(self.finalize_slots), "--confirm-slots", str(self.confirm_slots),
                "--market-maker-slots", str(self.market_maker_slots), "--seed", str(self.seed),
                "--genesis", "market", "--admin", "--no-live-traders"]


@attrs.frozen
class EngineSettings:
    """The engine's timing knobs under chaos: short enough that a scenario settles in seconds."""

    scoring_interval_s: float = 3600.0
    executor_check_s: float = 3.0
    price_stale_s: float = 8.0
    slippage_retries: int = 2
    confirm_timeout_s: float = 30.0
    breaker_recovery_s: float = 5.0
    rpc_rate_per_s: float = 2000.0
    # Every fault's alert must reach the table: the default 300 s window would fold a later
    # scenario's dependency_down for a user into an earlier scenario's.
    alert_dedup_s: float = 1.0
    extra_env: Mapping[str, str] = attrs.field(factory=dict)

    def env(self) -> dict[str, str]:
        return {
            "SCORING_INTERVAL_SECONDS": f"{self.scoring_interval_s:g}",
            "EXECUTOR_CHECK_SECONDS": f"{self.executor_check_s:g}",
            "PRICE_STALE_SECONDS": f"{self.price_stale_s:g}",
            "SLIPPAGE_RETRIES": str(self.slippage_retries),
            "CONFIRM_TIMEOUT_SECONDS": f"{self.confirm_timeout_s:g}",
            "BREAKER_RECOVERY_SECONDS": f"{self.breaker_recovery_s:g}",
            "SOLANA_RPC_RATE_PER_S": f"{self.rpc_rate_per_s:g}",
            "ALERT_DEDUP_SECONDS": f"{self.alert_dedup_s:g}",
            **self.extra_env,
        }


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


def _via(url: str, listen: str) -> str:
    """``url`` with its host:port replaced by the proxy's listen address (credentials kept)."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{listen}" if userinfo else listen))


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no log at {path})"


class Topology:
    """The running parts; made by ``open_topology``, valid inside its block."""

    def __init__(
        self, workdir: Path, nursery: trio.Nursery, manifest: Mapping[str, Any], postgres: EmbeddedPostgres,
        redis: EmbeddedRedis, toxiproxy: ToxiproxyClient, toxiproxy_kind: str, toxiproxy_version: str,
        proxies: Mapping[str, ProxyInfo], db: PostgresGateway, rpc: RpcClient, engine: EngineSettings,
        since_slot: int,
    ) -> None:
        self.workdir = workdir
        self.nursery = nursery
        self.manifest = manifest
        self.postgres = postgres
        self.redis = redis
        self.toxiproxy = toxiproxy
        self.toxiproxy_kind = toxiproxy_kind
        self.toxiproxy_version = toxiproxy_version
        self.proxies = dict(proxies)
        self.db = db
        self.rpc = rpc
        self.engine_settings = engine
        self.since_slot = since_slot
        self.control_socket = workdir / "engine" / "control.sock"
        self.engine_log = workdir / "engine.log"
        self._engine: trio.Process | None = None

    # --- what the scenarios read ---

    @property
    def chain_url(self) -> str:
        return str(self.manifest["rpcUrl"])

    @property
    def demo_owners(self) -> list[str]:
        return [str(u["owner"]) for u in self.manifest.get("demoUsers", [])]

    @property
    def vaults(self) -> list[Pubkey]:
        program = VaultClient(Pubkey.from_string(self.manifest["programs"]["vault"]))
        return [program.vault(Pubkey.from_string(owner)) for owner in self.demo_owners]

    def mint(self, symbol: str) -> Pubkey:
        return Pubkey.from_string(self.manifest["mints"][symbol]["mint"])

    def engine_env(self) -> dict[str, str]:
        listen = {name: proxy.listen for name, proxy in self.proxies.items()}
        home = self.workdir / "engine"
        # Only the process basics pass through: no setting of the operator's own engine (a
        # BOT_KEYPAIR_PATH, a DATABASE_URL...) may leak into the engine under test.
        env = {k: v for k, v in os.environ.items() if k in _PASSED_ENV or k.startswith("LC_")}
        env.update({
            "DATABASE_URL": _via(self.postgres.url, listen["postgres"]),
            "REDIS_URL": _via(self.redis.url, listen["redis"]),
            "SOLANA_RPC_URL": f"http://{listen['rpc']}",
            "SOLANA_RPC_BACKUP_URL": f"http://{listen['rpc_backup']}",
            "PRICE_API_URL": f"http://{listen['price']}",
            "LOCALNET_MANIFEST": str(self.workdir / "chain" / "manifest.json"),
            "XORJ_HOME": str(home),
            "XORJ_CONTROL_SOCKET": str(self.control_socket),
            "METRICS_PORT": "0",
            "XORJ_FAULT_INJECTION": "1",
            "LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
            **self.engine_settings.env(),
        })
        return env

    # --- the engine process ---

    @property
    def engine_running(self) -> bool:
        return self._engine is not None and self._engine.returncode is None

    @property
    def engine_pid(self) -> int | None:
        return self._engine.pid if self.engine_running and self._engine is not None else None

    async def start_engine(self) -> None:
        if self.engine_running:
            raise TopologyError("the engine is already running")
        (self.workdir / "engine").mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-c", "import sys; from engine.cli import main; sys.exit(main(['run']))"]
        with self.engine_log.open("ab") as log:
            self._engine = await trio.lowlevel.open_process(
                argv, env=self.engine_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True, cwd=str(ROOT))
        _log.info("engine started", extra={"pid": self._engine.pid})

    async def stop_engine(self, grace_s: float = ENGINE_STOP_GRACE_S) -> int | None:
        """SIGTERM, then SIGKILL after ``grace_s``; the exit code (None if it was not running)."""
        process = self._engine
        if process is None:
            return None
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            with trio.move_on_after(grace_s):
                await process.wait()
            if process.returncode is None:
                _log.warning("engine ignored SIGTERM; killing it", extra={"pid": process.pid})
                process.kill()
        with trio.CancelScope(shield=True), trio.fail_after(10):
            await process.wait()
        return process.returncode

    async def kill_engine(self) -> None:
        """kill -9: no shutdown path runs (crash-only recovery is what the next start does)."""
        process = self._engine
        if process is None or process.returncode is not None:
            raise TopologyError("the engine is not running")
        process.kill()  # SIGKILL
        with trio.fail_after(10):
            await process.wait()

    async def restart_engine(self, *, kill: bool = False, within: float = ENGINE_READY_S) -> None:
        if kill:
            await self.kill_engine()
        else:
            await self.stop_engine()
        await self.start_engine()
        await self.wait_ready(within=within)

    async def ctl(self, command: str, args: Mapping[str, object] | None = None, *,
                  timeout: float = 10.0) -> Any:
        """One control command; ``ControlError`` carries the engine's refusal."""
        call = partial(request, self.control_socket, command, dict(args or {}), timeout)
        with trio.fail_after(timeout + 2):
            return await trio.to_thread.run_sync(call, abandon_on_cancel=True)

    def _check_alive(self) -> None:
        if self._engine is None:
            raise EngineExited("the engine was never started")
        if self._engine.returncode is not None:
            raise EngineExited(f"the engine exited with {self._engine.returncode}; "
                               f"last lines of {self.engine_log}:\n{_tail(self.engine_log)}")

    async def engine_status(self) -> Mapping[str, Any] | None:
        """The engine's ``status``, or None if it does not answer (yet)."""
        try:
            status = await self.ctl("status", timeout=3.0)
        except (ControlError, trio.TooSlowError):
            return None
        return status if isinstance(status, Mapping) else None

    def is_ready(self, status: Mapping[str, Any] | None) -> bool:
        """Running, trading on (the desk is up) and every demo user's executor started: the drill
        needs the user's executor, so a scenario that began before them would be refused."""
        if status is None or status.get("state") != "running":
            return False
        trading = status.get("trading")
        if not isinstance(trading, Mapping) or trading.get("market") is None:
            return False
        executors = trading.get("executors")
        if not isinstance(executors, Mapping):
            return False
        started = {str(view.get("owner")) for view in executors.values()
                   if isinstance(view, Mapping) and str(view.get("state")).lower() not in _NOT_STARTED}
        return set(self.demo_owners) <= started

    async def wait_ready(self, *, within: float = ENGINE_READY_S) -> float:
        """Wait until the engine is ready; returns the seconds it took."""
        start = trio.current_time()
        with trio.move_on_after(within):
            while True:
                self._check_alive()
                if self.is_ready(await self.engine_status()):
                    return trio.current_time() - start
                await trio.sleep(0.2)
        self._check_alive()
        raise TopologyError(f"the engine was not ready within {within:g}s; see {self.engine_log}:\n"
                            f"{_tail(self.engine_log)}")

    # --- the chain's admin knobs (direct, not through the proxy) ---

    async def chain_admin(self, method: str, params: object, *, timeout: float = 10.0) -> Any:
        async with httpx.AsyncClient() as http:
            with trio.fail_after(timeout):
                answer = (await http.post(self.chain_url, json={
                    "jsonrpc": "2.0", "id": 1, "method": method, "params": params})).json()
        if "error" in answer:
            raise TopologyError(f"{method}: {answer['error']}")
        return answer["result"]

    async def set_chain_faults(self, *, drop_rate: float = 0.0, land_delay_slots: int = 0,
                               error_after_landing: bool = False) -> None:
        await self.chain_admin("localnet_setFaults", [{
            "dropRate": drop_rate, "landDelaySlots": land_delay_slots,
            "errorAfterLanding": error_after_landing}])


@asynccontextmanager
async def _chain(workdir: Path, settings: ChainSettings) -> AsyncIterator[dict[str, Any]]:
    """``python -m localnet`` until the block exits; yields its manifest once it serves."""
    folder = workdir / "chain"
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.json"
    log_path = workdir / "chain.log"
    argv = [sys.executable, "-m", "localnet", "--rpc-port", "0", "--price-port", "0",
            "--manifest", str(manifest), *settings.argv()]
    process = await trio.lowlevel.open_process(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True, cwd=str(ROOT),
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert process.stdout is not None
    serving = trio.Event()

    async def pump() -> None:
        # The node prints "localnet listening on ..." once it serves (its manifest written first);
        # the rest of its output goes to the log file so the pipe never fills.
        assert process.stdout is not None
        async with await trio.open_file(log_path, "ab") as log:
            buffer = b""
            async for chunk in process.stdout:
                await log.write(chunk)
                buffer = (buffer + chunk)[-4096:]
                if b"localnet listening on" in buffer:
                    serving.set()
        serving.set()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pump)
            with trio.move_on_after(CHAIN_START_S) as waiting:
                await serving.wait()
            if waiting.cancelled_caught:
                raise TopologyError(
                    f"the local chain did not serve within {CHAIN_START_S:g}s; see {log_path}")
            if process.returncode is not None or not manifest.exists():
                raise TopologyError(f"the local chain exited while starting; see {log_path}:\n"
                                    f"{_tail(log_path)}")
            yield json.loads(manifest.read_text())
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                with trio.move_on_after(15):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()


async def _serve_gateway(gateway: PostgresGateway, nursery: trio.Nursery) -> None:
    with trio.fail_after(60):
        await nursery.start(gateway.serve)


@asynccontextmanager
async def open_topology(
    workdir: Path, *, toxiproxy_url: str | None = None, seed: int | None = None,
    chain: ChainSettings = ChainSettings(), engine: EngineSettings = EngineSettings(),
    start_engine: bool = True,
) -> AsyncIterator[Topology]:
    """Bring every part up (the engine last, waited ready unless ``start_engine`` is false) and
    take every part down when the block exits."""
    await trio.to_thread.run_sync(partial(workdir.mkdir, parents=True, exist_ok=True))
    home = workdir / "servers"
    url = toxiproxy_url or os.environ.get("TOXIPROXY_URL") or None
    async with (
        run_embedded_postgres(home) as postgres,
        run_embedded_redis(home) as redis,
        _chain(workdir, chain) as manifest,
        open_toxiproxy(url, seed=seed) as toxiproxy,
        trio.open_nursery() as nursery,
    ):
        version = await toxiproxy.version()
        upstreams = {
            "rpc": _host_port(manifest["rpcUrl"]), "rpc_backup": _host_port(manifest["rpcUrl"]),
            "price": _host_port(manifest["priceUrl"]), "postgres": f"127.0.0.1:{postgres.port}",
            "redis": f"127.0.0.1:{redis.port}",
        }
        # populate creates or replaces by name: a real server left with our proxies by an earlier
        # run is reused cleanly. Fixed ports: re-enabling a proxy must not move it.
        await toxiproxy.reset()
        created = await toxiproxy.populate([
            {"name": name, "upstream": upstream, "listen": f"127.0.0.1:{free_loopback_port()}",
             "enabled": True}
            for name, upstream in upstreams.items()])
        proxies = {p.name: p for p in created}
        db = PostgresGateway(postgres.url, pool_min=1, pool_max=4, name="chaos-evidence")
        await _serve_gateway(db, nursery)
        async with RpcClient(manifest["rpcUrl"], rate_per_s=2000.0, burst=200, default_timeout_s=10.0,
                             retry=RetryPolicy(retries=2, min_s=0.05, max_s=0.5)) as rpc:
            with trio.fail_after(10):
                since_slot = await rpc.get_slot()
            topology = Topology(
                workdir, nursery, manifest, postgres, redis, toxiproxy,
                "external" if url else "xorj-fault-proxy", version, proxies, db, rpc, engine, since_slot)
            try:
                if start_engine:
                    await topology.start_engine()
                    await topology.wait_ready()
                yield topology
            finally:
                with trio.CancelScope(shield=True):
                    await topology.stop_engine()
                    for name in proxies:
                        try:
                            with trio.move_on_after(5):
                                await toxiproxy.delete_proxy(name)
                        except ToxiproxyError as exc:  # logged; the rest of the teardown goes on
                            _log.warning("could not delete proxy", extra={"proxy": name, "error": str(exc)})
            nursery.cancel_scope.cancel()
