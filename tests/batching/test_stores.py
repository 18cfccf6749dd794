"""The stores' batched paths on a real PostgreSQL: concurrent calls become one multi-row statement,
and each caller still gets exactly the answer the single-row path gives -- an existing idempotency
key returns the stored row, a compare-and-set miss is `StaleTrade`, a repeated id in one batch is
decided in call order, a row the server refuses fails only its caller, and a database that is gone
fails every caller of the batch with the typed error.

Every test here runs in well under a second on the session's embedded PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import trio

from actors.job_store import JobStatus, JobStore
from actors.trade_lifecycle import FailureReason, TradeStatus, intent_id
from actors.trade_store import NewTrade, StaleTrade, TradeRecord, TradeStore
from actors.user_store import UserStore
from engine.postgres_gateway import PostgresGateway
from sql.errors import CheckViolation, DatabaseUnavailable, ForeignKeyViolation
from tests.batching.conftest import Counted

T = TypeVar("T")
SIGNED = b"\x02" * 64


async def together(calls: Sequence[Callable[[], Awaitable[T]]]) -> list[T | BaseException]:
    """Run the calls concurrently (one task each); their results or exceptions, in call order."""
    out: list[T | BaseException | None] = [None] * len(calls)

    async def one(index: int) -> None:
        try:
            out[index] = await calls[index]()
        except Exception as exc:  # noqa: BLE001 -- recorded for the test to assert on
            out[index] = exc

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for index in range(len(calls)):
                nursery.start_soon(one, index)
    return out  # type: ignore[return-value]


def intent(seq: int, *, user: str = "user-1", amount: Decimal = Decimal("2")) -> NewTrade:
    return NewTrade(user_id=user, intent_id=intent_id(user, "job-b", seq), from_token="USDC-mint",
                    to_token="JUP-mint", amount=amount, amount_in=2_000_000 + seq, minimum_amount_out=seq,
                    slippage=Decimal("0.5"))


def records(results: Sequence[object]) -> list[TradeRecord]:
    assert all(isinstance(r, TradeRecord) for r in results), results
    return [r for r in results if isinstance(r, TradeRecord)]


# -- TradeStore.insert_intent ---------------------------------------------------------------------


async def test_concurrent_intents_are_one_insert_and_each_caller_gets_its_own_row(counted: Counted) -> None:
    store = TradeStore(counted, timeout_s=10.0)
    before = await store.insert_intent(intent(0))  # exists already: the batch must return it as stored
    counted.sent.clear()
    trades = [intent(seq) for seq in range(20)] + [intent(5)]  # intent 5 twice in the batch

    rows = records(await together([lambda t=t: store.insert_intent(t) for t in trades]))

    # one multi-row INSERT; intent 0 (stored before) alone takes the single-row path after it
    assert counted.count("FROM unnest") == 1 and counted.count("INSERT INTO trades") == 2
    for trade, row in zip(trades, rows, strict=True):
        assert (row.intent_id, row.attempt, row.status) == (trade.intent_id, 1, TradeStatus.PENDING)
        assert (row.amount_in, row.minimum_amount_out, row.slippage) == (
            trade.amount_in, trade.minimum_amount_out, trade.slippage)
        assert (row.user_id, row.from_token, row.to_token, row.amount) == (
            trade.user_id, trade.from_token, trade.to_token, trade.amount)
    assert rows[0].id == before.id and rows[0].created_at == before.created_at
    assert rows[5].id == rows[20].id  # the same intent, twice: one row, both callers get it
    assert len({r.id for r in rows}) == 20
    assert len(await counted.db.fetch("SELECT id FROM trades", timeout=10)) == 20


async def test_a_refused_intent_fails_only_its_caller(counted: Counted) -> None:
    store = TradeStore(counted, timeout_s=10.0)
    trades = [intent(1), intent(2, amount=Decimal(0)), intent(3, user="user-nobody"), intent(4)]

    results = await together([lambda t=t: store.insert_intent(t) for t in trades])

    assert isinstance(results[1], CheckViolation) and results[1].constraint == "trades_amount_check"
    assert isinstance(results[2], ForeignKeyViolation)
    good = records([results[0], results[3]])
    assert [r.intent_id for r in good] == [trades[0].intent_id, trades[3].intent_id]
    stored = await counted.db.fetch("SELECT intent_id FROM trades ORDER BY intent_id", timeout=10)
    assert [r["intent_id"] for r in stored] == sorted([trades[0].intent_id, trades[3].intent_id])


# -- TradeStore.persist_signed --------------------------------------------------------------------


async def test_concurrent_persists_are_one_update_with_the_single_row_answers(counted: Counted) -> None:
    store = TradeStore(counted, timeout_s=10.0)
    trades = [await store.insert_intent(intent(seq)) for seq in range(8)]
    # trade 6 is signed already (sig-6): the same signature again is a repeat, another is refused;
    # trade 7 is FAILED: it cannot take bytes at all.
    await store.persist_signed(trades[6].id, SIGNED, "sig-6", 100)
    await store.mark_failed(trades[7].id, TradeStatus.PENDING, FailureReason.NEVER_SENT)
    counted.sent.clear()
    calls: list[tuple[str, str]] = [(t.id, f"sig-{n}") for n, t in enumerate(trades[:6])]
    calls += [(trades[6].id, "sig-6"), (trades[6].id, "sig-other"), (trades[7].id, "sig-7"),
              (trades[0].id, "sig-0"), (trades[1].id, "sig-1-again")]  # repeats within the batch

    results = await together([lambda c=c: store.persist_signed(c[0], SIGNED, c[1], 1_000 + len(c[1]))
                              for c in calls])

    assert counted.count("FROM unnest") == 1
    # trade 1 was given two signatures at once: whichever call queued first wins, the other is refused
    first, second = results[1], results[10]
    winner, loser = (first, second) if isinstance(first, TradeRecord) else (second, first)
    assert isinstance(winner, TradeRecord) and isinstance(loser, StaleTrade)
    assert (await store.get(trades[1].id)).transaction_signature == winner.transaction_signature
    assert winner.transaction_signature in ("sig-1", "sig-1-again")
    for n in (0, 2, 3, 4, 5):
        row = results[n]
        assert isinstance(row, TradeRecord)
        assert (row.id, row.transaction_signature) == (trades[n].id, f"sig-{n}")
        assert row.signed_transaction == SIGNED
        assert row.last_valid_block_height == 1_000 + len(f"sig-{n}")
    assert isinstance(results[6], TradeRecord) and results[6].transaction_signature == "sig-6"
    assert isinstance(results[7], StaleTrade)
    assert isinstance(results[8], StaleTrade)
    assert isinstance(results[9], TradeRecord) and results[9].transaction_signature == "sig-0"


# -- JobStore -------------------------------------------------------------------------------------


async def test_concurrent_job_creates_are_one_insert_and_a_refused_row_fails_only_its_caller(
    counted: Counted,
) -> None:
    jobs = JobStore(counted, timeout_s=10.0)
    specs: list[dict[str, Any]] = [
        {"user_id": f"user-{1 + n % 2}", "trader": f"trader-{n}", "scoring_run_id": None,
         "trigger": "ranking", "plan": {"legs": [n], "total_usd": 10.5 * n},
         "status": [JobStatus.RUNNING, JobStatus.COMPLETED, JobStatus.CANCELLED][n % 3],
         "reason": None if n % 3 == 0 else f"why {n}"}
        for n in range(12)
    ]
    specs.append({**specs[0], "user_id": "user-nobody"})

    results = await together([lambda s=s: jobs.create(**s) for s in specs])

    assert counted.count("FROM unnest") == 1
    assert isinstance(results[12], ForeignKeyViolation)
    ids = results[:12]
    assert all(isinstance(i, str) for i in ids) and len(set(ids)) == 12
    rows = {r["id"]: r for r in await counted.db.fetch(
        "SELECT id, user_id, status, target_trader, trigger, plan, reason, finished_at FROM execution_jobs",
        timeout=10)}
    assert set(rows) == set(ids)
    for job_id, spec in zip(ids, specs, strict=False):
        row = rows[job_id]
        assert (row["user_id"], row["status"], row["target_trader"], row["trigger"], row["reason"]) == (
            spec["user_id"], spec["status"].value, spec["trader"], spec["trigger"], spec["reason"])
        assert row["plan"] == spec["plan"]
        assert (row["finished_at"] is None) == (spec["status"] is JobStatus.RUNNING)


async def test_concurrent_job_finishes_are_one_update_and_only_running_jobs_change(counted: Counted) -> None:
    jobs = JobStore(counted, timeout_s=10.0)
    ids = [await jobs.create("user-1", trader=None, scoring_run_id=None, trigger="periodic", plan={})
           for _ in range(6)]
    await jobs.finish(ids[5], JobStatus.CANCELLED, "stopped before")
    counted.sent.clear()
    calls = [(ids[n], JobStatus.COMPLETED if n % 2 else JobStatus.FAILED, f"r{n}") for n in range(6)]
    calls.append((ids[0], JobStatus.COMPLETED, "second finish"))  # whichever queued first wins

    results = await together([lambda c=c: jobs.finish(*c) for c in calls])

    assert results == [None] * 7
    assert counted.count("FROM unnest") == 1
    rows = {r["id"]: r for r in await counted.db.fetch(
        "SELECT id, status, reason, finished_at FROM execution_jobs", timeout=10)}
    for n in range(1, 5):
        assert (rows[ids[n]]["status"], rows[ids[n]]["reason"]) == (calls[n][1].value, f"r{n}")
    job0 = (rows[ids[0]]["status"], rows[ids[0]]["reason"])
    assert job0 in (("FAILED", "r0"), ("COMPLETED", "second finish"))
    assert all(rows[ids[n]]["finished_at"] is not None for n in range(6))
    assert (rows[ids[5]]["status"], rows[ids[5]]["reason"]) == ("CANCELLED", "stopped before")


# -- UserStore.get --------------------------------------------------------------------------------


async def test_concurrent_user_reads_are_one_select_by_id_or_owner(counted: Counted) -> None:
    users = UserStore(counted, timeout_s=10.0)
    keys = ["user-1", "wallet-2", " user-2 ", "user-nobody", "wallet-1", "user-1"]

    results = await together([lambda k=k: users.get(k) for k in keys])

    assert len(counted.sent) == 1
    got = [None if r is None else (r.user_id, r.owner) for r in results]  # type: ignore[union-attr]
    assert got == [("user-1", "wallet-1"), ("user-2", "wallet-2"), ("user-2", "wallet-2"), None,
                   ("user-1", "wallet-1"), ("user-1", "wallet-1")]


# -- a database that is gone ----------------------------------------------------------------------


async def test_a_database_that_is_gone_fails_every_caller_of_the_batch(
    counted: Counted, db_url: str,
) -> None:
    gone = PostgresGateway(db_url, pool_min=1, pool_max=1, backoff_max=0.5)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(20):
            await nursery.start(gone.serve)
        nursery.cancel_scope.cancel()
    store, jobs, users = TradeStore(gone, 2.0), JobStore(gone, 2.0), UserStore(gone, 2.0)

    results = await together(
        [lambda n=n: store.insert_intent(intent(n)) for n in range(3)]
        + [lambda: jobs.finish("job-x", JobStatus.COMPLETED), lambda: jobs.finish("job-y", JobStatus.FAILED)]
        + [lambda: users.get("user-1"), lambda: users.get("user-2")])

    assert all(isinstance(r, DatabaseUnavailable) for r in results), results
    # the same stores work again once the database answers (a later batch is unaffected)
    healthy = TradeStore(counted, 10.0)
    assert records(await together([lambda n=n: healthy.insert_intent(intent(n)) for n in range(3)]))


async def test_a_batch_of_one_takes_the_single_row_statement(counted: Counted) -> None:
    store = TradeStore(counted, timeout_s=10.0)
    row = await store.insert_intent(intent(1))
    signed = await store.persist_signed(row.id, SIGNED, "sig-one", 7)
    assert signed.transaction_signature == "sig-one"
    assert counted.count("unnest") == 0
