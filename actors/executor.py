"""The executor: one actor per enabled user, mirroring the followed trader into the user's vault.

Owns: the `Executor` actor, the `Desk` of node-wide parts every executor shares (stores, RPC,
bot key, router, price book, leader book, kill switches, breakers, alert sink), its messages
(`ManualTrade`; the periodic `Check` and `tick_executors`, the one timer that tells it to all)
and the per-user view the operator reads (`ExecutorView`).

One incarnation's life (DESIGN sections 5, 6 and 8):

1. start: subscribe to leader changes and price ticks; **reconcile** the user's non-terminal
   trades (`trade_execution.reconcile`: the same code as after a crash), close the jobs a crash
   left RUNNING, then rebalance once;
2. triggers -- `TargetChanged` for the user's profile (a new ranking, a new swap by the trader),
   `PricesUpdated` when a price moved more than ``price_move_trigger_pct`` since the last plan, the
   periodic ``check_s`` timer (every ``reconcile_every``-th also reconciles) -- each run one
   rebalance: reload the user's settings (a ``users set`` takes effect at the next trigger), read
   the vault, weigh the leader's holdings at fresh prices, `plan_rebalance`, write the plan as an
   ``execution_jobs`` row naming the trader and the scoring run, then run its legs in order;
3. a leg: its intent id is deterministic (user, job, leg number); quote through the `Router`; the
   first attempt is inserted PENDING and run by `execute_attempt` (sign, persist, send, confirm);
   a FAILED ``slippage_exceeded`` or ``expired`` (proven never to land) is retried as a new
   attempt of the same intent, re-quoted, with a wider slippage -- attempt k of N+1 uses
   ``tolerance * k / (N+1)``, so the last one uses exactly the user's tolerance and never more;
4. before every intent and every new attempt the kill switches and breakers are read again: an
   engaged switch stops new work at once (the job is CANCELLED) while the attempt in flight runs
   to its terminal state; so does a stop of the executor (a disable), whose grace is longer than
   the confirmation deadline.

A `ManualTrade` (the ``xorj ctl trade`` drill, with fault injection on) is a one-leg job through
the same checks and the same lifecycle; it is answered as soon as its job is durable, with the
intent id its leg gets (deterministic), then executed. The intent's row follows once the route is
quoted; if the quote fails (RPC down) no intent is written and the job ends FAILED at the next
reconcile.

Failure it contains: the database or the RPC failing mid-rebalance (typed `DatabaseError`,
`RpcError`, `PortfolioError`): the executor pauses (visible in its view, an alert), sends nothing
more, and at the next trigger reconciles first and resumes. A trade still unsettled at the
confirmation deadline blocks new plans for the user until reconciliation settles it, so a late
landing can never be traded twice. Anything else is a bug and crashes the incarnation; the
supervisor restarts it and the start reconciles.

May import: the standard library, trio, attrs, solders, prometheus_client, `supervisors`, `actors`,
`contracts`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Hashable, Mapping
from decimal import Decimal
from typing import Any, Final

import attrs
import trio
from prometheus_client import Gauge, Histogram
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from actors.actor import Actor
from actors.alerts import Alert, AlertSink, Severity
from actors.job_store import JobStatus, JobStore
from actors.kill_switches import KillSwitches
from actors.planning import Limits, Plan, PlanInput, PlannedLeg, plan_rebalance
from actors.portfolio import Holding, PortfolioError, vault_holdings, weights
from actors.price_feed import PriceBook, PriceSubscribers, PricesUpdated
from actors.router import NoRoute, Router
from actors.rpc_client import RpcError, SolanaRpc
from actors.subscribers import Subscribers
from actors.trade_execution import ExecutionSettings, execute_attempt, reconcile
from actors.trade_lifecycle import FailureReason, TradeStatus, intent_id, is_terminal
from actors.trade_store import NewTrade, TradeRecord, TradeStore
from actors.trader_watch import LeaderBook, TargetChanged, TargetSubscribers
from actors.trading_breakers import BreakerKind, TradingBreakers
from actors.user_store import SLIPPAGE_HARD_CAP_PCT, UserSettings, UserStore
from contracts.vault_client import VaultClient
from sql.errors import DatabaseError
from supervisors.context import ChildContext
from supervisors.request import Request

__all__ = [
    "Check",
    "Desk",
    "Executor",
    "ExecutorSettings",
    "ExecutorView",
    "ManualTrade",
    "Market",
    "TradeRefused",
    "conflate_executor",
    "executor_name",
    "tick_executors",
]

log = logging.getLogger("xorj.executor")

EXECUTORS_ACTIVE: Final = Gauge("xorj_executors_active", "Executor actors running (one per enabled user)")
TRADE_LATENCY: Final = Histogram(
    "xorj_trade_latency_seconds", "From a trade's intent to its CONFIRMED status",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 90, 120))
DECISION_LATENCY: Final = Histogram(
    "xorj_decision_seconds", "From a trigger to the first signed, persisted transaction of its plan",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5))

_NO_RETRY_REASONS: Final = frozenset({FailureReason.UNAUTHORIZED, FailureReason.VAULT_INACTIVE})
# Outcomes a new attempt of the same intent may follow: the pool moved (wider slippage), or the
# blockhash expired -- which proves the attempt never lands, so a new one cannot execute twice.
_RETRY_REASONS: Final = frozenset({FailureReason.SLIPPAGE_EXCEEDED, FailureReason.EXPIRED})


def executor_name(user_id: str) -> str:
    return f"executor:{user_id}"


@attrs.frozen
class Market:
    """What the executors trade: the quote mint and every tradable mint's decimals and symbol."""

    usdc_mint: str
    decimals: Mapping[str, int] = attrs.field(hash=False)  # usdc included
    symbols: Mapping[str, str] = attrs.field(factory=dict, hash=False)


@attrs.frozen
class ExecutorSettings:
    min_trade_usd: float
    default_max_trade_usd: Decimal
    slippage_retries: int
    price_move_trigger_pct: float
    check_s: float
    execution: ExecutionSettings
    reconcile_every: int = 4  # every n-th periodic check also reconciles
    rpc_timeout_s: float = 5.0
    rebalance_band_pct: float = 1.0


@attrs.define
class Desk:
    """The node's shared parts, one instance for every executor (created by the node)."""

    trades: TradeStore
    jobs: JobStore
    users: UserStore
    rpc: SolanaRpc
    bot: Keypair = attrs.field(repr=False)  # the bot key: it lives here and signs, nowhere else
    vault: VaultClient
    router: Router
    prices: PriceBook
    leaders: LeaderBook
    switches: KillSwitches
    breakers: TradingBreakers
    alerts: AlertSink
    market: Market
    settings: ExecutorSettings
    targets: TargetSubscribers
    price_subscribers: PriceSubscribers
    views: dict[str, ExecutorView] = attrs.field(factory=dict)
    checks: Subscribers[Check] = attrs.field(factory=Subscribers)


@attrs.frozen
class ExecutorView:
    """One user's executor as ``xorj ctl status`` shows it."""

    user_id: str
    owner: str
    state: str  # starting | idle | trading | paused | waiting | stopped
    leader: str | None = None
    scoring_run_id: str | None = None
    detail: str | None = None
    last_job: str | None = None
    last_trigger: str | None = None
    last_plan_at: float | None = None  # wall time
    confirmed: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, object]:
        return attrs.asdict(self)


class TradeRefused(Exception):
    """A manual trade the checks refused (the reason names the check)."""


@attrs.frozen
class ManualTrade(Request[dict[str, object]]):
    """The ``trade`` drill: swap ``usd`` worth of ``input_mint`` into ``output_mint`` now."""

    input_mint: str
    output_mint: str
    usd: float


@attrs.frozen
class Check:
    """The periodic check, told to every executor at once by `tick_executors` (one timer for all:
    thousands of executors do not each keep a task and a deadline for it)."""


async def tick_executors(desk: Desk) -> None:
    """Tell every executor `Check` every ``check_s``, forever (the node runs it beside them)."""
    while True:
        await trio.sleep(desk.settings.check_s)
        desk.checks.publish(Check())


def conflate_executor(msg: Any) -> Hashable | None:
    """Mailbox conflation: only the newest target change, price tick and check are worth keeping."""
    if isinstance(msg, TargetChanged):
        return ("target", msg.profile)
    if isinstance(msg, PricesUpdated):
        return "prices"
    if isinstance(msg, Check):
        return "check"
    return None


class Executor(Actor):
    def __init__(self, desk: Desk, user: UserSettings) -> None:
        self.desk = desk
        self.user = user
        self.owner = Pubkey.from_string(user.owner)
        self._unsettled = True  # reconcile before the first plan
        self._priced_at: dict[str, float] = {}  # the prices the last plan used
        self._last_rejections: tuple[Any, ...] | None = None
        self._checks = 0
        self._paused: str | None = None
        self._ctx: ChildContext | None = None
        self._view = ExecutorView(user.user_id, user.owner, "starting")

    # ------------------------------------------------------------------ life

    async def run(self, ctx: ChildContext) -> None:
        self._ctx = ctx
        desk = self.desk
        desk.targets.add(ctx.self_ref)
        desk.price_subscribers.add(ctx.self_ref)
        desk.checks.add(ctx.self_ref)
        for mint in desk.market.decimals:  # derived once here (memoised), not on the decision path
            desk.vault.vault_token_account(self.owner, Pubkey.from_string(mint))
        self._show()
        ctx.started()
        EXECUTORS_ACTIVE.inc()
        try:
            await self._rebalance("start")
            while (msg := await ctx.receive()) is not None:
                await self.handle(ctx, msg)
        finally:
            EXECUTORS_ACTIVE.dec()
            desk.targets.remove(ctx.name)
            desk.price_subscribers.remove(ctx.name)
            desk.checks.remove(ctx.name)
            self._show(state="stopped")

    async def handle(self, ctx: ChildContext, msg: Any) -> None:
        if isinstance(msg, TargetChanged):
            if msg.profile == self.user.risk_profile.value:
                await self._rebalance(msg.trigger)
        elif isinstance(msg, PricesUpdated):
            if self._moved() or self._paused is not None or self._view.state == "waiting":
                await self._rebalance("price_move")
        elif isinstance(msg, Check):
            self._checks += 1
            if self._checks % self.desk.settings.reconcile_every == 0:
                self._unsettled = True
            await self._rebalance("periodic")
        elif isinstance(msg, ManualTrade):
            await self._manual(msg)
        else:
            raise TypeError(f"the executor does not handle {type(msg).__name__}")

    # ------------------------------------------------------------------ view

    def _show(self, **changes: Any) -> None:
        self._view = attrs.evolve(self._view, **changes)
        self.desk.views[self.user.user_id] = self._view

    def _pause(self, what: str, exc: Exception) -> None:
        detail = f"{what}: {exc}"
        if self._paused is None:
            log.warning("executor paused", extra={"user": self.user.user_id, "error": detail})
            self.desk.alerts(Alert(Severity.WARNING, "dependency_down", self.user.user_id,
                                   {"what": what, "error": str(exc)}))
        if what == "rpc":
            self.desk.breakers.record(self.user.user_id, BreakerKind.RPC_CONNECTIVITY, False)
        self._paused = detail
        self._unsettled = True  # whatever was in flight is settled before anything new
        self._show(state="paused", detail=detail)

    def _resume(self) -> None:
        if self._paused is not None:
            log.info("executor resumed", extra={"user": self.user.user_id})
            self.desk.alerts(Alert(Severity.INFO, "dependency_up", self.user.user_id,
                                   {"was": self._paused}))
            self._paused = None

    def _stopping(self) -> bool:
        return self._ctx is not None and self._ctx.stopping.is_set()

    # ------------------------------------------------------------------ triggers

    def _moved(self) -> bool:
        threshold = self.desk.settings.price_move_trigger_pct / 100.0
        for mint, before in self._priced_at.items():
            now = self.desk.prices.fresh(mint)
            if now is not None and before > 0 and abs(now.usd / before - 1.0) > threshold:
                return True
        return False

    async def _rebalance(self, trigger: str) -> None:
        if self._stopping():
            return
        started = time.perf_counter()
        try:
            if self._paused is not None and self._paused.startswith("rpc"):
                # A plan may not touch the RPC (no leader yet): resume only once it answers again.
                await self.desk.rpc.get_block_height(timeout=self.desk.settings.rpc_timeout_s)
            if self._unsettled and not await self._reconcile():
                return
            user = await self.desk.users.get(self.user.user_id)
            if user is None or not user.bot_enabled:
                self._show(state="waiting", detail="the user's bot is not enabled")
                return
            self.user = user
            await self._plan_and_trade(trigger, started)
            self._resume()
        except DatabaseError as exc:
            self._pause("database", exc)
        except (RpcError, PortfolioError) as exc:
            self._pause("rpc", exc)

    async def _reconcile(self) -> bool:
        """Settle the user's non-terminal trades; True when none is left (plans may follow)."""
        desk = self.desk
        before = {t.id: t for t in await desk.trades.non_terminal(self.user.user_id)}
        if before:
            log.info("reconciling", extra={"user": self.user.user_id, "trades": len(before)})
        after = await reconcile(desk.trades, desk.rpc, desk.settings.execution, user_id=self.user.user_id)
        for trade in after:
            self._settled(trade, reconciled_from=before.get(trade.id))
        left = [t.id for t in after if not is_terminal(t.status)]
        if left:
            self._show(state="waiting", detail=f"{len(left)} trade(s) not settled yet: {left[:3]}")
            return False
        await desk.jobs.close_interrupted(self.user.user_id)
        self._unsettled = False
        return True

    async def _plan_and_trade(self, trigger: str, started: float) -> None:
        desk, user = self.desk, self.user
        leader = desk.leaders.leader(user.risk_profile.value)
        if leader is None or leader.read_at is None:
            self._show(state="idle", leader=None, detail="no eligible trader for the profile yet")
            return
        market = desk.market
        vault = await vault_holdings(desk.rpc, desk.vault, self.owner, market.decimals,
                                     timeout=desk.settings.rpc_timeout_s)
        mints = set(market.decimals) | set(leader.holdings)
        fresh = {m: p.usd for m in mints if (p := desk.prices.fresh(m)) is not None}
        stale = frozenset(m for m in mints if m not in fresh and m != market.usdc_mint)
        plan = plan_rebalance(PlanInput(
            usdc_mint=market.usdc_mint,
            target_weights=weights(leader.holdings, fresh, usdc_mint=market.usdc_mint),
            vault=vault, prices=fresh, stale_mints=stale, limits=self._limits(),
            daily_loss_usd=await self._daily_loss(vault, fresh),
            global_kill=desk.switches.global_engaged(), user_kill=desk.switches.user_engaged(user.user_id),
            open_breakers=desk.breakers.open_breakers(user.user_id), symbols=market.symbols,
        ))
        self._priced_at = dict(fresh)
        planned: dict[str, Any] = {"leader": leader.wallet, "scoring_run_id": leader.run_id,
                                   "last_trigger": trigger, "last_plan_at": time.time()}
        rejections = tuple(plan.rejections)
        if not plan.legs:
            if rejections != self._last_rejections:  # a changed refusal is worth a row, a repeat is not
                planned["last_job"] = await desk.jobs.create(
                    user.user_id, trader=leader.wallet, scoring_run_id=leader.run_id, trigger=trigger,
                    plan=plan.as_json(), status=JobStatus.CANCELLED if plan.blocked else JobStatus.COMPLETED,
                    reason=_reason(plan) or "in balance")
            self._last_rejections = rejections
            self._show(state="paused" if plan.blocked else "idle", detail=_reason(plan), **planned)
            return
        self._last_rejections = rejections
        job = await desk.jobs.create(user.user_id, trader=leader.wallet, scoring_run_id=leader.run_id,
                                     trigger=trigger, plan=plan.as_json())
        self._show(state="trading", last_job=job, detail=f"{len(plan.legs)} leg(s)", **planned)
        await self._run_job(job, plan.legs, started)

    async def _run_job(self, job: str, legs: tuple[PlannedLeg, ...], started: float | None) -> None:
        desk = self.desk
        failed = 0
        for seq, leg in enumerate(legs):
            stop = self._stop_reason()
            if stop is not None:
                await desk.jobs.finish(job, JobStatus.CANCELLED, stop)
                self._show(state="idle", detail=stop)
                return
            trade = await self._leg(job, seq, leg, started)
            started = None  # the decision latency is the first leg's
            if trade is None or trade.status is not TradeStatus.CONFIRMED:
                failed += 1
            if trade is not None and not is_terminal(trade.status):
                self._unsettled = True
                await desk.jobs.finish(job, JobStatus.FAILED, f"trade {trade.id} not settled in time")
                self._show(state="waiting", detail=f"trade {trade.id} not settled in time")
                return
        await desk.jobs.finish(job, JobStatus.FAILED if failed else JobStatus.COMPLETED,
                               f"{failed} of {len(legs)} leg(s) failed" if failed else None)
        self._show(state="idle", detail=None)

    def _stop_reason(self) -> str | None:
        desk, uid = self.desk, self.user.user_id
        if desk.switches.global_engaged():
            return f"global kill switch: {desk.switches.reason('global')}"
        if desk.switches.user_engaged(uid):
            return "the user's kill switch is on"
        if breakers := desk.breakers.open_breakers(uid):
            return f"breaker open: {', '.join(breakers)}"
        if self._stopping():
            return "the executor is stopping"
        return None

    # ------------------------------------------------------------------ one leg

    def _limits(self) -> Limits:
        user, settings = self.user, self.desk.settings
        return Limits(
            min_trade_usd=settings.min_trade_usd,
            max_trade_usd=float(user.effective_max_trade_usd(settings.default_max_trade_usd)),
            slippage_pct=float(min(user.effective_slippage_pct, SLIPPAGE_HARD_CAP_PCT)),
            max_position_pct=float(user.effective_max_position_pct),
            max_daily_loss_usd=None if user.max_daily_loss_usd is None else float(user.max_daily_loss_usd),
            rebalance_band_pct=settings.rebalance_band_pct,
        )

    async def _daily_loss(self, vault: Mapping[str, Holding], prices: Mapping[str, float]) -> float:
        if self.user.max_daily_loss_usd is None:
            return 0.0
        start = await self.desk.jobs.day_start_value(self.user.user_id)
        if start is None:
            return 0.0
        now = sum(h.ui * (1.0 if m == self.desk.market.usdc_mint else prices.get(m, 0.0))
                  for m, h in vault.items())
        return max(0.0, start - now)

    def _slippages(self) -> list[Decimal]:
        """The slippage of each attempt: ``tolerance * k / (N+1)``; the last is the tolerance."""
        tolerance = min(self.user.effective_slippage_pct, SLIPPAGE_HARD_CAP_PCT)
        n = self.desk.settings.slippage_retries + 1
        return [(tolerance * k / n).quantize(Decimal("0.0001")) for k in range(1, n + 1)]

    async def _leg(self, job: str, seq: int, leg: PlannedLeg, started: float | None) -> TradeRecord | None:
        desk, uid = self.desk, self.user.user_id
        intent = intent_id(uid, job, seq)
        intent_at = time.monotonic()
        vault_pda = desk.vault.vault(self.owner)
        mint_in, mint_out = Pubkey.from_string(leg.input_mint), Pubkey.from_string(leg.output_mint)
        trade: TradeRecord | None = None
        for attempt, slippage in enumerate(self._slippages(), start=1):
            if attempt > 1 and (stop := self._stop_reason()) is not None:
                log.info("retry stopped", extra={"user": uid, "intent": intent, "why": stop})
                break
            try:
                quote = await desk.router.quote(
                    leg.input_mint, leg.output_mint, leg.amount_in, round(slippage * 100),
                    authority=vault_pda, source=desk.vault.vault_token_account(self.owner, mint_in),
                    destination=desk.vault.vault_token_account(self.owner, mint_out),
                    timeout=desk.settings.rpc_timeout_s)
            except NoRoute as exc:
                desk.alerts(Alert(Severity.WARNING, "no_route", f"{leg.input_mint}->{leg.output_mint}",
                                  {"user": uid, "error": str(exc)}))
                return trade
            if attempt == 1:
                trade = await desk.trades.insert_intent(NewTrade(
                    user_id=uid, intent_id=intent, from_token=leg.input_mint, to_token=leg.output_mint,
                    amount=Decimal(leg.amount_in).scaleb(-desk.market.decimals.get(leg.input_mint, 0)),
                    amount_in=leg.amount_in, minimum_amount_out=quote.minimum_out, execution_job_id=job,
                    slippage=slippage))
            else:
                trade = await desk.trades.new_attempt(intent, minimum_amount_out=quote.minimum_out,
                                                      slippage=slippage)
            if is_terminal(trade.status):  # decided before (a repeat): its outcome stands
                return trade
            trade = await execute_attempt(desk.trades, desk.rpc, desk.bot, desk.vault, self.owner, trade,
                                          quote.route, attrs.evolve(desk.settings.execution,
                                                                    checkpoint=self._checkpoint(started)))
            started = None
            self._settled(trade)
            if trade.status is TradeStatus.CONFIRMED:
                TRADE_LATENCY.observe(time.monotonic() - intent_at)
                return trade
            if trade.failure_reason not in _RETRY_REASONS:
                return trade
        return trade

    def _checkpoint(self, started: float | None) -> Callable[[str], None]:
        inner = self.desk.settings.execution.checkpoint

        def checkpoint(point: str) -> None:
            if point == "after_persist" and started is not None:
                DECISION_LATENCY.observe(time.perf_counter() - started)
            inner(point)

        return checkpoint

    def _settled(self, trade: TradeRecord, *, reconciled_from: TradeRecord | None = None) -> None:
        """Feed breakers, counters and alerts from one trade's state after an attempt or a reconcile."""
        desk, uid = self.desk, self.user.user_id
        if not is_terminal(trade.status):
            desk.breakers.record(uid, BreakerKind.CONFIRMATION_TIMEOUT, False)
            desk.alerts(Alert(Severity.WARNING, "confirm_timeout", trade.id, {
                "user": uid, "status": trade.status.value, "signature": trade.transaction_signature}))
            return
        reason = FailureReason(trade.failure_reason) if trade.failure_reason else None
        desk.breakers.record_outcome(uid, trade.status, reason)
        if trade.status is TradeStatus.CONFIRMED:
            self._show(confirmed=self._view.confirmed + 1)
        else:
            self._show(failed=self._view.failed + 1)
            severity = Severity.CRITICAL if reason in _NO_RETRY_REASONS else Severity.WARNING
            desk.alerts(Alert(severity, "trade_failed", trade.id, {
                "user": uid, "intent": trade.intent_id, "attempt": trade.attempt,
                "reason": trade.failure_reason, "details": dict(trade.failure_details)}))
        if reconciled_from is not None and (
                reason in (FailureReason.EXPIRED, FailureReason.NEVER_SENT)
                or (reconciled_from.status is TradeStatus.PENDING and reconciled_from.is_signed)):
            desk.alerts(Alert(Severity.WARNING, "reconcile_anomaly", trade.id, {
                "user": uid, "was": reconciled_from.status.value, "now": trade.status.value,
                "reason": trade.failure_reason}))

    # ------------------------------------------------------------------ the drill

    async def _manual(self, msg: ManualTrade) -> None:
        desk = self.desk
        try:
            if self._unsettled and not await self._reconcile():
                raise TradeRefused("the user has unsettled trades; try again after reconciliation")
            stop = self._stop_reason()
            if stop is not None:
                raise TradeRefused(stop)
            price = 1.0 if msg.input_mint == desk.market.usdc_mint else (
                p.usd if (p := desk.prices.fresh(msg.input_mint)) is not None else math.nan)
            if not math.isfinite(price):
                raise TradeRefused(f"no fresh price for {msg.input_mint}")
            decimals = desk.market.decimals.get(msg.input_mint)
            if decimals is None or msg.output_mint not in desk.market.decimals:
                raise TradeRefused("both mints must be among the market's mints")
            limit = float(self.user.effective_max_trade_usd(desk.settings.default_max_trade_usd))
            if msg.usd > limit:
                raise TradeRefused(f"{msg.usd} USD is above the user's max trade of {limit} USD")
            amount_in = int(msg.usd / price * 10**decimals)
            if amount_in <= 0:
                raise TradeRefused("the amount is below one base unit")
            leg = PlannedLeg(msg.input_mint, msg.output_mint, amount_in, msg.usd, "manual drill")
            job = await desk.jobs.create(
                self.user.user_id, trader=None, scoring_run_id=None, trigger="manual",
                plan={"legs": [attrs.asdict(leg)], "manual": True})
        except (TradeRefused, DatabaseError, RpcError) as exc:
            msg.reply.fail(exc)
            return
        msg.reply.set({"job_id": job, "intent_id": intent_id(self.user.user_id, job, 0),
                       "amount_in": amount_in})
        try:
            await self._run_job(job, (leg,), None)
        except DatabaseError as exc:
            self._pause("database", exc)
        except (RpcError, PortfolioError) as exc:
            self._pause("rpc", exc)


def _reason(plan: Plan) -> str | None:
    return "; ".join(f"{r.check}: {r.detail}" for r in plan.rejections) or None
