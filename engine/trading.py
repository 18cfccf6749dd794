"""Copy trading's wiring: the parts the node creates once, the children it supervises, the enabler.

Owns: `Trading` -- built by the node at start, it holds what outlives every actor incarnation
(the price book, the leader book, the subscriber lists, the kill-switch view, the breakers, the
stores, the RPC adapter with its blockhash cache) and, once the market is known, the `Desk` the
executors share (market, bot key, vault client, router). `children()` gives the tree's trading
children in start order:

```
alerter       -- first: everything after it reports through it
price_feed    -- the market's mints (needs the manifest)
trader_watch  -- leaders per risk profile from the latest ranking
risk          -- the kill switches: loaded from Postgres before anything trades, then followed
executors     -- dynamic: one Executor per enabled user
trading       -- start-up: settle disabled users' leftovers, enrol demo users, start executors
```

The market comes from a local chain's manifest: the embedded chain's, or ``LOCALNET_MANIFEST``
for a chain run elsewhere (the chaos harness, the crash-safety test). Without one the trading
children idle and say so: there is no mainnet market definition yet (see the issue notes).

`Enabler` is the node's `engine.user_commands.UserEnabler`: enable checks the vault on chain
(exists, active, this engine's bot as authority) and starts the executor (idempotent); disable
stops it -- the executor finishes the attempt in flight (its grace exceeds the confirmation
deadline) and starts nothing new.

Failure it contains: a bot key that cannot be used (`BotKeyError`: trading idles with the reason
in the log and in ``status``, the node keeps running), a database or RPC that is down at start-up
(the start-up child retries with back-off).

May import: the standard library, trio, attrs, solders, `actors`, `contracts`, `supervisors`,
`sql`, `engine`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import trio
from solders.pubkey import Pubkey

from actors.actor import Actor
from actors.alerter import Alerter
from actors.alerts import alerter_sink
from actors.executor import (
    Desk,
    Executor,
    ExecutorSettings,
    Market,
    conflate_executor,
    executor_name,
    tick_executors,
)
from actors.job_store import JobStore
from actors.kill_switches import KillSwitches, KillSwitchStore
from actors.price_feed import PriceBook, PriceFeed, PriceFeedSettings, PriceSubscribers, conflate_prices
from actors.router import SLOT_S, LocalAmmRouter
from actors.rpc_client import ActorRpc, RpcError
from actors.scorer import RankingsSubscribers
from actors.shared_rpc import SharedRpc
from actors.trade_execution import ExecutionSettings, no_checkpoint, reconcile
from actors.trade_store import TradeStore
from actors.trader_watch import LeaderBook, TargetSubscribers, TraderWatch, WatchSettings
from actors.trading_breakers import TradingBreakers
from actors.user_store import PROFILE_DEFAULTS, UserSettings, UserStore
from actors.vault_check import VaultCheck, check_vault
from contracts.amm_client import AmmClient
from contracts.vault_client import VaultClient
from engine.alert_commands import alerter_settings, redis_publisher
from engine.bot_key import BotKeyError, bot_key_path, describe_bot_key, load_bot_key
from engine.config import Config
from engine.gc_policy import freeze_long_lived
from engine.postgres_gateway import PostgresGateway
from engine.redis_gateway import RedisGateway
from engine.risk_commands import breaker_settings, kill_switch_mirror
from engine.services import AfterEvent
from engine.user_commands import enroll_demo_users
from sql.errors import DatabaseError
from supervisors import ActorNotFound, ChildSpec, DynamicSupervisor, Registry, ask
from supervisors.context import ChildContext
from supervisors.registry import DuplicateName
from supervisors.request import AskError
from supervisors.supervisor import StartChild, TerminateChild

__all__ = ["Enabler", "Trading", "market_from_manifest"]

log = logging.getLogger("xorj.trading")

DB_TIMEOUT_S: Final = 5.0
RPC_TIMEOUT_S: Final = 5.0
ASK_TIMEOUT_S: Final = 30.0


def market_from_manifest(manifest: Mapping[str, Any]) -> Market:
    """USDC and the pools' mints, with decimals and symbols, from a local chain's manifest."""
    mints = manifest["mints"]
    usdc = str(mints["USDC"]["mint"])
    pooled = {str(p["mint"]) for p in manifest.get("pools", {}).values()}  # symbol -> pool
    decimals = {str(m["mint"]): int(m["decimals"]) for m in mints.values()
                if str(m["mint"]) == usdc or str(m["mint"]) in pooled}
    symbols = {str(m["mint"]): str(symbol) for symbol, m in mints.items()}
    return Market(usdc, decimals, symbols)


def _crash_hook(point: str | None) -> Callable[[str], None]:
    if point is None:
        return no_checkpoint

    def crash(at: str) -> None:
        if at == point:
            log.warning("crash point reached: killing the engine", extra={"crash_at": at})
            for handler in logging.getLogger().handlers:
                handler.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    return crash


class _Idle(Actor):
    """Stands in for a trading child when there is no market: says why, then waits."""

    def __init__(self, name: str, why: str) -> None:
        self._name, self._why = name, why

    async def run(self, ctx: ChildContext) -> None:
        log.warning("trading child idle", extra={"child": self._name, "reason": self._why})
        ctx.started()
        while await ctx.receive() is not None:
            pass


class Trading:
    def __init__(
        self, config: Config, postgres: PostgresGateway, redis: RedisGateway, registry: Registry,
        rankings: RankingsSubscribers, database_ready: trio.Event,
        manifest_path: Callable[[], Path | None],
    ) -> None:
        self.config = config
        self.postgres = postgres
        self.registry = registry
        self.rankings = rankings
        self.database_ready = database_ready
        self._manifest_path = manifest_path
        self.users = UserStore(postgres, DB_TIMEOUT_S)
        self.trades = TradeStore(postgres, DB_TIMEOUT_S)
        self.jobs = JobStore(postgres, DB_TIMEOUT_S)
        self.alerts = alerter_sink(registry.ref("alerter"))
        self.prices = PriceBook(config.price_stale_seconds)
        self.price_subscribers = PriceSubscribers()
        self.leaders = LeaderBook()
        self.targets = TargetSubscribers()
        self.switch_store = KillSwitchStore(postgres, DB_TIMEOUT_S)
        self.switches = KillSwitches(alerts=self.alerts, mirror=kill_switch_mirror(redis))
        self.breakers = TradingBreakers(breaker_settings(config), alerts=self.alerts)
        self.rpc = SharedRpc(ActorRpc(registry.ref("rpc_client"), default_timeout_s=RPC_TIMEOUT_S))
        self.redis = redis
        self.desk: Desk | None = None
        self.manifest: dict[str, Any] | None = None
        self.off_reason: str | None = None
        self.enabler = Enabler(self)

    # ------------------------------------------------------------------ the market

    def open(self) -> Desk | None:
        """The desk, built on first use from the manifest; None (and `off_reason`) without one."""
        if self.desk is not None or self.off_reason is not None:
            return self.desk
        path = self.config.localnet_manifest or self._manifest_path()
        if path is None:
            self.off_reason = ("no market: trading needs a local chain's manifest (embedded mode, or"
                               " LOCALNET_MANIFEST)")
            return None
        try:
            self.manifest = json.loads(path.read_text())
            assert self.manifest is not None
            market = market_from_manifest(self.manifest)
            bot = load_bot_key(bot_key_path(self.config, self.manifest))
        except BotKeyError as exc:
            self.off_reason = f"bot key: {exc}"
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.off_reason = f"market manifest {path}: {type(exc).__name__}: {exc}"
            return None
        programs = self.manifest["programs"]
        vault = VaultClient(Pubkey.from_string(programs["vault"]))
        amm = AmmClient(Pubkey.from_string(programs["amm"]))
        cfg = self.config
        execution = ExecutionSettings(
            programs={str(vault.program_id): "vault", str(amm.program_id): "amm"},
            rpc_timeout_s=RPC_TIMEOUT_S, settle_within_s=cfg.confirm_timeout_seconds, poll_s=0.1,
            resend_every_s=2.0, checkpoint=_crash_hook(cfg.xorj_crash_at))
        self.desk = Desk(
            trades=self.trades, jobs=self.jobs, users=self.users, rpc=self.rpc, bot=bot, vault=vault,
            router=LocalAmmRouter(self.rpc, amm, reserve_max_age_s=SLOT_S),  # pool reserves: one slot
            prices=self.prices, leaders=self.leaders, switches=self.switches, breakers=self.breakers,
            alerts=self.alerts, market=market,
            settings=ExecutorSettings(
                min_trade_usd=cfg.min_trade_usd,
                default_max_trade_usd=Decimal(str(cfg.default_max_trade_usd)),
                slippage_retries=cfg.slippage_retries, price_move_trigger_pct=cfg.price_move_trigger_pct,
                check_s=cfg.executor_check_seconds, execution=execution, rpc_timeout_s=RPC_TIMEOUT_S),
            targets=self.targets, price_subscribers=self.price_subscribers)
        log.info("trading market open", extra={
            "bot": describe_bot_key(bot), "mints": len(market.decimals), "usdc": market.usdc_mint})
        return self.desk

    def _market_child(self, name: str, build: Callable[[Desk], Actor]) -> Callable[[], Actor]:
        def start() -> Actor:
            desk = self.open()
            if desk is None:
                return _Idle(name, self.off_reason or "no market")
            return build(desk)
        return start

    # ------------------------------------------------------------------ the tree

    def children(self) -> list[ChildSpec]:
        cfg = self.config
        publish = redis_publisher(self.redis)

        def price_feed(desk: Desk) -> Actor:
            url = cfg.price_api_url or (self.manifest or {}).get("priceUrl")
            if not isinstance(url, str):
                return _Idle("price_feed", "no PRICE_API_URL and no priceUrl in the manifest")
            mints = tuple(m for m in desk.market.decimals if m != desk.market.usdc_mint)
            return AfterEvent(self.database_ready, PriceFeed(
                PriceFeedSettings(url=url, mints=mints, poll_s=cfg.price_poll_seconds,
                                  stale_s=cfg.price_stale_seconds, max_jump_pct=cfg.price_max_jump_pct),
                self.prices, self.price_subscribers, db=self.postgres, alert=self.alerts, publish=publish))

        def trader_watch(desk: Desk) -> Actor:
            limits = {p.value: float(d.max_trader_drawdown_pct) for p, d in PROFILE_DEFAULTS.items()}
            return AfterEvent(self.database_ready, TraderWatch(
                self.postgres, self.rpc, self.leaders, self.targets, self.rankings, desk.market.decimals,
                WatchSettings(max_drawdown_pct=limits, poll_s=cfg.trader_poll_seconds)))

        return [
            ChildSpec("alerter", lambda: Alerter(self.postgres, alerter_settings(cfg), publish=publish),
                      shutdown_s=5.0),
            ChildSpec("price_feed", self._market_child("price_feed", price_feed), shutdown_s=5.0,
                      conflate=conflate_prices),
            ChildSpec("trader_watch", self._market_child("trader_watch", trader_watch), shutdown_s=5.0),
            ChildSpec("risk", lambda: _RiskWatch(self), shutdown_s=5.0),
            ChildSpec("executors", lambda: DynamicSupervisor(max_restarts=50, period=60.0),
                      shutdown_s=cfg.confirm_timeout_seconds + 30.0),
            ChildSpec("trading", lambda: _TradingStart(self), shutdown_s=5.0),
        ]

    def executor_spec(self, desk: Desk, user: UserSettings) -> ChildSpec:
        return ChildSpec(
            executor_name(user.user_id), lambda: Executor(desk, user),
            shutdown_s=self.config.confirm_timeout_seconds + 15.0, mailbox_capacity=64,
            conflate=conflate_executor, metrics_label="executor")

    def status(self) -> dict[str, object]:
        desk = self.desk
        return {
            "market": None if desk is None else {
                "usdc": desk.market.usdc_mint, "mints": len(desk.market.decimals)},
            "off_reason": self.off_reason,
            "kill_switches": self.switches.snapshot(),
            "open_breakers": list(self.breakers.open_breakers()),
            "breakers": {name: state.value for name, state in self.breakers.states().items()},
            "leaders": {p: {"wallet": lead.wallet, "run_id": lead.run_id, "score": lead.score}
                        for p, lead in self.leaders.snapshot().items()},
            "executors": {} if desk is None else {uid: v.as_dict() for uid, v in sorted(desk.views.items())},
        }


class _RiskWatch(Actor):
    """The kill-switch view: loaded from Postgres (retrying) before the executors start, then
    refreshed and following the Redis mirror."""

    def __init__(self, trading: Trading) -> None:
        self._trading = trading

    async def run(self, ctx: ChildContext) -> None:
        trading = self._trading
        await trading.database_ready.wait()
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: trading.switches.watch(
                trading.switch_store, task_status=task_status))
            ctx.started()
            while await ctx.receive() is not None:
                pass
            nursery.cancel_scope.cancel()


class _TradingStart(Actor):
    """Once per start of the trading subtree: settle the trades of users that are not enabled
    (no executor will), enrol the local chain's demo users (ENROLL_DEMO_USERS, on by default: a
manifest means a local chain), start an executor per enabled user, then freeze the long-lived heap
(`engine.gc_policy`)."""

    def __init__(self, trading: Trading) -> None:
        self._trading = trading

    async def run(self, ctx: ChildContext) -> None:
        ctx.started()
        trading = self._trading
        await trading.database_ready.wait()
        desk = trading.open()
        if desk is None:
            log.warning("trading is off", extra={"reason": trading.off_reason})
        else:
            delay = 0.5
            while True:
                try:
                    await self._start(desk)
                    break
                except (DatabaseError, RpcError) as exc:
                    log.warning("trading start-up failed; retrying",
                                extra={"error": str(exc), "retry_in_s": delay})
                    await trio.sleep(delay)
                    delay = min(delay * 2, 15.0)
        async with trio.open_nursery() as nursery:
            if desk is not None:
                nursery.start_soon(tick_executors, desk)  # one timer for every executor
            while await ctx.receive() is not None:
                pass
            nursery.cancel_scope.cancel()

    async def _start(self, desk: Desk) -> None:
        trading = self._trading
        enabled = {u.user_id: u for u in await trading.users.enabled()}
        orphans = [t for t in await trading.trades.non_terminal() if t.user_id not in enabled]
        for user_id in sorted({t.user_id for t in orphans}):
            settled = await reconcile(trading.trades, desk.rpc, desk.settings.execution, user_id=user_id)
            log.info("settled a disabled user's trades", extra={"user": user_id, "trades": len(settled)})
        if trading.manifest is not None and trading.config.enroll_demo_users:
            owners = await enroll_demo_users(trading.users, trading.enabler, trading.manifest)
            log.info("demo users enrolled", extra={"enabled": len(owners)})
        for user in await trading.users.enabled():
            await trading.enabler.start(user)
        log.info("executors started", extra={"executors": len(trading.targets)})
        freeze_long_lived()  # the node's long-lived state is built: later collections skip it


class Enabler:
    """`engine.user_commands.UserEnabler` for the node."""

    def __init__(self, trading: Trading) -> None:
        self._trading = trading

    def _desk(self) -> Desk:
        desk = self._trading.open()
        if desk is None:
            raise RpcError(f"trading is off: {self._trading.off_reason}")
        return desk

    async def enable(self, user: UserSettings) -> VaultCheck:
        desk = self._desk()
        check = await check_vault(desk.rpc, desk.vault, Pubkey.from_string(user.owner), desk.bot.pubkey(),
                                  timeout=RPC_TIMEOUT_S)
        if check.ok:
            await self.start(user)
        return check

    async def start(self, user: UserSettings) -> None:
        desk = self._desk()
        try:
            await ask(self._trading.registry.ref("executors"),
                      StartChild(self._trading.executor_spec(desk, user)), timeout=ASK_TIMEOUT_S)
        except DuplicateName:
            return  # already running: enabling is idempotent
        except (ActorNotFound, AskError) as exc:
            raise RpcError(f"the executors supervisor cannot start {user.user_id}: {exc}") from exc

    async def disable(self, user: UserSettings) -> None:
        try:
            await ask(self._trading.registry.ref("executors"), TerminateChild(executor_name(user.user_id)),
                      timeout=self._trading.config.confirm_timeout_seconds + 30.0)
        except ActorNotFound:
            return  # not running
        except AskError as exc:
            raise RpcError(f"the executor of {user.user_id} did not stop: {exc}") from exc
