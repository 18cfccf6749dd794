"""The scorer actor: scoring runs on a schedule and on demand, and the rankings they publish.

What it owns: the scoring run (DESIGN section 7). A run is a `scoring_runs` row RUNNING ->
COMPLETED | FAILED with its counts, then the `trader_scores` of every tracked wallet with every
metric, eligibility and rank. Steps:

1. insert the RUNNING row (algorithm and window stored with it);
2. ingest every tracked wallet (`actors.ingestion`), at most `concurrency` at a time
   (`trio.CapacityLimiter`), each RPC call under its deadline through the RPC client actor;
3. value what stored price history allows (`actors.valuation`), count what stays unvalued;
4. load every tracked wallet's stored swaps into a `SwapBatch` and compute the metrics off the
   event loop (`trio.to_thread.run_sync(compute_metrics, ...)`, vectorised with numpy);
5. score (V1 or V2, `actors.trust_score`), decide eligibility, rank by score;
6. in ONE transaction: insert the scores and flip the run to COMPLETED -- readers never see half
   a ranking -- then tell every subscriber `RankingsUpdated`.

Which failure it contains, and how:
- one wallet's RPC failure (outage, timeout, node error): that wallet is marked
  (`tracked_wallets.last_ingest_error`), retried next run, and scored from what is stored; the run
  goes on and counts it in `wallets_failed`;
- every wallet failing (the RPC is down), or the database failing at any step: the run ends FAILED
  with its error and the previous COMPLETED ranking stays the latest; the requester gets a
  `RunOutcome` saying so -- a failed run is an answer, not a crash;
- an incarnation that dies mid-run leaves a RUNNING row: the next incarnation marks it FAILED
  ("abandoned") when it starts;
- a slow subscriber: `RankingsUpdated` is told with `tell_nowait`; a full mailbox drops it for that
  subscriber and counts it in `xorj_scorer_notifications_dropped_total`.
Anything else (a bug) escapes `run` and the supervisor decides.

Subscribers live in a `RankingsSubscribers` the node creates once and hands to every incarnation,
so a restart of the scorer does not forget them. A COMPLETED run is also announced on Redis
(``xorj:rankings``, best effort within a second) for other nodes and outside consumers.

May import: the standard library, attrs, numpy, trio, prometheus_client, solders, `supervisors`,
`actors`, `sql`. Never imports `engine`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final, Literal

import attrs
import numpy as np
import trio
from prometheus_client import Counter as PromCounter

from actors.actor import Actor
from actors.database import Database, Row
from actors.fanout import Publish, PublishFailed
from actors.ingestion import (
    IngestSettings,
    WalletIngest,
    WalletIngestFailed,
    ingest_wallet,
    parse_wallet,
    track_wallets,
)
from actors.subscribers import Subscribers
from actors.trader_metrics import MetricsTable, SwapBatch, compute_metrics, eligibility
from actors.trust_score import Algorithm, score_v1, score_v2
from actors.valuation import revalue
from sql.errors import DatabaseError, DatabaseUnavailable
from supervisors.backoff import backoff_delay
from supervisors.context import ChildContext
from supervisors.registry import ActorRef
from supervisors.request import Request

log = logging.getLogger("xorj.scorer")

DAY_S: Final = 86_400
ABANDONED: Final = "abandoned: the scorer stopped or restarted during the run"

RUNS = PromCounter("xorj_scoring_runs_total", "Scoring runs by outcome", ["status"])
NOTIFICATIONS_DROPPED = PromCounter(
    "xorj_scorer_notifications_dropped_total",
    "RankingsUpdated notifications dropped because a subscriber's mailbox was full")

RunStatus = Literal["COMPLETED", "FAILED"]


# ---------------------------------------------------------------------------------------- messages


@attrs.frozen
class RunOutcome:
    run_id: str | None  # None when not even the RUNNING row could be written
    status: RunStatus
    algorithm: str
    wallets_total: int = 0
    wallets_ok: int = 0
    wallets_failed: int = 0
    transactions_fetched: int = 0
    swaps_ingested: int = 0
    swaps_unvalued: int = 0
    txs_skipped: Mapping[str, int] = attrs.field(factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {**attrs.asdict(self), "txs_skipped": dict(self.txs_skipped)}


@attrs.frozen
class ScoreNow(Request[RunOutcome]):
    """Run a scoring run now; the answer is its outcome (COMPLETED or FAILED)."""


@attrs.frozen
class SubscribeRankings:
    """Tell `subscriber` `RankingsUpdated` after every COMPLETED run."""

    subscriber: ActorRef


@attrs.frozen
class RankingsUpdated:
    run_id: str
    algorithm: str
    completed_at: dt.datetime


@attrs.frozen
class _ScheduledRun:
    """The scorer's own timer: a scoring run is due."""


RANKINGS_CHANNEL: Final = "xorj:rankings"
PUBLISH_TIMEOUT_S: Final = 1.0


class RankingsSubscribers(Subscribers["RankingsUpdated"]):
    """Who hears `RankingsUpdated`; created once by the node, shared by every scorer incarnation."""

    def __init__(self) -> None:
        super().__init__(NOTIFICATIONS_DROPPED)


# ---------------------------------------------------------------------------------------- settings


@attrs.frozen
class ScorerSettings:
    algorithm: Algorithm = Algorithm.V1
    window_days: int = 90
    interval_s: float | None = 300.0  # None: on demand only
    stablecoins: frozenset[str] = frozenset()
    wallets: tuple[tuple[str, str], ...] = ()  # (wallet, source) tracked at start: config, manifest
    concurrency: int = 8
    rpc_name: str = "rpc_client"
    ingest: IngestSettings = attrs.field(factory=IngestSettings)
    db_timeout_s: float = 30.0
    clock: Callable[[], float] = time.time  # wall-clock seconds; the window ends "now"

    def __attrs_post_init__(self) -> None:
        if self.window_days < 1 or self.concurrency < 1 or self.db_timeout_s <= 0:
            raise ValueError("window_days and concurrency must be >= 1, db_timeout_s > 0")
        if self.interval_s is not None and self.interval_s <= 0:
            raise ValueError("interval_s must be > 0 (or None for on demand only)")


def wallets_from_manifest(manifest: Mapping[str, Any]) -> tuple[list[str], frozenset[str]]:
    """The local chain's trader wallets and its stablecoin mints (USDC, USDT), from its manifest."""
    wallets = [parse_wallet(str(t["pubkey"])) for t in manifest.get("traders", [])]
    mints = manifest.get("mints", {})
    stable = frozenset(str(mints[s]["mint"]) for s in ("USDC", "USDT") if s in mints)
    return wallets, stable


# ---------------------------------------------------------------------------------------- maths


def build_batch(rows: Sequence[Row], wallets: Sequence[str], stablecoins: Collection[str]) -> SwapBatch:
    """Stored swaps (ordered by wallet, time) as the padded arrays `compute_metrics` takes."""
    index = {w: i for i, w in enumerate(wallets)}
    per_wallet: list[list[Row]] = [[] for _ in wallets]
    tokens: dict[str, int] = {}
    for row in rows:
        per_wallet[index[row["wallet"]]].append(row)
        for mint in (row["sold_mint"], row["bought_mint"]):
            if mint not in stablecoins and mint not in tokens:
                tokens[mint] = len(tokens)
    w, s = len(wallets), max((len(p) for p in per_wallet), default=0)
    time_ = np.zeros((w, s), dtype=np.int64)
    sell_token = np.full((w, s), -1, dtype=np.int32)
    buy_token = np.full((w, s), -1, dtype=np.int32)
    sell_qty, buy_qty = np.zeros((w, s)), np.zeros((w, s))
    usd, fee = np.full((w, s), np.nan), np.zeros((w, s))
    valid = np.zeros((w, s), dtype=np.bool_)
    for i, swaps in enumerate(per_wallet):
        for j, row in enumerate(swaps):
            time_[i, j] = int(row["block_time"].timestamp())
            sell_token[i, j] = tokens.get(row["sold_mint"], -1)
            buy_token[i, j] = tokens.get(row["bought_mint"], -1)
            sell_qty[i, j] = float(row["sold_amount"]) / 10 ** row["sold_decimals"]
            buy_qty[i, j] = float(row["bought_amount"]) / 10 ** row["bought_decimals"]
            usd[i, j] = math.nan if row["usd_value"] is None else float(row["usd_value"])
            fee[i, j] = 0.0 if row["fee_usd"] is None else float(row["fee_usd"])
            valid[i, j] = True
    return SwapBatch(time_, sell_token, sell_qty, buy_token, buy_qty, usd, fee, valid, max(1, len(tokens)))


@attrs.frozen
class WalletScore:
    wallet: str
    score: float
    metrics: dict[str, Any]
    eligible: bool
    reason: str
    rank: int = 0


def score_wallets(table: MetricsTable, wallets: Sequence[str], algorithm: Algorithm) -> list[WalletScore]:
    """Scores, eligibility and ranks (1 = best; ties: eligible first, then by wallet)."""
    scored = []
    for i, wallet in enumerate(wallets):
        m = table.row(i)
        dd = min(100.0, max(0.0, m["max_drawdown_pct"]))
        if algorithm is Algorithm.V1:
            trust = score_v1(m["roi_pct"], dd, m["trades"])
        else:
            trust = score_v2(m["sharpe"], m["roi_pct"], dd)
        ok = eligibility(m["trades"], m["first_swap_at"], m["last_swap_at"], m["max_daily_profit_to_volume"])
        scored.append(WalletScore(wallet, trust.score, m, ok.eligible, ok.reason))
    scored.sort(key=lambda s: (-round(s.score, 2), not s.eligible, s.wallet))
    return [attrs.evolve(s, rank=r) for r, s in enumerate(scored, start=1)]


# ---------------------------------------------------------------------------------------- SQL

_INSERT_SCORES: Final = """
INSERT INTO trader_scores (id, run_id, wallet_address, xorj_trust_score, win_rate, total_return,
    max_drawdown, trade_count, sharpe, sortino, volume_usd, first_trade_at, last_trade_at, eligible,
    eligibility_reason, rank, algorithm)
SELECT u.id, $2, u.wallet, u.score, u.win_rate, u.roi, u.dd, u.trades, u.sharpe, u.sortino, u.volume,
       u.first_at, u.last_at, u.eligible, u.reason, u.rank, $17
FROM unnest($1::varchar[], $3::varchar[], $4::numeric[], $5::numeric[], $6::numeric[], $7::numeric[],
            $8::int[], $9::float8[], $10::float8[], $11::numeric[], $12::timestamptz[],
            $13::timestamptz[], $14::bool[], $15::text[], $16::int[])
     AS u(id, wallet, score, win_rate, roi, dd, trades, sharpe, sortino, volume, first_at, last_at,
          eligible, reason, rank)
"""

_COMPLETE_RUN: Final = """
UPDATE scoring_runs SET status = 'COMPLETED', finished_at = now(), traders_analyzed = $2,
    wallets_total = $3, wallets_ok = $4, wallets_failed = $5, swaps_ingested = $6,
    txs_skipped = $7::jsonb, swaps_unvalued = $8, transactions_fetched = $9
WHERE id = $1 AND status = 'RUNNING'
RETURNING finished_at
"""

_FAIL_RUN: Final = """
UPDATE scoring_runs SET status = 'FAILED', finished_at = now(), error = $2, wallets_total = $3,
    wallets_ok = $4, wallets_failed = $5, swaps_ingested = $6, txs_skipped = $7::jsonb,
    transactions_fetched = $8
WHERE id = $1 AND status = 'RUNNING'
"""

_LOAD_SWAPS: Final = """
SELECT wallet, block_time, sold_mint, sold_amount, sold_decimals, bought_mint, bought_amount,
       bought_decimals, usd_value, fee_usd
FROM swaps WHERE wallet = ANY($1::varchar[])
ORDER BY wallet, block_time, slot, signature
"""


def _dec(x: float, places: int, bound: float) -> Decimal:
    x = 0.0 if not math.isfinite(x) else min(bound, max(-bound, x))
    return Decimal(repr(round(x, places)))


def _at(seconds: int) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(seconds, dt.UTC) if seconds > 0 else None


def _score_columns(run_id: str, scores: Sequence[WalletScore], algorithm: Algorithm) -> list[object]:
    def col(f: Callable[[WalletScore], object]) -> list[object]:
        return [f(s) for s in scores]

    return [
        col(lambda _: uuid.uuid4().hex), run_id, col(lambda s: s.wallet),
        col(lambda s: _dec(s.score, 2, 100)),
        col(lambda s: _dec(s.metrics["win_rate_pct"], 2, 100)),
        col(lambda s: _dec(s.metrics["roi_pct"], 2, 99_999_999)),
        col(lambda s: _dec(max(0.0, s.metrics["max_drawdown_pct"]), 2, 100)),
        col(lambda s: s.metrics["trades"]),
        col(lambda s: s.metrics["sharpe"] if math.isfinite(s.metrics["sharpe"]) else 0.0),
        col(lambda s: s.metrics["sortino"]),
        col(lambda s: _dec(s.metrics["volume_usd"], 6, 1e23)),
        col(lambda s: _at(s.metrics["first_swap_at"])),
        col(lambda s: _at(s.metrics["last_swap_at"])),
        col(lambda s: s.eligible), col(lambda s: s.reason), col(lambda s: s.rank),
        algorithm.value,
    ]


class _RunFailed(Exception):
    """The run cannot complete (e.g. every wallet failed); it ends FAILED with this reason."""


@attrs.define
class _Tally:
    wallets_total: int = 0
    ok: int = 0
    failed: int = 0
    transactions: int = 0
    swaps: int = 0
    unvalued: int = 0
    skipped: Counter[str] = attrs.field(factory=Counter)
    errors: list[str] = attrs.field(factory=list)

    def add(self, ingest: WalletIngest) -> None:
        self.transactions += ingest.transactions_fetched
        self.swaps += ingest.swaps_stored
        self.skipped.update(ingest.skipped)


# ---------------------------------------------------------------------------------------- actor


class Scorer(Actor):
    """See the module docstring. `Scorer(db, settings, subscribers)`; the RPC client is reached by
    name (`settings.rpc_name`) through the registry."""

    def __init__(
        self, db: Database, settings: ScorerSettings, subscribers: RankingsSubscribers | None = None,
        *, publish: Publish | None = None,
    ) -> None:
        self._publish = publish
        self._db = db
        self._settings = settings
        self._subscribers = subscribers if subscribers is not None else RankingsSubscribers()
        self._last_finished: float | None = None

    async def setup(self, ctx: ChildContext) -> None:
        """Register the configured wallets and abandon a run a dead incarnation left RUNNING.

        A database outage here is waited out (with backoff) rather than crashed on: a crash loop
        during an outage would only exhaust the supervisor's intensity and take the node down.
        """
        s, t = self._settings, self._settings.db_timeout_s
        attempt = 0
        while True:
            try:
                for source in ("config", "manifest"):
                    wallets = [parse_wallet(w) for w, src in s.wallets if src == source]
                    if wallets:
                        await track_wallets(self._db, wallets, source, timeout=t)
                await self._db.execute(
                    """UPDATE scoring_runs SET status = 'FAILED', finished_at = now(), error = $1
                       WHERE status = 'RUNNING'""", ABANDONED, timeout=t)
                return
            except DatabaseUnavailable as exc:
                delay = backoff_delay(attempt, min_s=0.1, max_s=5.0, jitter=0.25)
                log.warning("scorer waits for the database", extra={
                    "event": "scorer_waiting_for_database", "error": str(exc), "retry_in_s": round(delay, 3)})
                attempt += 1
                await trio.sleep(delay)

    async def run(self, ctx: ChildContext) -> None:
        await self.setup(ctx)
        async with trio.open_nursery() as nursery:
            if self._settings.interval_s is not None:
                nursery.start_soon(self._schedule, ctx, self._settings.interval_s)
            ctx.started()
            # A stop request cancels a run in progress at once: its row stays RUNNING and the next
            # incarnation marks it abandoned, which is cheaper than making the operator wait.
            nursery.start_soon(self._cancel_on_stop, ctx, nursery.cancel_scope)
            while (msg := await ctx.receive()) is not None:
                await self.handle(ctx, msg)
            nursery.cancel_scope.cancel()

    @staticmethod
    async def _cancel_on_stop(ctx: ChildContext, scope: trio.CancelScope) -> None:
        await ctx.stopping.wait()
        scope.cancel()

    async def _schedule(self, ctx: ChildContext, interval_s: float) -> None:
        while True:
            try:
                ctx.self_ref.tell_nowait(_ScheduledRun())
            except trio.WouldBlock:
                pass  # the mailbox is full of work already; the next tick tries again
            await trio.sleep(interval_s)

    async def handle(self, ctx: ChildContext, msg: Any) -> None:
        if isinstance(msg, ScoreNow):
            msg.reply.set(await self.score(ctx))
        elif isinstance(msg, _ScheduledRun):
            interval = self._settings.interval_s or 0.0
            # A run on demand just before the tick makes the scheduled one redundant.
            if self._last_finished is None or trio.current_time() - self._last_finished >= interval / 2:
                await self.score(ctx)
        elif isinstance(msg, SubscribeRankings):
            self._subscribers.add(msg.subscriber)
        else:
            await super().handle(ctx, msg)

    async def score(self, ctx: ChildContext) -> RunOutcome:
        """One scoring run; never raises for an RPC or database failure (the outcome says FAILED)."""
        s, t = self._settings, self._settings.db_timeout_s
        run_id = uuid.uuid4().hex
        tally = _Tally()
        try:
            await self._db.execute(
                """INSERT INTO scoring_runs (id, status, algorithm, window_days)
                   VALUES ($1, 'RUNNING', $2, $3)""",
                run_id, s.algorithm.value, s.window_days, timeout=t)
        except DatabaseError as exc:
            return self._finish(RunOutcome(None, "FAILED", s.algorithm.value, error=_why(exc)))
        try:
            completed_at = await self._run(ctx, run_id, tally)
        except (DatabaseError, _RunFailed) as exc:
            error = _why(exc)
            try:
                await self._db.execute(
                    _FAIL_RUN, run_id, error, tally.wallets_total, tally.ok, tally.failed, tally.swaps,
                    json.dumps(dict(tally.skipped)), tally.transactions, timeout=t)
            except DatabaseError as again:  # the row stays RUNNING; the next incarnation abandons it
                log.error("could not record the failed scoring run", extra={
                    "event": "scoring_run_unrecorded", "run_id": run_id, "error": _why(again)})
            return self._finish(self._outcome(run_id, "FAILED", tally, error))
        self._subscribers.publish(RankingsUpdated(run_id, s.algorithm.value, completed_at))
        await self._fan_out(run_id, completed_at)
        return self._finish(self._outcome(run_id, "COMPLETED", tally, None))

    async def _fan_out(self, run_id: str, completed_at: object) -> None:
        """Announce the ranking on Redis (``xorj:rankings``) for other nodes: best effort, bounded."""
        if self._publish is None:
            return
        payload = json.dumps({"run_id": run_id, "algorithm": self._settings.algorithm.value,
                              "completed_at": str(completed_at)}).encode()
        with trio.move_on_after(PUBLISH_TIMEOUT_S):
            try:
                await self._publish(RANKINGS_CHANNEL, payload)
            except (PublishFailed, OSError) as exc:
                log.warning("ranking not published on Redis", extra={"run_id": run_id, "error": str(exc)})

    def _outcome(self, run_id: str, status: RunStatus, tally: _Tally, error: str | None) -> RunOutcome:
        return RunOutcome(
            run_id, status, self._settings.algorithm.value, tally.wallets_total, tally.ok, tally.failed,
            tally.transactions, tally.swaps, tally.unvalued, dict(tally.skipped), error)

    def _finish(self, outcome: RunOutcome) -> RunOutcome:
        self._last_finished = trio.current_time()
        RUNS.labels(outcome.status).inc()
        level = logging.INFO if outcome.status == "COMPLETED" else logging.WARNING
        log.log(level, "scoring run %s", outcome.status.lower(),
                extra={"event": "scoring_run", **outcome.as_dict()})
        return outcome

    async def _run(self, ctx: ChildContext, run_id: str, tally: _Tally) -> dt.datetime:
        s, t = self._settings, self._settings.db_timeout_s
        wallets = [r["wallet"] for r in await self._db.fetch(
            "SELECT wallet FROM tracked_wallets ORDER BY wallet", timeout=t)]
        tally.wallets_total = len(wallets)
        await self._ingest_all(ctx, wallets, tally)
        if wallets and tally.ok == 0:
            raise _RunFailed(f"ingestion failed for every wallet ({len(wallets)}); first: {tally.errors[0]}")
        tally.unvalued = await revalue(self._db, wallets, timeout=t)
        rows = await self._db.fetch(_LOAD_SWAPS, wallets, timeout=t)
        window_start = int(s.clock()) - s.window_days * DAY_S
        scores = await trio.to_thread.run_sync(self._compute, rows, wallets, window_start)
        results = await self._db.transaction([
            (_INSERT_SCORES, _score_columns(run_id, scores, s.algorithm)),
            (_COMPLETE_RUN, (run_id, len(scores), tally.wallets_total, tally.ok, tally.failed, tally.swaps,
                             json.dumps(dict(tally.skipped)), tally.unvalued, tally.transactions)),
        ], timeout=t)
        if not results[1]:
            raise _RunFailed("the run was no longer RUNNING when its scores were stored")
        finished: dt.datetime = results[1][0]["finished_at"]
        return finished

    def _compute(self, rows: Sequence[Row], wallets: Sequence[str], window_start: int) -> list[WalletScore]:
        batch = build_batch(rows, wallets, self._settings.stablecoins)
        return score_wallets(compute_metrics(batch, window_start), wallets, self._settings.algorithm)

    async def _ingest_all(self, ctx: ChildContext, wallets: Iterable[str], tally: _Tally) -> None:
        limiter = trio.CapacityLimiter(self._settings.concurrency)
        rpc = ctx.ref(self._settings.rpc_name)

        database_failed: list[DatabaseError] = []

        async def one(wallet: str, cancel: trio.CancelScope) -> None:
            async with limiter:
                try:
                    done = await ingest_wallet(
                        rpc, self._db, wallet, self._settings.stablecoins, self._settings.ingest)
                except DatabaseError as exc:  # not one wallet's problem: the run fails
                    database_failed.append(exc)
                    cancel.cancel()
                    return
                except WalletIngestFailed as exc:
                    tally.failed += 1
                    tally.add(exc.progress)
                    tally.errors.append(str(exc))
                    log.warning("wallet ingestion failed", extra={
                        "event": "wallet_ingest_failed", "wallet": wallet, "reason": exc.reason})
                    return
                tally.ok += 1
                tally.add(done)

        async with trio.open_nursery() as nursery:
            for wallet in wallets:
                nursery.start_soon(one, wallet, nursery.cancel_scope)
        if database_failed:
            raise database_failed[0]


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


# ---------------------------------------------------------------------------------------- reading

_LATEST_RUN: Final = """
SELECT id, algorithm, window_days, started_at, finished_at, traders_analyzed, wallets_total,
       wallets_ok, wallets_failed, swaps_ingested, swaps_unvalued, transactions_fetched, txs_skipped
FROM scoring_runs WHERE status = 'COMPLETED' ORDER BY finished_at DESC, id LIMIT 1
"""

_RANKING: Final = """
SELECT rank, wallet_address AS wallet, xorj_trust_score AS score, eligible, eligibility_reason,
       total_return AS roi_pct, win_rate AS win_rate_pct, max_drawdown AS max_drawdown_pct,
       trade_count AS trades, sharpe, sortino, volume_usd, first_trade_at, last_trade_at
FROM trader_scores WHERE run_id = $1 ORDER BY rank LIMIT $2
"""


async def latest_ranking(db: Database, *, limit: int, timeout: float) -> tuple[Row | None, list[Row]]:
    """The latest COMPLETED run and its top `limit` scores (what the executors follow)."""
    run = await db.fetchrow(_LATEST_RUN, timeout=timeout)
    if run is None:
        return None, []
    return run, await db.fetch(_RANKING, run["id"], limit, timeout=timeout)
