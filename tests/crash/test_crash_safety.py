"""Issue 6's crash-safety property: kill -9 at any point of a trade's life, restart, and no trade is
lost, stuck or executed twice -- proved by reading PostgreSQL and the chain directly.

The real engine (``xorj run``) runs as a subprocess against parts that survive its deaths: a local
``--genesis market`` chain, an embedded PostgreSQL (a fresh database) and an embedded Redis. Each
run is given ``XORJ_CRASH_AT=<point>`` (a seeded random schedule over the four points of
`actors.trade_execution.CHECKPOINTS`, each at least four times) and is fed trades -- the
executors' own plans, plus ``xorj ctl trade`` drills for the three demo users, buying a token with
USDC and selling it back so the vaults never run dry -- until it SIGKILLs itself at that point.
After each death the database must show what that point means (e.g. after ``after_persist`` a
PENDING trade with durable signed bytes). A last run without a crash point must settle everything
and trade again; then, with the engine stopped:

- no trade is PENDING or SUBMITTED;
- no intent executed twice on chain, and no bot transaction on a demo vault is unknown to the DB;
- the database equals the chain for every trade (CONFIRMED <=> succeeded with the same amount_out;
  FAILED after landing <=> landed with an error; FAILED expired / never_sent <=> not on chain);
- every trade_events row is a legal transition of `actors.trade_lifecycle.TRANSITIONS` (resends
  excepted).

The figures (kills per point, trades by outcome, intents, attempts, reconciled on restart, where
the start-up time goes, wall time) are printed and written as JSON to ``$XORJ_CRASH_REPORT``.
``XORJ_CRASH_SEED`` and ``XORJ_CRASH_KILLS`` change the schedule (defaults 6 and 24).
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs
import pytest
import trio
from solders.commitment_config import CommitmentLevel
from solders.pubkey import Pubkey

from actors.rpc_client import RpcClient
from actors.trade_execution import CHECKPOINTS
from actors.trade_lifecycle import TRANSITIONS, FailureReason, TradeStatus
from actors.user_store import user_id_for
from engine.embedded_redis import EmbeddedRedis
from engine.postgres_gateway import PostgresGateway
from tests.crash.conftest import (
    EngineExited,
    EngineProcess,
    Landed,
    bot_transactions,
    ctl,
    engine_env,
    msg_is,
    signature_statuses,
)
from tests.localnet.conftest import LocalnetNode

pytestmark = pytest.mark.slow

SEED: Final = int(os.environ.get("XORJ_CRASH_SEED", "6"))
KILLS: Final = int(os.environ.get("XORJ_CRASH_KILLS", "24"))
MIN_KILLS, MIN_PER_POINT = 20, 4
SYMBOLS: Final = ("JUP", "WIF", "BONK", "RAY")
# Sell back a little less than was bought, so the vaults neither drain nor pile up tokens. When
# the buy died with the engine, the sell lands and fails (insufficient funds): one more case to check.
BUY_USD, SELL_USD = 2.0, 1.5
RUN_WITHIN_S: Final = 90.0  # one crash run: start, trade, die
SETTLE_WITHIN_S: Final = 90.0  # the last run: reconcile everything, trade again, stop
DB_TIMEOUT_S: Final = 10.0
LIVE: Final = "status IN ('PENDING', 'SUBMITTED')"
# Failures that prove the transaction is not on chain (never signed, never sent, or expired unseen).
NOT_ON_CHAIN: Final = frozenset({
    FailureReason.EXPIRED, FailureReason.NEVER_SENT, FailureReason.RPC_UNAVAILABLE})


def kill_schedule(seed: int, kills: int) -> list[str]:
    """Each point MIN_PER_POINT times, the rest drawn at random; shuffled. Seeded: reproducible."""
    rng = random.Random(seed)
    points = [p for p in CHECKPOINTS for _ in range(MIN_PER_POINT)]
    points += rng.choices(CHECKPOINTS, k=max(0, kills - len(points)))
    rng.shuffle(points)
    return points


# ------------------------------------------------------------------------------------ the drills


def _why(stderr: bytes) -> str:
    text = stderr.decode(errors="replace").strip().splitlines()
    line = text[-1] if text else "(no output)"
    for needle, label in (("unsettled", "unsettled trades (reconciling)"),
                          ("no running executor", "no executor yet"),
                          ("no fresh price", "no fresh price yet"),
                          ("trading is off", "trading not open yet")):
        if needle in line:
            return label
    if any(s in line for s in ("not running", "connect", "no answer", "closed", "reset")):
        return "engine down or dying"
    return line[:80]


@attrs.define
class Drills:
    """``xorj ctl trade`` per demo user: buy a token with USDC, sell a little less of it back, next
    token. A refused drill is repeated; an accepted one moves on (even if the engine then dies)."""

    owners: tuple[str, ...]
    steps: dict[str, int] = attrs.Factory(dict)
    accepted: list[dict[str, Any]] = attrs.Factory(list)
    refused: Counter[str] = attrs.Factory(Counter)

    def order(self, owner: str) -> tuple[str, str, float]:
        step = self.steps.get(owner, 0)
        symbol = SYMBOLS[(step // 2 + self.owners.index(owner)) % len(SYMBOLS)]
        return ("USDC", symbol, BUY_USD) if step % 2 == 0 else (symbol, "USDC", SELL_USD)

    async def one(self, env: Mapping[str, str], owner: str, order: tuple[str, str, float] | None = None,
                  ) -> dict[str, Any] | None:
        source, target, usd = order or self.order(owner)
        done = await ctl(env, "trade", "--user", owner, "--input", source, "--output", target,
                         "--usd", str(usd))
        if done.returncode != 0:
            self.refused[_why(done.stderr)] += 1
            return None
        answer: dict[str, Any] = {**json.loads(done.stdout), "input": source, "output": target}
        self.accepted.append(answer)
        if order is None:
            self.steps[owner] = self.steps.get(owner, 0) + 1
        return answer

    async def until_exit(self, env: Mapping[str, str], owner: str, engine: EngineProcess) -> None:
        while not engine.exited.is_set():
            if await self.one(env, owner) is None:
                with trio.move_on_after(0.25):  # pace a refused drill; the engine's death ends it at once
                    await engine.exited.wait()


# ---------------------------------------------------------------------------------- the database


async def wait_db(db: PostgresGateway, what: str, query: str, *args: object, check: Callable[[Any], bool],
                  within: float, engine: EngineProcess | None = None) -> Any:
    """Poll ``query`` (one value) until ``check`` holds; fail after ``within`` seconds or when the
    engine exits meanwhile."""
    value: Any = None
    try:
        with trio.fail_after(within):
            while not check(value := await db.fetchval(query, *args, timeout=DB_TIMEOUT_S)):
                if engine is not None and engine.exited.is_set():
                    raise EngineExited(
                        f"the engine exited ({engine.returncode}) before {what}:\n{engine.tail()}")
                await trio.sleep(0.1)
    except trio.TooSlowError:
        tail = "" if engine is None else "\n" + engine.tail()
        raise AssertionError(f"{what}: not within {within}s (last value {value!r}){tail}") from None
    return value


@attrs.frozen
class Left:
    """A trade a kill left PENDING or SUBMITTED (the next start must reconcile it)."""

    id: str
    status: TradeStatus
    signature: str | None
    signed: bool
    last_valid_block_height: int | None


async def what_the_kill_left(db: PostgresGateway, rpc: RpcClient, point: str) -> tuple[Left, ...]:
    """The trades a kill at ``point`` left non-terminal -- and proof the engine died where it says:
    a trade in exactly the state that point means."""
    live = tuple(Left(r["id"], TradeStatus(r["status"]), r["transaction_signature"], r["signed"],
                      None if r["last_valid_block_height"] is None else int(r["last_valid_block_height"]))
                 for r in await db.fetch(
                     "SELECT id, status, transaction_signature, signed_transaction IS NOT NULL AS signed,"
                     f" last_valid_block_height FROM trades WHERE {LIVE} ORDER BY created_at",
                     timeout=DB_TIMEOUT_S))
    pending = [t for t in live if t.status is TradeStatus.PENDING]
    if point == "before_persist":  # signed in memory only: nothing durable, nothing sent
        assert any(not t.signed for t in pending), (point, live)
    elif point == "after_persist":  # the signed bytes are durable, and were never sent
        assert any(t.signed for t in pending), (point, live)
    elif point == "after_send":  # the stored bytes went out; the row may not say SUBMITTED yet
        assert any(t.signed for t in live), (point, live)
    else:  # after_landing: on chain, but the row does not know it yet
        on_chain = await signature_statuses(rpc, [t.signature for t in live if t.signature])
        assert any(on_chain.values()), (point, live)
    return live


async def outlive_blockhashes(rpc: RpcClient, left: tuple[Left, ...]) -> None:
    """Wait until no unsent signed trade of ``left`` can land any more: the chain's finalized block
    height is past every one's ``last_valid_block_height`` (an event on the chain, polled)."""
    heights = [t.last_valid_block_height for t in left if t.signed and t.status is TradeStatus.PENDING]
    last = max((h for h in heights if h is not None), default=0)
    with trio.fail_after(60):
        while await rpc.get_block_height(CommitmentLevel.Finalized) <= last:  # noqa: ASYNC110 -- the chain's clock
            await trio.sleep(0.05)


# ------------------------------------------------------------------------------------- the runs


@attrs.frozen
class Kill:
    point: str
    seconds: float  # spawn -> death
    up_s: float | None  # spawn -> "engine running"
    executors_s: float | None  # spawn -> "executors started"
    ranking_s: float | None  # spawn -> "scoring run completed", when it came before the death
    left: tuple[Left, ...]  # what the next start reconciles
    expired_first: bool  # the restart waited until the unsent signed bytes could never land
    drills: int
    troubles: tuple[str, ...]  # the run's ERROR/CRITICAL log lines and actor crashes


def troubles(engine: EngineProcess) -> tuple[str, ...]:
    """What went wrong inside the engine besides the kill: supervised crashes and ERROR/CRITICAL
    lines (alerts excepted: the alerter logs each alert at its severity, by design)."""
    def trouble(e: dict[str, Any]) -> bool:
        if e.get("event") == "crashed":
            return True
        alert = e.get("logger") == "xorj.alerter" and str(e.get("msg", "")).startswith("alert ")
        return e.get("level") in ("ERROR", "CRITICAL") and not alert

    return tuple(f"{e.get('logger')}: {e.get('msg')} {e.get('child') or ''} {e.get('reason') or ''}"
                 for e in engine.events if trouble(e))


def _since(engine: EngineProcess, predicate: Callable[[dict[str, Any]], bool]) -> float | None:
    event = engine.first(predicate)
    return None if event is None else round(float(event["_t"]) - engine.spawned_at, 3)


async def crash_run(env: dict[str, str], point: str, drills: Drills, db: PostgresGateway,
                    rpc: RpcClient, *, wait_for_ranking: bool, expire_first: bool) -> Kill:
    """Start the engine with XORJ_CRASH_AT=point, feed it trades until it kills itself there; with
    ``expire_first``, let what it left signed but unsent expire before the next start."""
    accepted_before = len(drills.accepted)
    async with trio.open_nursery() as nursery:
        engine = await EngineProcess.start(nursery, {**env, "XORJ_CRASH_AT": point})
        try:
            with trio.fail_after(RUN_WITHIN_S):
                try:
                    await engine.wait_for("it runs", msg_is("engine running"), within=RUN_WITHIN_S)
                    if wait_for_ranking:  # the first start: the executors' own plans need a leader
                        await engine.wait_for("a ranking", msg_is("scoring run completed"),
                                              within=RUN_WITHIN_S)
                except EngineExited:
                    pass  # died at the point already (a planned trade, or a reconcile): judged below
                async with trio.open_nursery() as feeding:
                    for owner in drills.owners:
                        feeding.start_soon(drills.until_exit, env, owner, engine)
                await engine.exited.wait()
        except trio.TooSlowError:
            raise AssertionError(f"no kill at {point} within {RUN_WITHIN_S}s:\n{engine.tail()}") from None
        finally:
            await engine.stop_hard()
    died_after = round(trio.current_time() - engine.spawned_at, 3)
    assert engine.returncode == -signal.SIGKILL, f"exit {engine.returncode}, not SIGKILL:\n{engine.tail()}"
    reached = engine.first(lambda e: str(e.get("msg", "")).startswith("crash point reached"))
    assert reached is not None and reached.get("crash_at") == point, engine.tail()
    left = await what_the_kill_left(db, rpc, point)
    if expire_first:
        await outlive_blockhashes(rpc, left)
    return Kill(point, died_after, _since(engine, msg_is("engine running")),
                _since(engine, msg_is("executors started")), _since(engine, msg_is("scoring run completed")),
                left, expire_first, len(drills.accepted) - accepted_before, troubles(engine))


@attrs.frozen
class LastRun:
    settled_s: float  # spawn -> no trade PENDING/SUBMITTED
    up_s: float | None
    executors_s: float | None
    scoring_s: float | None  # spawn -> its first scoring run completed
    scoring: dict[str, Any]
    drill_intents: tuple[str, ...]
    troubles: tuple[str, ...]


async def last_run(env: dict[str, str], drills: Drills, db: PostgresGateway) -> LastRun:
    """No crash point: everything the kills left settles, trading resumes (a drill per user, each
    to a terminal outcome), then the global kill switch, nothing in flight, SIGTERM, exit 0."""
    async with trio.open_nursery() as nursery:
        engine = await EngineProcess.start(nursery, env)
        try:
            with trio.fail_after(SETTLE_WITHIN_S):
                await engine.wait_for("it runs", msg_is("engine running"), within=SETTLE_WITHIN_S)
                await wait_db(db, "every trade settled", f"SELECT count(*) FROM trades WHERE {LIVE}",
                              check=lambda n: n == 0, within=SETTLE_WITHIN_S, engine=engine)
                settled_s = trio.current_time() - engine.spawned_at
                intents: list[str] = []
                for owner in drills.owners:
                    answer = None
                    while answer is None:  # refused (e.g. still reconciling): ask again, paced
                        answer = await drills.one(env, owner, ("USDC", "JUP", BUY_USD))
                        with trio.move_on_after(0 if answer else 0.25):
                            await engine.exited.wait()
                    intents.append(answer["intent_id"])
                await wait_db(
                    db, "the new drills settled",
                    # the executor's own rule: done at CONFIRMED, at a failure that is not
                    # slippage, or at the last attempt
                    "SELECT count(DISTINCT intent_id) FROM trades WHERE intent_id = ANY($1::varchar[])"
                    " AND (status = 'CONFIRMED' OR (status = 'FAILED'"
                    " AND (failure_reason <> 'slippage_exceeded' OR attempt = $2)))",
                    intents, 1 + int(env.get("SLIPPAGE_RETRIES", "2")),
                    check=lambda n: n == len(intents), within=SETTLE_WITHIN_S, engine=engine)
                switched = await ctl(env, "kill-switch", "on", "--reason", "crash-safety test: final check")
                assert switched.returncode == 0, switched.stderr
                await wait_db(db, "nothing in flight", f"SELECT count(*) FROM trades WHERE {LIVE}",
                              check=lambda n: n == 0, within=SETTLE_WITHIN_S, engine=engine)
                scoring = await engine.wait_for("the scoring run", msg_is("scoring run completed"),
                                                within=SETTLE_WITHIN_S)
                engine.process.send_signal(signal.SIGTERM)
                await engine.exited.wait()
        finally:
            await engine.stop_hard()
    assert engine.returncode == 0, f"exit {engine.returncode} after SIGTERM:\n{engine.tail()}"
    return LastRun(
        round(settled_s, 3), _since(engine, msg_is("engine running")),
        _since(engine, msg_is("executors started")), _since(engine, msg_is("scoring run completed")),
        {k: scoring.get(k) for k in ("wallets_total", "transactions_fetched", "swaps_ingested")},
        tuple(intents), troubles(engine))


# ------------------------------------------------------------------------------ the proof


@attrs.frozen
class Trade:
    id: str
    user_id: str
    intent_id: str
    attempt: int
    status: TradeStatus
    amount_in: int | None
    amount_out: int | None
    signature: str | None
    failure_reason: str | None
    last_valid_block_height: int | None
    trigger: str | None


async def read_trades(db: PostgresGateway) -> list[Trade]:
    rows = await db.fetch(
        "SELECT t.id, t.user_id, t.intent_id, t.attempt, t.status, t.amount_in, t.amount_out,"
        " t.transaction_signature, t.failure_reason, t.last_valid_block_height, j.trigger"
        " FROM trades t LEFT JOIN execution_jobs j ON j.id = t.execution_job_id ORDER BY t.created_at",
        timeout=DB_TIMEOUT_S)

    def num(value: object) -> int | None:
        return None if value is None else int(value)  # type: ignore[call-overload]

    return [Trade(r["id"], r["user_id"], r["intent_id"], int(r["attempt"]), TradeStatus(r["status"]),
                  num(r["amount_in"]), num(r["amount_out"]), r["transaction_signature"], r["failure_reason"],
                  num(r["last_valid_block_height"]), r["trigger"]) for r in rows]


def check_db_equals_chain(trades: list[Trade], landed: Mapping[str, Landed], on_chain: Mapping[str, bool],
                          vault_of: Mapping[str, str], finalized_height: int) -> None:
    by_signature: dict[str, Trade] = {}
    for trade in trades:
        if trade.signature is not None:
            assert trade.signature not in by_signature, f"two trades share {trade.signature}"
            by_signature[trade.signature] = trade

    # The chain's side: every bot transaction on a demo vault is a known trade of that vault's user;
    # per intent, at most one of them succeeded.
    unknown = [s for s in landed if s not in by_signature]
    assert not unknown, f"bot transactions on chain that the database does not know: {unknown}"
    executed = Counter(by_signature[s].intent_id for s, tx in landed.items() if tx.succeeded and tx.events)
    twice = {intent: n for intent, n in executed.items() if n > 1}
    assert not twice, f"intents executed more than once on chain: {twice}"

    # The database's side: every trade says what the chain says.
    for trade in trades:
        tx = landed.get(trade.signature) if trade.signature else None
        where = f"trade {trade.id} ({trade.status}, {trade.failure_reason}, {trade.signature})"
        if trade.status is TradeStatus.CONFIRMED:
            assert tx is not None and tx.succeeded, f"{where}: CONFIRMED but no success on chain"
            mine = [e for e in tx.events if e.amount_in == trade.amount_in]
            assert len(mine) == 1, f"{where}: events {tx.events}"
            assert mine[0].amount_out == trade.amount_out, f"{where}: chain says {mine[0].amount_out}"
            assert str(mine[0].vault) == tx.vault == vault_of[trade.user_id], f"{where}: wrong vault"
        elif trade.status is TradeStatus.FAILED:
            reason = FailureReason(str(trade.failure_reason))
            if reason in NOT_ON_CHAIN:
                assert tx is None, f"{where}: on chain ({tx})"
                assert trade.signature is None or not on_chain[trade.signature], f"{where}: status found"
                if reason is FailureReason.EXPIRED:  # and it can never land: its blockhash is past
                    assert trade.last_valid_block_height is not None
                    assert trade.last_valid_block_height < finalized_height, where
            else:
                assert tx is not None and not tx.succeeded, f"{where}: FAILED {reason} but {tx}"
        else:
            raise AssertionError(f"{where}: not terminal")


def check_transitions(trades: Sequence[Trade], events: Sequence[Mapping[str, Any]]) -> int:
    """Every trade's trade_events rows form one legal path from its birth to its status; returns
    the number of resend rows (the only rows that are not transitions)."""
    by_trade: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for event in events:
        by_trade[event["trade_id"]].append(event)
    resends = 0
    for trade in trades:
        rows = by_trade.pop(trade.id, [])
        assert rows and rows[0]["from_status"] is None and rows[0]["to_status"] == TradeStatus.PENDING, \
            (trade.id, rows[:1])
        status = TradeStatus.PENDING
        for row in rows[1:]:
            before, after = TradeStatus(row["from_status"]), TradeStatus(row["to_status"])
            assert before is status, (trade.id, row, status)
            if row["reason"] == "resent" and before is after:
                assert before in (TradeStatus.PENDING, TradeStatus.SUBMITTED), (trade.id, row)
                resends += 1
                continue
            assert (before, after) in TRANSITIONS, f"illegal transition {before} -> {after} of {trade.id}"
            status = after
        assert status is trade.status, (trade.id, status, trade.status)
    assert not by_trade, f"events of unknown trades: {list(by_trade)}"
    return resends


# ------------------------------------------------------------------------------------- the test


async def test_kill_9_at_every_lifecycle_point_loses_no_trade_and_executes_no_intent_twice(
    crash_chain: LocalnetNode, crash_redis: EmbeddedRedis, db_url: str, gateway: PostgresGateway,
    chain_rpc: RpcClient, crash_home: Path,
) -> None:
    started = time.monotonic()
    manifest = crash_chain.manifest
    manifest_path = crash_chain.workdir / "manifest.json"
    mints = manifest["mints"]
    owners = tuple(str(u["owner"]) for u in manifest["demoUsers"])
    vault_of = {user_id_for(str(u["owner"])): str(u["vault"]) for u in manifest["demoUsers"]}
    bot = Pubkey.from_string(manifest["botAuthority"]["pubkey"])
    env = engine_env({
        "DATABASE_URL": db_url, "REDIS_URL": crash_redis.url, "SOLANA_RPC_URL": crash_chain.url,
        "LOCALNET_MANIFEST": str(manifest_path), "XORJ_HOME": str(crash_home), "LOG_FORMAT": "json",
        "METRICS_PORT": "0", "XORJ_FAULT_INJECTION": "1",
        # A local chain has no provider quota; at the default 40 req/s for a configured RPC URL the
        # scorer's history backfill at each start starves the executors for minutes.
        "SOLANA_RPC_RATE_PER_S": "2000",
        # The scorer takes the trader wallets from the embedded chain's manifest only, not from
        # LOCALNET_MANIFEST (see the report): name them, so the executors have a leader to follow.
        "TRACKED_WALLETS": ",".join(str(t["pubkey"]) for t in manifest["traders"]),
        "STABLECOIN_MINTS": f"{mints['USDC']['mint']},{mints['USDT']['mint']}",
        "EXECUTOR_CHECK_SECONDS": "1", "PRICE_POLL_SECONDS": "0.5", "CONFIRM_TIMEOUT_SECONDS": "30",
        # Kills leave failures (never_sent, expired) that are the point of the test, not a reason
        # for the breakers to stop the drills.
        "BREAKER_CONSECUTIVE_FAILURES": "1000", "BREAKER_MIN_CALLS": "1000",
    })
    drills = Drills(owners)

    # --- the kills. Half the after_persist kills (durable signed bytes, never sent) restart at once,
    # inside the blockhash window: reconcile must send the stored bytes; the other half restart
    # once those bytes can never land: reconcile must find them expired.
    schedule = kill_schedule(SEED, KILLS)
    kills: list[Kill] = []
    for n, point in enumerate(schedule):
        expire_first = point == "after_persist" and sum(k.point == point for k in kills) % 2 == 1
        kills.append(await crash_run(env, point, drills, gateway, chain_rpc, wait_for_ranking=n == 0,
                                     expire_first=expire_first))
    last = await last_run(env, drills, gateway)

    # --- the proof, from PostgreSQL and the chain directly (the engine is stopped)
    trades = await read_trades(gateway)
    events = [dict(r) for r in await gateway.fetch(
        "SELECT id, trade_id, from_status, to_status, reason FROM trade_events ORDER BY id",
        timeout=DB_TIMEOUT_S)]
    live = [t.id for t in trades if t.status not in (TradeStatus.CONFIRMED, TradeStatus.FAILED)]
    assert not live, f"trades left non-terminal: {live}"
    landed: dict[str, Landed] = {}
    for user in manifest["demoUsers"]:
        landed.update(await bot_transactions(chain_rpc, Pubkey.from_string(user["vault"]), bot))
    on_chain = await signature_statuses(chain_rpc, [t.signature for t in trades if t.signature])
    finalized = await chain_rpc.get_block_height(CommitmentLevel.Finalized)
    check_db_equals_chain(trades, landed, on_chain, vault_of, finalized)
    resends = check_transitions(trades, events)

    # What each kill left ended as the crash-only rules say: no durable bytes -> never_sent (nothing
    # could have been sent); durable bytes outlived unsent -> expired.
    final = {t.id: t for t in trades}
    outcome_of_left: Counter[str] = Counter()
    for kill in kills:
        for left in kill.left:
            trade = final[left.id]
            outcome = trade.failure_reason or trade.status.value
            shape = f"{'signed' if left.signed else 'unsigned'} {left.status.value}"
            outcome_of_left[f"{shape} -> {outcome}"] += 1
            if not left.signed:
                assert trade.failure_reason == FailureReason.NEVER_SENT, (kill.point, left, trade)
            elif kill.expired_first and left.status is TradeStatus.PENDING:
                assert trade.failure_reason == FailureReason.EXPIRED, (kill.point, left, trade)
    drilled_last = [t for t in trades if t.intent_id in last.drill_intents]
    assert any(t.status is TradeStatus.CONFIRMED for t in drilled_last), drilled_last

    # --- the figures
    per_point = Counter(k.point for k in kills)
    failed = Counter(t.failure_reason for t in trades if t.status is TradeStatus.FAILED)
    attempts = Counter(t.intent_id for t in trades)
    planned = [t for t in trades if t.trigger not in (None, "manual")]
    confirmed = sum(t.status is TradeStatus.CONFIRMED for t in trades)
    reconciled = sum(len(k.left) for k in kills)

    def median(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return round(statistics.median(known), 3) if known else None

    report = {
        "seed": SEED, "kills": len(kills), "kills_per_point": {p: per_point[p] for p in CHECKPOINTS},
        "schedule": schedule,
        "trades": {
            "attempts": len(trades), "confirmed": confirmed,
            "failed": sum(failed.values()), "failed_by_reason": dict(sorted(failed.items())),
            "intents": len(attempts), "intents_with_retries": sum(n > 1 for n in attempts.values()),
            "planned_by_executors": len(planned), "drilled": len(trades) - len(planned),
            "resend_events": resends,
        },
        "chain": {"bot_transactions": len(landed), "succeeded": sum(tx.succeeded for tx in landed.values()),
                  "landed_with_error": sum(not tx.succeeded for tx in landed.values())},
        "reconciled_on_restart": reconciled,
        "reconciled_per_point": {p: sum(len(k.left) for k in kills if k.point == p) for p in CHECKPOINTS},
        "reconciled_outcomes": dict(outcome_of_left.most_common()),
        "restarts_after_expiry": sum(k.expired_first for k in kills),
        "after_persist_restarted_at_once": dict(Counter(
            final[left.id].failure_reason or final[left.id].status.value for k in kills
            if k.point == "after_persist" and not k.expired_first
            for left in k.left if left.signed and left.status is TradeStatus.PENDING)),
        "drills": {"accepted": len(drills.accepted), "refused": dict(drills.refused.most_common()),
                   "last_run_confirmed": sum(t.status is TradeStatus.CONFIRMED for t in drilled_last)},
        "startup_s": {
            "median_spawn_to_engine_running": median([k.up_s for k in kills]),
            "median_spawn_to_executors_started": median([k.executors_s for k in kills]),
            "median_spawn_to_kill": median([k.seconds for k in kills]),
            "first_run_spawn_to_first_ranking": kills[0].ranking_s,
            "last_run_spawn_to_all_settled": last.settled_s,
            "last_run_spawn_to_scoring_run_completed": last.scoring_s,
            "last_run_scoring_run": last.scoring,
        },
        "engine_troubles": dict(Counter(t for k in kills for t in k.troubles) + Counter(last.troubles)),
        "wall_time_s": round(time.monotonic() - started, 1),
    }
    print("\ncrash-safety figures:\n" + json.dumps(report, indent=2))
    if path := os.environ.get("XORJ_CRASH_REPORT"):
        await trio.Path(path).write_text(json.dumps(report, indent=2) + "\n")

    assert len(kills) >= MIN_KILLS and all(per_point[p] >= MIN_PER_POINT for p in CHECKPOINTS), per_point
    assert reconciled >= len(kills)  # every kill left at least one trade for the next start
    assert planned, "the executors made no trade of their own"
    assert confirmed >= len(owners)
    assert not report["engine_troubles"], "the kills must be the engine's only failures"
